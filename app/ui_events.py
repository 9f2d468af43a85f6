"""Event handlers of the Gradio app and `listen()`, which wires them with their API names.

Handlers are thin: call `VerifyService`, format with `app.views`. `guarded` keeps tracebacks off the page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from app import views
from app.service import VerifyService
from verify.errors import VerifyError

log = logging.getLogger(__name__)
_BATCH_PROGRESS = gr.Progress(track_tqdm=True)  # Gradio fills it in; the batch's tqdm bar drives it


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an event handler, turning VerifyError into gr.Error(message) and other failures into a short one."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except VerifyError as exc:
            raise gr.Error(str(exc), duration=None, print_exception=False) from exc
        except Exception as exc:
            log.exception("internal error in %s", fn.__name__)
            raise gr.Error(
                f"internal error: {type(exc).__name__}: {exc}", duration=None, print_exception=False
            ) from exc

    return wrapper


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON view of a result: no image arrays."""
    out = {k: v for k, v in result.items() if k not in ("crops", "identity_samples")}
    if "candidates" in out:
        out["candidates"] = [{k: v for k, v in c.items() if k != "thumbnail"} for c in out["candidates"]]
    return out


class Handlers:
    """The app's event handlers over one `VerifyService`."""

    def __init__(self, service: VerifyService) -> None:
        self.service = service

    def verify(self, image_a: Any, image_b: Any, modality: str) -> tuple[Any, ...]:
        result = self.service.verify(image_a, image_b, modality)
        crops = [views.enlarge(c) for c in [*result["crops"], None, None][:2]]
        return views.verify_markdown(result), _plain(result), crops[0], crops[1]

    def enroll(self, name: str, modality: str, files: list[str] | None, photo: str | None) -> tuple[Any, ...]:
        images = [str(f) for f in files or []] + ([photo] if photo else [])
        labels = [Path(p).name for p in images]
        report = self.service.enroll(name, images, modality, labels=labels)
        thumbs = views.sample_thumbnails(report["identity_samples"])
        return views.enroll_markdown(report), views.enroll_table(report), thumbs

    def identify(self, image: Any, modality: str, k: float) -> tuple[Any, ...]:
        result = self.service.identify(image, modality, int(k))
        table = views.candidates_table(result)
        return views.identify_markdown(result), views.candidate_thumbnails(result), table, _plain(result)

    def batch(
        self, csv: Any, zipped: Any, folder: str | None, modality: str, progress: Any = _BATCH_PROGRESS
    ) -> tuple[Any, ...]:
        result = self.service.batch(csv, zipped, folder, modality, progress=True)
        report = result["report"]
        return (
            views.batch_markdown(result),
            gr.DownloadButton(value=str(result["csv"]), visible=True),
            gr.DownloadButton(value=None if report is None else str(report), visible=report is not None),
            gr.Dataframe(views.batch_table(result["rows"]), visible=True),
            result["report_text"],
        )

    def gallery_list(self, modality: str) -> tuple[Any, ...]:
        identities = self.service.gallery_list(modality)
        covers = [(i["thumbnail"], f"{i['name']} ({i['samples']})") for i in identities if i["thumbnail"] is not None]
        names = [i["name"] for i in identities]
        dropdown = gr.Dropdown(choices=names, value=names[0] if names else None)
        return views.identities_table(identities), covers, dropdown

    def identity_samples(self, modality: str, name: str | None) -> tuple[Any, ...]:
        if not name:
            return [], gr.Dropdown(choices=[], value=None)
        samples = self.service.samples(modality, name)
        choices = views.sample_choices(samples)
        return views.sample_thumbnails(samples), gr.Dropdown(choices=choices, value=choices[0] if choices else None)

    def stats(self, modality: str) -> tuple[Any, ...]:
        stats = self.service.stats(modality)
        return views.stats_markdown(stats), stats

    def remove_sample(self, modality: str, sample: str | None, sure: bool) -> tuple[Any, ...]:
        done = self.service.remove_sample(modality, sample, sure)
        return f"Removed sample #{done['removed_sample']}.", False

    def remove_identity(self, modality: str, name: str | None, confirm: str) -> tuple[Any, ...]:
        done = self.service.remove_identity(modality, name or "", confirm)
        return f"Removed **{done['removed_identity']}** and {done['removed_samples']} sample(s).", ""


def listen(
    blocks: gr.Blocks,
    service: VerifyService,
    v: SimpleNamespace,
    e: SimpleNamespace,
    i: SimpleNamespace,
    b: SimpleNamespace,
    g: SimpleNamespace,
) -> None:
    """Wire every tab's events; the public ones get the API names the client and tests use."""
    h = Handlers(service)
    private = {"api_visibility": "private"}
    v.go.click(guarded(h.verify), [v.a, v.b, v.modality], [v.result, v.raw, v.crop_a, v.crop_b], api_name="verify")
    e.go.click(
        guarded(h.enroll), [e.name, e.modality, e.files, e.photo], [e.result, e.table, e.samples], api_name="enroll"
    )
    i.go.click(
        guarded(h.identify), [i.image, i.modality, i.k], [i.result, i.thumbs, i.table, i.raw], api_name="identify"
    )
    b.go.click(
        guarded(h.batch),
        [b.csv, b.zipped, b.folder, b.modality],
        [b.result, b.csv_out, b.report_out, b.table, b.report],
        api_name="batch",
    )
    listing = [g.identities, g.covers, g.identity]
    samples_out = [g.samples, g.sample]

    def refresh(trigger: Any) -> None:
        trigger(guarded(h.gallery_list), [g.modality], listing, **private).then(
            guarded(h.stats), [g.modality], [g.stats, g.raw], **private
        ).then(guarded(h.identity_samples), [g.modality, g.identity], samples_out, **private)

    g.refresh.click(guarded(h.gallery_list), [g.modality], listing, api_name="gallery_list").then(
        guarded(h.stats), [g.modality], [g.stats, g.raw], api_name="stats"
    ).then(guarded(h.identity_samples), [g.modality, g.identity], samples_out, **private)
    refresh(g.modality.change)
    refresh(blocks.load)
    refresh(g.tab.select)
    g.identity.input(guarded(h.identity_samples), [g.modality, g.identity], samples_out, **private)
    removed_sample = g.remove_sample.click(
        guarded(h.remove_sample), [g.modality, g.sample, g.sure], [g.status, g.sure], api_name="remove_sample"
    )
    removed_identity = g.remove_identity.click(
        guarded(h.remove_identity),
        [g.modality, g.identity, g.confirm],
        [g.status, g.confirm],
        api_name="remove_identity",
    )
    refresh(removed_sample.success)
    refresh(removed_identity.success)
