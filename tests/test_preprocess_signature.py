"""Signature preprocessing on drawn signatures (cv2 strokes on white paper), and the plain resize preprocessor."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.errors import ConfigError, InvalidImageError
from verify.models.registry import get_preprocessor
from verify.preprocess.crop import Crop
from verify.preprocess.resize import ResizePreprocessor
from verify.preprocess.signature import (
    SignatureParams,
    SignaturePreprocessor,
    preprocess_signature,
    signature_crop,
    to_display,
)

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "models"
CARD = {"input": {"height": 150, "width": 220, "channels": 1, "mean": [0.5], "std": [0.5]}}


def _page(offset: tuple[int, int] = (0, 0), angle: float = 0.0, ink: int = 30, noise: bool = True) -> np.ndarray:
    """A 300 x 480 white page with a wide scribble (about 200 x 70 px), rotated and moved by `offset` (dx, dy)."""
    page = np.full((300, 480), 255, np.uint8)
    xs = np.linspace(60, 260, 60)
    ys = 150 + 30 * np.sin(xs / 12.0) + 5 * np.cos(xs / 5.0)
    cv2.polylines(page, [np.stack([xs, ys], 1).astype(np.int32)], False, ink, 3, cv2.LINE_AA)
    cv2.line(page, (70, 185), (250, 175), ink, 2, cv2.LINE_AA)
    rot = cv2.getRotationMatrix2D((160, 150), angle, 1.0)
    rot[:, 2] += offset
    page = cv2.warpAffine(page, rot, (480, 300), borderValue=255)
    if noise:
        rng = np.random.default_rng(0)
        page = np.clip(page.astype(int) - rng.integers(0, 6, page.shape), 0, 255).astype(np.uint8)
    return page


def _box(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize(("offset", "angle"), [((0, 0), 0.0), ((150, -80), 12.0), ((-40, 90), -20.0)])
def test_signature_lands_centred_and_bright(offset: tuple[int, int], angle: float) -> None:
    page = _page(offset, angle)
    crop = signature_crop(page)
    out = crop.image
    assert out.shape == (150, 220) and out.dtype == np.uint8
    x0, y0, x1, y1 = _box(out)
    assert abs((x0 + x1) / 2 - 109.5) <= 2 and abs((y0 + y1) / 2 - 74.5) <= 2  # centred
    assert x1 - x0 >= 194 or y1 - y0 >= 132  # fills the canvas along the limiting side (minus the margin)
    ink = out[out > 0]
    assert np.median(ink) > 150  # ink bright (page ink was 30)
    assert (out == 0).mean() > 0.6  # background cleared to exactly 0
    assert 0.005 < crop.info["ink_fraction"] < 0.1 and not crop.info["blank"]
    bx, _, bw, _ = crop.info["bbox"]
    assert 60 + offset[0] < bx + bw / 2 < 260 + offset[0] and bw > 150


def test_translation_invariant() -> None:
    a = preprocess_signature(_page((0, 0), noise=False)).astype(int)
    b = preprocess_signature(_page((120, 60), noise=False)).astype(int)
    assert np.abs(a - b).mean() < 2


def test_speck_far_away_does_not_move_the_box() -> None:
    page = _page()
    clean = preprocess_signature(page)
    page[5:8, 470:473] = 0  # a dust speck in the corner
    np.testing.assert_array_equal(preprocess_signature(page), clean)
    assert not np.array_equal(preprocess_signature(page, params=SignatureParams(speck_fraction=0)), clean)
    dotted = _page()
    cv2.circle(dotted, (150, 100), 2, 30, -1)  # an i-dot just above the strokes is kept
    crop = signature_crop(dotted)
    assert crop.info["bbox"][1] <= 98 and not np.array_equal(crop.image, clean)


@pytest.mark.parametrize(
    "page",
    [
        np.full((200, 300), 255, np.uint8),
        np.clip(240 + np.random.default_rng(1).normal(0, 4, (200, 300)), 0, 255).astype(np.uint8),
        np.zeros((64, 64, 3), np.uint8),
    ],
)
def test_blank_page_is_safe(page: np.ndarray) -> None:
    crop = signature_crop(page, 60, 90)
    assert crop.image.shape == (60, 90) and not crop.image.any()
    assert crop.info["ink_fraction"] == 0 and crop.info["bbox"] is None and crop.info["blank"]


def test_gray_and_rgb_agree() -> None:
    gray = _page((20, 10), 5.0)
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    np.testing.assert_array_equal(preprocess_signature(rgb), preprocess_signature(gray))
    blue_ink = np.dstack([gray, gray, np.full_like(gray, 255)])  # blue pen on white: still found
    assert np.abs(preprocess_signature(blue_ink).astype(int) - preprocess_signature(gray)).mean() < 15
    with pytest.raises(InvalidImageError):
        preprocess_signature(np.zeros((20, 20, 5), np.uint8))


def test_to_display_and_preprocessor_from_card() -> None:
    page = _page()
    pre = get_preprocessor("signature")(CARD | {"preprocessing": {"kind": "signature", "margin": 0.1}})
    assert isinstance(pre, SignaturePreprocessor) and pre.params.margin == 0.1
    crop = pre(page)
    assert isinstance(crop, Crop) and crop.image.shape == (150, 220)
    shown = to_display(crop)
    assert shown.dtype == np.uint8 and shown[0, 0] == 255 and shown.min() < 100
    rgb_card = {"input": {**CARD["input"], "channels": 3, "height": 64, "width": 96}}
    out = SignaturePreprocessor(rgb_card)(page).image
    assert out.shape == (64, 96, 3) and (out[..., 0] == out[..., 2]).all()
    with pytest.raises(ConfigError, match="unknown signature preprocessing fields"):
        SignaturePreprocessor(CARD | {"preprocessing": {"kind": "signature", "sharpen": 2}})
    with pytest.raises(ConfigError):
        SignaturePreprocessor({"input": {}})


def test_resize_preprocessor() -> None:
    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[:, 40:] = (255, 0, 0)
    pre = get_preprocessor("resize")({"input": {"height": 32, "width": 32, "channels": 3}})
    assert isinstance(pre, ResizePreprocessor)
    crop = pre(rgb)
    assert crop.image.shape == (32, 32, 3) and crop.info["size"] == (40, 80)
    assert tuple(crop.image[5, 30]) == (255, 0, 0) and tuple(crop.image[5, 1]) == (0, 0, 0)
    gray = ResizePreprocessor({"input": {"height": 20, "width": 10, "channels": 1}})(rgb).image
    assert gray.shape == (20, 10) and gray[0, 9] == 76  # RGB -> grey weights: 0.299 * 255
    assert ResizePreprocessor({"input": {"height": 16, "width": 16, "channels": 3}})(rgb[..., 0]).image.shape == (
        16,
        16,
        3,
    )
    with pytest.raises(ConfigError):
        ResizePreprocessor({"input": {"height": 16, "width": 16, "channels": 2}})


# Real-scan options (ink="flat", remove_lines, stroke_width) and input types -------------------------------------


def _signature_box(page: np.ndarray, params: SignatureParams) -> tuple[int, int, int, int]:
    bbox = signature_crop(page, 96, 192, params).info["bbox"]
    assert bbox is not None
    return bbox


def test_old_cards_keep_the_original_pipeline_bundled_cards_ask_for_real_scan_options() -> None:
    defaults = SignatureParams()
    assert (defaults.ink, defaults.remove_lines, defaults.stroke_width) == ("otsu", False, 0.0)
    old_card = {**CARD, "preprocessing": {"kind": "signature"}}  # as cards were written before these options
    assert SignaturePreprocessor(old_card).params == defaults
    for name in ("signature-teacher", "signature-student", "signature-hog"):  # the bundled ones read real scans
        card = json.loads((ASSETS / name / "model.json").read_text())
        params = SignaturePreprocessor(card).params
        assert (params.ink, params.remove_lines) == ("flat", True)
    with pytest.raises(ConfigError):
        SignatureParams(ink="adaptive")
    with pytest.raises(ConfigError):
        SignatureParams(line_span=0)


def test_flat_ink_on_unevenly_lit_grey_paper() -> None:
    page = _page(noise=False).astype(np.float32)
    light = np.linspace(1.0, 0.45, page.shape[1])[None, :]  # a shadow over the right half of the scan
    shaded = np.clip(page * 0.85 * light, 0, 255).astype(np.uint8)
    x, _, w, _ = _signature_box(shaded, SignatureParams(ink="flat"))
    assert 50 <= x <= 70 and 180 <= w <= 230  # the scribble, x 60-260
    _, _, w_otsu, _ = _signature_box(shaded, SignatureParams())
    assert w_otsu > 300  # plain Otsu takes the shadow for ink


def test_blue_ink_on_textured_tinted_paper(rng: np.random.Generator) -> None:
    page = _page(noise=False)
    texture = cv2.GaussianBlur(rng.normal(0, 1, page.shape), (0, 0), 8) * 80 + rng.normal(0, 4, page.shape)
    paper = np.clip(215 + texture, 0, 255)
    ink = (255 - page.astype(np.float32))[..., None] / 225.0
    rgb = paper[..., None] * np.array([1.0, 0.97, 0.85]) * (1 - ink) + np.array([30, 50, 160]) * ink
    x, y, w, h = _signature_box(np.clip(rgb, 0, 255).astype(np.uint8), SignatureParams(ink="flat"))
    assert 50 <= x <= 70 and 180 <= w <= 230 and 100 <= y <= 130 and h <= 110


def test_ruled_lines_are_removed_and_short_underlines_kept() -> None:
    page = _page(noise=False)
    for y in range(20, 300, 45):  # dark ruled lines across the page, slightly tilted
        cv2.line(page, (0, y), (479, y + 6), 60, 2, cv2.LINE_AA)
    cv2.line(page, (0, 0), (0, 299), 60, 3)  # and a box edge
    x, y, w, h = _signature_box(page, SignatureParams(remove_lines=True))
    assert 50 <= x <= 70 and 180 <= w <= 230 and h < 120
    assert _signature_box(page, SignatureParams())[2] > 450  # without removal the lines are ink
    underlined = _page(noise=False)
    cv2.line(underlined, (40, 215), (330, 215), 30, 3)  # the signature's own underline: 60% of the width
    assert _signature_box(underlined, SignatureParams(remove_lines=True))[3] > 80  # the underline is still there
    crossed = signature_crop(page, 96, 192, SignatureParams(remove_lines=True)).info
    clean = signature_crop(_page(noise=False), 96, 192).info
    assert np.abs(np.subtract(crossed["bbox"], clean["bbox"])).max() <= 5  # only where a line runs along a stroke
    assert abs(crossed["ink_fraction"] / clean["ink_fraction"] - 1) < 0.1  # strokes crossing lines stay whole


def test_page_wide_scan_finds_the_signature() -> None:
    page = np.full((900, 1300), 235, np.uint8)
    sig = _page(noise=False)[100:220, 40:280]
    page[650:770, 900:1140] = np.minimum(page[650:770, 900:1140], sig)
    cv2.rectangle(page, (20, 20), (1279, 879), 40, 3)  # a form's frame
    for y in range(120, 600, 60):
        cv2.line(page, (20, y), (1279, y), 90, 2)  # table rows
    x, y, w, h = _signature_box(page, SignatureParams(ink="flat", remove_lines=True))
    assert 900 <= x <= 930 and 650 <= y <= 700 and w <= 260 and h <= 130


def test_a_big_scan_flattens_as_at_full_size_with_the_closing_scaled_down() -> None:
    """A 2,000-pixel page asks for a 101-pixel closing: it runs on the page scaled to a MAX_CLOSING-pixel one (a
    300 dpi A4 page asks for 175 and took 15 s at full size). The flattened page matches the full-size closing
    (the naive reference) to a few grey levels, and the signature is found where it is on white paper, although
    half the page is darker than Otsu's first cut (once taken for a stroke as wide as the page, which asked for a
    closing wider than the page)."""
    from verify.preprocess.signature_ink import MAX_CLOSING, _odd, _paper, flatten_paper

    page = np.full((2000, 1400), 255, np.uint8)
    sig = cv2.resize(_page(noise=False)[100:220, 40:280], (640, 320), interpolation=cv2.INTER_LINEAR)
    page[1400:1720, 600:1240] = sig
    clean = _signature_box(page, SignatureParams(ink="flat", remove_lines=True))
    light = np.linspace(0.95, 0.7, page.shape[0])[:, None]  # paper greying down the page
    page = (page.astype(np.float32) * light).astype(np.uint8)
    k = _odd(round(max(page.shape) / 20))
    assert k > MAX_CLOSING
    reference = np.clip(page.astype(np.float32) / np.maximum(_paper(page, k), 1.0) * 255.0, 0, 255).astype(np.uint8)
    flat = flatten_paper(page, kernel=k)
    diff = np.abs(flat.astype(int) - reference)
    assert diff.mean() < 1.0 and np.percentile(diff, 99.9) <= 6, (diff.mean(), diff.max())
    shaded = _signature_box(page, SignatureParams(ink="flat", remove_lines=True))
    assert 600 <= clean[0] <= 700 and np.abs(np.subtract(shaded, clean)).max() <= 6, (shaded, clean)


def test_input_types_agree_with_uint8_gray() -> None:
    gray = _page((10, 5), 3.0, noise=False)
    ref = preprocess_signature(gray)
    np.testing.assert_array_equal(preprocess_signature(gray.astype(np.uint16) * 257), ref)  # 16-bit
    np.testing.assert_array_equal(preprocess_signature(gray.astype(np.float64) / 255.0), ref)  # float [0, 1]
    rgba = np.zeros((*gray.shape, 4), np.uint8)
    rgba[..., 3] = 255 - gray  # black ink drawn on a transparent sheet
    assert np.abs(preprocess_signature(rgba).astype(int) - ref).mean() < 2
    assert preprocess_signature(gray < 128).any()  # a bilevel (bool) scan
    with pytest.raises(InvalidImageError):
        preprocess_signature(np.full((20, 20), 2.0))
    with pytest.raises(InvalidImageError):
        preprocess_signature(np.zeros((20, 20), np.int32))


def test_stroke_width_normalisation_brings_pens_together() -> None:
    from verify.preprocess.signature_ink import stroke_width

    thin = np.full((300, 480), 255, np.uint8)
    thick = thin.copy()
    xs = np.linspace(60, 420, 80)
    pts = np.stack([xs, 150 + 50 * np.sin(xs / 25.0)], 1).astype(np.int32)
    cv2.polylines(thin, [pts], False, 20, 2)
    cv2.polylines(thick, [pts], False, 20, 9)
    widths = {}
    for name, params in (("raw", SignatureParams()), ("norm", SignatureParams(stroke_width=3.0))):
        a, b = (signature_crop(p, 96, 192, params).image > 0 for p in (thin, thick))
        widths[name] = abs(stroke_width(a) - stroke_width(b))
    assert widths["norm"] < widths["raw"] / 2


def test_faint_thin_strokes_are_ink_not_a_blank_page() -> None:
    """A 1 px pen line 55 grey levels darker than grey paper: blurred, its mean is within the contrast floor
    of the paper (it was called blank), its darkest pixels are not; the same page without the line is blank."""
    rng = np.random.default_rng(3)
    paper = np.clip(225 + rng.normal(0, 3, (120, 320)), 0, 255).astype(np.uint8)
    page = paper.copy()
    xs = np.linspace(30, 290, 80)
    ys = 60 + 25 * np.sin(xs / 15.0)
    cv2.polylines(page, [np.stack([xs, ys], 1).astype(np.int32)], False, 170, 1, cv2.LINE_AA)
    crop = signature_crop(page, 60, 120)
    assert not crop.info["blank"] and crop.info["bbox"][2] > 200
    assert signature_crop(paper, 60, 120).info["blank"]
