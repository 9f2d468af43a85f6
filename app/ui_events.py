"""Event handlers of the Gradio app and `listen()`, which wires them with their API names.

Each question is wired twice over the same handler:
- the page's button runs it through `shown`: a refused input becomes a "Not checked" answer in the result
  box and every other output is cleared, so no error badge covers a control and no stale answer stays on screen;
- a hidden twin event carries the API name (`verify`, `enroll`, ...) and runs it through `guarded`: API
  clients get an error (`gradio_client` raises `AppError` with the message) instead of a result.
No message shows a server path or a traceback.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from app import views
from app.service import VerifyService
from app.wording import scrub_paths
from verify.errors import VerifyError

log = logging.getLogger(__name__)
_BATCH_PROGRESS = gr.Progress(track_tqdm=True)  # Gradio fills it in; the batch's tqdm bar drives it


def user_message(exc: BaseException) -> str:
    """One line for the user: the VerifyError's message, or "internal error: ..." (logged); no server paths."""
    if isinstance(exc, VerifyError):
        return scrub_paths(str(exc), [tempfile.gettempdir()])
    log.error("internal error", exc_info=exc)
    return scrub_paths(f"internal error: {type(exc).__name__}: {exc}", [tempfile.gettempdir()])


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For API events: run a handler, turning any failure into gr.Error(one line)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise gr.Error(user_message(exc), duration=None, print_exception=False) from exc

    return wrapper


def shown(fn: Callable[..., Any], on_error: Callable[[str], tuple[Any, ...]]) -> Callable[..., Any]:
    """For the page's events: run a handler; a failure becomes `on_error(message)`, the outputs of an answer
    that says why (and clears the previous answer)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            return on_error(str(exc.message))
        except Exception as exc:
            return on_error(user_message(exc))

    return wrapper


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON view of a result: no image arrays."""
    out = {k: v for k, v in result.items() if k not in ("crops", "identity_samples")}
    if "candidates" in out:
        out["candidates"] = [
            {
                **{k: v for k, v in c.items() if k not in ("thumbnail", "references")},
                "references": [{"sample_id": r["sample_id"], "score": r["score"]} for r in c.get("references") or []],
            }
            for c in out["candidates"]
        ]
    return out


class Handlers:
    """The app's event handlers over one `VerifyService`."""

    def __init__(self, service: VerifyService) -> None:
        self.service = service

    def verify(
        self, image_a: Any, image_b: Any, modality: str = "auto", compare_anyway: bool = False
    ) -> tuple[Any, ...]:
        result = self.service.verify(image_a, image_b, modality, bool(compare_anyway))
        crops = [*result["crops"], None, None][:2]
        both = views.overlay(*crops) if result["modality"] == "signature" else None
        big = [views.enlarge(c) for c in crops]
        text = views.verify_markdown(result, result.get("reliability"))
        return text, _plain(result), big[0], big[1], views.enlarge(both, 400)

    def enroll(
        self,
        name: str,
        modality: str = "auto",
        files: list[str] | None = None,
        photo: str | None = None,
        enroll_anyway: bool = False,
    ) -> tuple[Any, ...]:
        images = [str(f) for f in files or []] + ([photo] if photo else [])
        labels = [Path(p).name for p in images]
        report = self.service.enroll(name, images, modality, labels=labels, enroll_anyway=bool(enroll_anyway))
        thumbs = views.sample_thumbnails(report["identity_samples"])
        return views.enroll_markdown(report), views.enroll_table(report), thumbs

    def identify(
        self, image: Any, modality: str = "auto", k: float = 5, compare_anyway: bool = False
    ) -> tuple[Any, ...]:
        result = self.service.identify(image, modality, int(k), compare_anyway=bool(compare_anyway))
        table = views.candidates_table(result)
        text = views.identify_markdown(result, result.get("reliability"))
        return text, views.candidate_thumbnails(result), table, _plain(result)

    def batch(
        self,
        csv: Any,
        zipped: Any = None,
        folder: str | None = None,
        modality: str = "auto",
        compare_anyway: bool = False,
        progress: Any = _BATCH_PROGRESS,
    ) -> tuple[Any, ...]:
        result = self.service.batch(csv, zipped, folder, modality, progress=True, compare_anyway=bool(compare_anyway))
        report = result["report"]
        review = views.batch_review_html(result["rows"], result["images"], result["image_columns"])
        table = views.batch_table(result["rows"])
        return views.batch_markdown(result), str(result["csv"]), None if report is None else str(report), table, review

    def gallery_list(self, modality: str = "face") -> tuple[Any, ...]:
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

    def stats(self, modality: str = "face") -> tuple[Any, ...]:
        stats = self.service.stats(modality)
        return views.stats_markdown(stats), stats

    def remove_sample(self, modality: str, sample: str | None, sure: bool = False) -> tuple[Any, ...]:
        done = self.service.remove_sample(modality, sample, sure)
        return f"Removed sample #{done['removed_sample']}.", False

    def remove_identity(self, modality: str, name: str | None, confirm: str = "") -> tuple[Any, ...]:
        done = self.service.remove_identity(modality, name or "", confirm)
        return f"Removed **{done['removed_identity']}** and {done['removed_samples']} sample(s).", ""

    def check_upload(self, image: Any, what: str, ready: str) -> tuple[Any, ...]:
        """On upload: an image that cannot be decoded is taken off the page (no broken-image icon) and the
        result box says why; a good one clears the previous answer."""
        problem = self.service.check_upload(image, what)
        if problem:
            return None, views.error_markdown(problem)
        return gr.skip(), ready


