"""The Gradio app: `render_*()` lay out each tab, `listen()` wires the events to `VerifyService`.

Every event that answers a question has an API name (verify, enroll, identify, batch, gallery_list,
remove_identity, remove_sample, stats). Errors never show a traceback: a `VerifyError` becomes `gr.Error` with
its message; anything else is logged and shown as "internal error: ...".
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace
from typing import Any, Literal

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before Gradio is imported: no telemetry, no version check

import gradio as gr

from app import demo_examples, gradio_cache, views
from app.service import VerifyService
from app.ui_events import listen
from app.wording import COMPARE_ANYWAY, ENROLL_ANYWAY

log = logging.getLogger(__name__)
gradio_cache.install()  # images served while being cached again are never truncated (h11 Content-Length errors)
MODALITY_CHOICES = ["auto", "face", "signature"]
IMAGE_SOURCES: list[Literal["upload", "webcam", "clipboard"]] = ["upload", "webcam", "clipboard"]
DELETE_CACHE = (1800, 3600)  # every 30 min, delete uploads and outputs older than an hour (faces are personal)
CSS = """
.result-box {min-height: 4em}
footer {display: none !important}
.caption-label {white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  max-width: none !important; font-size: 12px}
@media (max-width: 640px) {  /* phones: all five tabs fit on one line, none hides behind a "..." menu */
  [role=tablist] button, .tab-container button {padding: 0 6px !important; font-size: 14px !important}
  .overflow-menu {display: none !important}
  [role=tablist] {flex-wrap: wrap !important}
}
"""


_LENIENT = "lenient-upload"  # elem_classes mark of the image inputs whose undecodable uploads reach the service
_IMAGE_PREPROCESS = gr.Image.preprocess


def _lenient_preprocess(image: gr.Image, payload: Any) -> Any:
    """gr.Image.preprocess, except that the marked inputs hand an upload Gradio cannot decode to the service (as
    its path), which names the problem, instead of failing inside Gradio with a bare "Error"."""
    try:
        return _IMAGE_PREPROCESS(image, payload)
    except Exception:
        path = payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", None)
        if path is None or _LENIENT not in (image.elem_classes or []):
            raise
        return str(path)


# Patched on the class, not the instance: Gradio rebuilds a session's components from their arguments when an
# event updates them, which drops instance attributes (and a subclass would make Gradio write a .pyi stub).
gr.Image.preprocess = _lenient_preprocess  # type: ignore[method-assign,assignment]


def image_input(**kwargs: Any) -> gr.Image:
    """An image upload (type "filepath", upload / webcam / clipboard) whose undecodable uploads reach the service."""
    return gr.Image(type="filepath", sources=IMAGE_SOURCES, elem_classes=[_LENIENT], **kwargs)


def gallery_output(label: str, columns: int, height: int) -> gr.Gallery:
    """A read-only strip of small thumbnails (whole images, not cropped to fill)."""
    return gr.Gallery(
        label=label, columns=columns, height=height, object_fit="contain", fit_columns=False, interactive=False
    )


def _modality(service: VerifyService, label: str = "What the images show") -> gr.Radio:
    choices = [m for m in MODALITY_CHOICES if m == "auto" or service.available(m)]
    return gr.Radio(choices, value="auto", label=label)


def render_header(service: VerifyService) -> None:
    gr.Markdown(
        "# Same person?\nCompare two faces or two handwritten signatures, enroll people in a gallery, "
        "identify someone against it, or score a whole CSV of pairs. Scores are cosine similarities: "
        "larger means more alike; the decision compares them with the model's calibrated threshold."
    )
    missing = [service.missing_reason(m) for m in ("face", "signature") if not service.available(m)]
    if missing:
        gr.Markdown("\n".join(f"> **Note:** {m}" for m in missing), elem_id="missing-models")


def render_verify(service: VerifyService) -> SimpleNamespace:
    with gr.Row():
        a = image_input(label="Image A (reference)", elem_id="verify-a", height=300)
        b = image_input(label="Image B (questioned)", elem_id="verify-b", height=300)
    with gr.Row():
        modality = _modality(service)
        go = gr.Button("Verify", variant="primary", elem_id="verify-btn")
    anyway = gr.Checkbox(label=COMPARE_ANYWAY, value=False, elem_id="verify-anyway")
    result = gr.Markdown(views.READY, label="answer", elem_id="verify-result", elem_classes="result-box")
    with gr.Row():
        crop_a = gr.Image(label="A as compared", interactive=False, height=200, elem_id="verify-crop-a")
        crop_b = gr.Image(label="B as compared", interactive=False, height=200, elem_id="verify-crop-b")
    overlay = gr.Image(
        label="overlay: A blue, B red (dark where they agree)",
        interactive=False,
        height=220,
        visible=False,
        elem_id="verify-overlay",
    )
    examples = gr.Examples(
        demo_examples.verify_examples(service),
        [a, b, modality],
        label="Examples (click one, then Verify)",
        example_labels=demo_examples.verify_labels(service),
        elem_id="verify-examples",
    )
    with gr.Accordion("Details (JSON)", open=False):
        raw = gr.JSON(label="details")
    return SimpleNamespace(
        a=a, b=b, modality=modality, anyway=anyway, go=go, result=result, crop_a=crop_a, crop_b=crop_b,
        overlay=overlay, raw=raw, examples=examples,
    )  # fmt: skip


def render_enroll(service: VerifyService) -> SimpleNamespace:
    with gr.Row():
        with gr.Column():
            name = gr.Textbox(label="Name", placeholder="e.g. Ada Lovelace", elem_id="enroll-name")
            modality = _modality(service)
            files = gr.File(
                label="Images of this person (one or more)",
                elem_id="enroll-files",
                file_count="multiple",
                file_types=["image"],
            )
            photo = image_input(
                label="…or take / paste one photo",
                elem_id="enroll-photo",
                height=200,
            )
            anyway = gr.Checkbox(label=ENROLL_ANYWAY, value=False, elem_id="enroll-anyway")
            go = gr.Button("Enroll", variant="primary", elem_id="enroll-btn")
        with gr.Column():
            result = gr.Markdown(
                label="answer",
                elem_id="enroll-result",
                value=views.READY_ENROLL,
            )
            table = gr.Dataframe(
                views.enroll_table({"samples": []}),
                label="per image",
                interactive=False,
                wrap=True,
                elem_id="enroll-table",
            )
            samples = gallery_output(label="samples in the gallery", columns=6, height=160)
    gr.Examples(
        demo_examples.enroll_examples(service),
        [name, modality, files, photo],
        label="Examples (click one, then Enroll)",
        elem_id="enroll-examples",
    )
    return SimpleNamespace(
        name=name, modality=modality, files=files, photo=photo, anyway=anyway, go=go, result=result, table=table,
        samples=samples,
    )  # fmt: skip


def render_identify(service: VerifyService) -> SimpleNamespace:
    with gr.Row():
        with gr.Column():
            image = image_input(label="Who is this?", elem_id="identify-image", height=300)
            modality = _modality(service)
            k = gr.Slider(1, 10, value=5, step=1, label="candidates to show")
            anyway = gr.Checkbox(label=COMPARE_ANYWAY, value=False, elem_id="identify-anyway")
            go = gr.Button("Identify", variant="primary", elem_id="identify-btn")
        with gr.Column():
            result = gr.Markdown(views.READY_IDENTIFY, label="answer", elem_id="identify-result")
            thumbs = gallery_output(label="references, with scores", columns=4, height=220)
            table = gr.Dataframe(views.candidates_table({}), label="candidates", interactive=False)
    examples = gr.Examples(
        demo_examples.identify_examples(service),
        [image, modality],
        label="Examples (click one, then Identify)",
        elem_id="identify-examples",
    )
    with gr.Accordion("Details (JSON)", open=False):
        raw = gr.JSON(label="details")
    return SimpleNamespace(
        image=image, modality=modality, k=k, anyway=anyway, go=go, result=result, thumbs=thumbs, table=table,
        raw=raw, examples=examples,
    )  # fmt: skip


def render_batch(service: VerifyService) -> SimpleNamespace:
    gr.Markdown(views.BATCH_HELP)
    with gr.Row():
        csv = gr.File(label="Pairs CSV", file_types=[".csv"], elem_id="batch-csv")
        zipped = gr.File(label="Zip of the images", file_types=[".zip"], elem_id="batch-zip")
    folder = gr.Textbox(
        label=f"…or a folder under {service.jobs.admin_root} on the server",
        visible=service.jobs.admin_root is not None,
    )
    with gr.Row():
        modality = _modality(service)
        go = gr.Button("Run batch", variant="primary", elem_id="batch-btn")
    anyway = gr.Checkbox(label=COMPARE_ANYWAY, value=False, elem_id="batch-anyway")
    gr.Examples(
        demo_examples.batch_examples(service),
        [csv, zipped],
        label="Example (click it, then Run batch)",
        elem_id="batch-examples",
    )
    result = gr.Markdown(label="summary", elem_id="batch-result")
    with gr.Row():
        csv_out = gr.DownloadButton("Download results CSV", visible=False, elem_id="batch-download-csv")
        report_out = gr.DownloadButton("Download report", visible=False, elem_id="batch-download-report")
    review = gr.HTML(label="review", visible=False, elem_id="batch-review")
    with gr.Accordion("All columns (as in the CSV)", open=False):
        table = gr.Dataframe(label="results", interactive=False, wrap=False, max_height=400, visible=False)
    return SimpleNamespace(
        csv=csv, zipped=zipped, folder=folder, modality=modality, anyway=anyway, go=go, result=result,
        csv_out=csv_out, report_out=report_out, table=table, review=review,
    )  # fmt: skip


def render_gallery(service: VerifyService) -> SimpleNamespace:
    with gr.Row():
        modality = gr.Radio([m for m in ("face", "signature") if service.available(m)], value="face", label="Gallery")
        refresh = gr.Button("Refresh", elem_id="gallery-refresh")
    gr.Examples([["face"], ["signature"]] if service.available("signature") else [["face"]], [modality],
                label="Examples (click one to show that gallery)", elem_id="gallery-examples")  # fmt: skip
    stats = gr.Markdown(label="gallery", elem_id="gallery-stats")
    with gr.Row():
        identities = gr.Dataframe(
            views.identities_table([]), label="Enrolled identities", interactive=False, elem_id="gallery-identities"
        )
        covers = gallery_output(label="One sample each", columns=6, height=160)
    identity = gr.Dropdown(label="Identity", choices=[], allow_custom_value=False)
    samples = gallery_output(label="Its samples", columns=8, height=140)
    with gr.Row():
        with gr.Column():
            sample = gr.Dropdown(label="Sample to remove", choices=[])
            sure = gr.Checkbox(label="yes, remove this sample")
            remove_sample = gr.Button("Remove sample", variant="stop")
        with gr.Column():
            confirm = gr.Textbox(label="To remove the whole identity, type its name here")
            remove_identity = gr.Button("Remove identity and all its samples", variant="stop")
    status = gr.Markdown(label="status", elem_id="gallery-status")
    with gr.Accordion("Statistics (JSON)", open=False):
        raw = gr.JSON(label="stats")
    return SimpleNamespace(
        modality=modality, refresh=refresh, stats=stats, identities=identities, covers=covers, identity=identity,
        samples=samples, sample=sample, sure=sure, remove_sample=remove_sample, confirm=confirm,
        remove_identity=remove_identity, status=status, raw=raw,
    )  # fmt: skip


def build_app(service: VerifyService) -> gr.Blocks:
    """The whole app; launch it with `launch(app, ...)`."""
    with gr.Blocks(title="Same person? — siamese-verify", analytics_enabled=False, delete_cache=DELETE_CACHE) as blocks:
        render_header(service)
        with gr.Tabs():
            with gr.Tab("Verify", id="verify"):
                v = render_verify(service)
            with gr.Tab("Enroll", id="enroll"):
                e = render_enroll(service)
            with gr.Tab("Identify", id="identify"):
                i = render_identify(service)
            with gr.Tab("Batch", id="batch"):
                b = render_batch(service)
            with gr.Tab("Gallery", id="gallery") as gallery_tab:
                g = render_gallery(service)
                g.tab = gallery_tab
        listen(blocks, service, v, e, i, b, g)
    return blocks


def launch_app(
    blocks: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    concurrency: int = 2,
    block: bool = True,
    max_upload_mb: int = 100,
) -> Any:
    """Queue and serve `blocks` (never shared through a Gradio tunnel); returns Gradio's (app, local_url, _).

    Args:
        blocks: from `build_app`.
        host: interface to bind; 127.0.0.1 by default, "0.0.0.0" only when asked.
        port: TCP port (0: Gradio picks a free one from 7860 up).
        auth: (user, password) for HTTP basic auth, or None.
        concurrency: events run at once (2 on 2 cores).
        block: keep serving until interrupted; False returns at once (tests, benchmarks).
        max_upload_mb: Gradio refuses larger uploads before they reach the service.
    """
    blocks.queue(default_concurrency_limit=concurrency, max_size=64)
    return blocks.launch(
        server_name=host,
        server_port=port or None,
        auth=auth,
        share=False,
        prevent_thread_lock=not block,
        max_file_size=f"{max_upload_mb}mb",
        quiet=True,  # no "share=True" hint: sharing is not offered; `verify app` prints the URL
        css=CSS,
        allowed_paths=[str(demo_examples.demo_dir())],  # the examples' images
        ssr_mode=False,
        mcp_server=False,
    )