def _twin(button: gr.Button, fn: Callable[..., Any], inputs: list[Any], outputs: list[Any], api_name: str) -> Any:
    """The API event of a page button: same handler and components, failures raised (see module docstring).
    Returns the page's event (API clients get plain values; the page shows or hides parts after it)."""
    hidden = gr.Button(visible=False, elem_id=f"api-{api_name}")
    hidden.click(guarded(fn), inputs, outputs, api_name=api_name, show_progress="hidden")
    return button.click(
        shown(fn, _cleared(outputs)),
        inputs,
        outputs,
        api_visibility="private",
        show_progress="minimal",
        show_progress_on=[outputs[0]],
    )


def _shown_if_filled(*values: Any) -> Any:
    """Show the parts of an answer that have a value (a signature overlay, downloads, the review), hide the rest."""

    def filled(value: Any) -> bool:
        if isinstance(value, pd.DataFrame):
            return not value.empty
        return value is not None and not (isinstance(value, str) and not value)

    updates = tuple(gr.update(visible=filled(v)) for v in values)
    return updates[0] if len(updates) == 1 else updates


def _cleared(outputs: list[Any]) -> Callable[[str], tuple[Any, ...]]:
    """The error answer: the message in the first output, every other output emptied (or left alone when it is
    an input control such as a confirmation box)."""

    def empty(component: Any) -> Any:
        if isinstance(component, (gr.Checkbox, gr.Textbox)):
            return gr.skip()
        if isinstance(component, gr.Dataframe):  # None would show Gradio's placeholder headers "1 2 3"
            return pd.DataFrame(columns=(component.value or {}).get("headers") or [])
        return None

    def on_error(message: str) -> tuple[Any, ...]:
        return (views.error_markdown(message), *[empty(c) for c in outputs[1:]])

    return on_error


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
    verify_out = [v.result, v.raw, v.crop_a, v.crop_b, v.overlay]
    verified = _twin(v.go, h.verify, [v.a, v.b, v.modality, v.anyway], verify_out, "verify")
    verified.then(_shown_if_filled, [v.overlay], [v.overlay], show_progress="hidden", **private)
    _twin(e.go, h.enroll, [e.name, e.modality, e.files, e.photo, e.anyway], [e.result, e.table, e.samples], "enroll")
    _twin(i.go, h.identify, [i.image, i.modality, i.k, i.anyway], [i.result, i.thumbs, i.table, i.raw], "identify")
    batch_parts = [b.csv_out, b.report_out, b.table, b.review]
    batched = _twin(b.go, h.batch, [b.csv, b.zipped, b.folder, b.modality, b.anyway], [b.result, *batch_parts], "batch")
    batched.then(_shown_if_filled, batch_parts, batch_parts, show_progress="hidden", **private)
    uploads = [(v.a, v.result, "image A", views.READY), (v.b, v.result, "image B", views.READY)]
    uploads += [(i.image, i.result, "image", views.READY_IDENTIFY), (e.photo, e.result, "photo", views.READY_ENROLL)]
    for image, result, what, ready in uploads:
        check = functools.partial(h.check_upload, what=what, ready=ready)
        image.upload(check, [image], [image, result], show_progress="hidden", **private)
    for examples, result, ready in ((v.examples, v.result, views.READY), (i.examples, i.result, views.READY_IDENTIFY)):
        examples.dataset.click(lambda text=ready: text, None, result, show_progress="hidden", **private)
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
    for button, fn, inputs, out, name in (
        (g.remove_sample, h.remove_sample, [g.modality, g.sample, g.sure], [g.status, g.sure], "remove_sample"),
        (g.remove_identity, h.remove_identity, [g.modality, g.identity, g.confirm], [g.status, g.confirm],
         "remove_identity"),
    ):  # fmt: skip
        hidden = gr.Button(visible=False, elem_id=f"api-{name}")
        hidden.click(guarded(fn), inputs, out, api_name=name, show_progress="hidden")
        done = button.click(shown(fn, _failed), inputs, out, show_progress="hidden", **private)
        refresh(done.success)


def _failed(message: str) -> tuple[Any, ...]:
    """A refused gallery change: the message where the result goes; the confirmation controls stay as they are."""
    return views.error_markdown(message, "## Not removed"), gr.skip()
