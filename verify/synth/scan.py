"""Render pen traces as a scanned signature, with scan domain randomisation (generator v2).

Per image: scan resolution (100-600 dpi, so stroke width against letter size varies), pen (thin ballpoint to
felt-tip), ink (black, blue, blue-black, blue-green), paper (white, gray, cream, tinted, textured; sometimes
ruled lines or a signature box), pose (rotation, margins), scanner (blur, noise, gray or binarised output,
JPEG). Two framings: a tight crop at the image's own size (like signatures cut from forms), or a fixed canvas.
A share of images is drawn like small tight crops of modern scans: thin strokes, 70-260 px wide, RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from verify.errors import ConfigError
from verify.synth.scan_profile import ScanProfile, sample_profile
from verify.synth.writer import Trace

_SS = 2  # supersampling of the ink drawing
_SHIFT = 3  # fixed-point bits of cv2 drawing coordinates
_LEVELS = 6  # pen widths per image (one drawing call per run of equal width)
_MIN_SIDE = 40  # tight crops are at least this many pixels on their short side
_BANK = (512, 1024)  # size of the precomputed noise field
_MIN_CONTRAST = 90.0  # gray levels between paper and ink, at least
_MIN_XHEIGHT = 5.0  # ... and letters at least this many pixels high


@dataclass(frozen=True)
class ScanConfig:
    """What the renderer may vary, and the output framing.

    Attributes:
        canvas: (height, width) of every output image, or None for tight crops at their own size.
        max_side: tight crops larger than this (pixels) are scanned at a lower resolution instead.
        small_crop_share: fraction of sessions drawn as small, thin-stroked tight crops (x-height 9-28 px).
        gray_share: fraction of gray scans (three equal channels); the rest keep ink and paper colour.
        binary_share: fraction of binarised scans (black on white).
        jpeg_share: fraction of images saved as JPEG (quality 35-95).
        ruled_share: fraction with ruled lines behind the signature.
        box_share: fraction with a signature box (a rectangle, partly cut by the crop).
        max_rotation: largest rotation, degrees.
        session_share: fraction of a writer's images (genuine and forged) scanned in the writer's own session
            (same paper, ink, resolution, scanner), as in a collected dataset; the rest draw a session each.
    """

    canvas: tuple[int, int] | None = None
    max_side: int = 420
    small_crop_share: float = 0.45
    gray_share: float = 0.3
    binary_share: float = 0.08
    jpeg_share: float = 0.3
    ruled_share: float = 0.12
    box_share: float = 0.08
    max_rotation: float = 8.0
    session_share: float = 0.5

    def __post_init__(self) -> None:
        shares = (self.small_crop_share, self.gray_share, self.binary_share, self.jpeg_share, self.ruled_share)
        if not all(0.0 <= s <= 1.0 for s in (*shares, self.box_share, self.session_share)):
            raise ConfigError(f"scan shares must lie in [0, 1]: {self}")
        if self.canvas is not None and min(self.canvas) < 16:
            raise ConfigError(f"canvas {self.canvas} is too small; use at least 16x16 (default 150x220)")
        if self.max_side < 32:
            raise ConfigError(f"max_side {self.max_side} is too small; use at least 32")


@dataclass(frozen=True)
class Ink:
    """The pen of one image."""

    width_px: float  # line width at relative width 1, output pixels
    rgb: tuple[float, float, float]  # ink colour
    opacity: float  # 0-1


def _rotate(traces: list[Trace], degrees: float) -> list[np.ndarray]:
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return [(t.xy @ rot.T) * np.array([1.0, -1.0]) for t in traces]  # y down from here on


@cache
def _noise_bank(smooth: bool) -> np.ndarray:
    """A fixed field of Gaussian noise [512, 1024] (smoothed: paper texture); images take random windows of it,
    which costs a copy instead of drawing every pixel."""
    field = np.random.default_rng(20_261_201 + smooth).standard_normal((_BANK[0], _BANK[1]), dtype=np.float32)
    if smooth:
        field = np.asarray(cv2.GaussianBlur(field, (0, 0), 1.3, borderType=cv2.BORDER_REFLECT), np.float32)  # std ~0.22
    return field


def _noise(h: int, w: int, rng: np.random.Generator, smooth: bool) -> np.ndarray:
    """Gaussian noise [h, w] (std 1, or about 0.22 when smooth): a random window of the bank, randomly flipped
    (tiled for large images)."""
    bank = _noise_bank(smooth)
    if h > bank.shape[0] or w > bank.shape[1]:
        bank = np.tile(bank, (-(-h // bank.shape[0]), -(-w // bank.shape[1])))
    y = int(rng.integers(0, bank.shape[0] - h + 1))
    x = int(rng.integers(0, bank.shape[1] - w + 1))
    window = bank[y : y + h, x : x + w]
    flip = int(rng.integers(4))
    return window[:: 1 if flip & 1 else -1, :: 1 if flip & 2 else -1]


def _paper(h: int, w: int, profile: ScanProfile, rng: np.random.Generator) -> np.ndarray:
    """Paper [H, W, 3] float32: the session's tone, slow shading, fine grain and sometimes texture."""
    gy, gx = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    shade = cv2.resize(rng.normal(0.0, 1.0, (gy, gx)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    page = np.asarray(profile.paper_rgb, np.float32)[None, None, :] + (rng.uniform(0.5, 5.0) * shade)[:, :, None]
    page += profile.paper_grain * _noise(h, w, rng, smooth=False)[:, :, None]
    if profile.textured:
        tex = _noise(h, w, rng, smooth=True)
        page += (rng.uniform(4.0, 14.0) * tex)[:, :, None]
    return page


def _guides(page: np.ndarray, box: tuple[float, float, float, float], xh: float, profile: ScanProfile, rng) -> None:
    """Ruled lines and/or a signature box, drawn on the paper in place."""
    w = page.shape[1]
    x0, y0, x1, y1 = box
    colour = rng.choice([0, 1])
    tone = (
        np.array([rng.uniform(120, 200), rng.uniform(150, 210), rng.uniform(200, 245)])
        if colour
        else np.full(3, rng.uniform(60, 190))
    )
    thick = max(1, round(rng.uniform(0.03, 0.09) * xh))
    if profile.ruled:
        gap = max(12.0, rng.uniform(2.0, 3.5) * xh)
        y = y1 - rng.uniform(-0.1, 0.4) * xh  # a line near the baseline region
        while y > 0:
            cv2.line(page, (0, int(y)), (w - 1, int(y + rng.normal(0, 0.5))), tone.tolist(), thick, cv2.LINE_AA)
            y -= gap
    if profile.box:
        pad = rng.uniform(0.1, 0.6, 4) * xh
        p0 = (int(x0 - pad[0]), int(y0 - pad[1]))
        p1 = (int(x1 + pad[2]), int(y1 + pad[3]))
        cv2.rectangle(page, p0, p1, tone.tolist(), thick, cv2.LINE_AA)


def _coverage(
    pixels: list[np.ndarray], traces: list[Trace], h: int, w: int, width_px: float, tone: float
) -> np.ndarray:
    """Ink coverage in [0, 1] [H, W], drawn at `_SS` x (thin pens) or 1 x: one drawing call per pen-width level."""
    ss = _SS if width_px < 2.5 else 1
    canvas = np.zeros((h * ss, w * ss), np.uint8)
    widths = np.concatenate([t.width for t in traces]) * width_px * ss
    lo, hi = float(widths.min()), float(widths.max()) + 1e-6
    runs: list[list[np.ndarray]] = [[] for _ in range(_LEVELS)]
    for pix, trace in zip(pixels, traces, strict=True):
        seg = trace.width * width_px * ss
        level = np.minimum(((seg - lo) / (hi - lo) * _LEVELS).astype(np.int64), _LEVELS - 1)
        fixed = np.round(pix * (ss * (1 << _SHIFT))).astype(np.int32)
        cuts = np.flatnonzero(np.diff(level)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [level.size - 1]])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            runs[int(level[a])].append(fixed[a : max(b, a + 1) + 1])
    for lev, polys in enumerate(runs):  # thin first, thick last
        if not polys:
            continue
        px = lo + (lev + 0.5) * (hi - lo) / _LEVELS
        shade = 1.0 if px >= 1.0 else max(px, 0.7)  # sub-pixel pens: lighter, not thinner
        shade = int(255 * shade * (1.0 - tone * (1.0 - (lev + 1) / _LEVELS)))  # ballpoints: lighter when light
        cv2.polylines(canvas, polys, False, shade, max(1, round(px)), cv2.LINE_AA, _SHIFT)
    small = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA) if ss > 1 else canvas
    return small.astype(np.float32) / 255.0


def _scanner(page: np.ndarray, profile: ScanProfile, pen_px: float, rng: np.random.Generator) -> np.ndarray:
    """Blur (at most about half the pen width: thin lines stay visible), noise, gray or binarised output, JPEG;
    returns uint8 RGB."""
    blur = min(profile.blur, 0.5 * pen_px) * float(np.exp(rng.normal(0.0, 0.15)))
    if blur > 0.25:
        page = cv2.GaussianBlur(page, (0, 0), blur)
    page = page + rng.uniform(0.3, 2.5) * _noise(page.shape[0], page.shape[1], rng, smooth=False)[:, :, None]
    img = np.clip(page, 0, 255).astype(np.uint8)
    if profile.mode == "binary":
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        paper, ink = float(np.median(gray)), float(gray.min())  # a scanner's fixed threshold between the two
        noise = 1.4826 * float(np.median(np.abs(gray.astype(np.float32) - paper)))  # paper grain (robust std)
        level = min(paper - rng.uniform(0.25, 0.5) * (paper - ink), paper - 4.0 * noise - 6.0)
        bw = np.where(gray > level, 255, 0).astype(np.uint8)
        img = cv2.cvtColor(bw, cv2.COLOR_GRAY2RGB)
    elif profile.mode == "gray":
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if profile.jpeg_quality:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, profile.jpeg_quality])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # channel order is kept through the round trip
    return img


def create_profile(cfg: ScanConfig, blue_ink: bool, rng: np.random.Generator) -> ScanProfile:
    """A scanning session drawn with the shares of `cfg`."""
    return sample_profile(
        rng,
        blue_ink,
        cfg.small_crop_share,
        cfg.gray_share,
        cfg.binary_share,
        cfg.jpeg_share,
        cfg.ruled_share,
        cfg.box_share,
    )


def _legible_ink(ink: tuple[float, float, float], paper: tuple[float, float, float]) -> tuple[float, float, float]:
    """The ink, darkened where needed so that it stays at least `_MIN_CONTRAST` gray levels below the paper."""
    weights = np.array([0.299, 0.587, 0.114])
    ink_y, paper_y = float(np.dot(ink, weights)), float(np.dot(paper, weights))
    if paper_y - ink_y >= _MIN_CONTRAST:
        return ink
    f = max(0.0, paper_y - _MIN_CONTRAST) / max(ink_y, 1e-6)
    return (ink[0] * f, ink[1] * f, ink[2] * f)


def render_scan(
    traces: list[Trace],
    pen_mm: float,
    xheight_mm: float,
    profile: ScanProfile,
    cfg: ScanConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """One scanned signature.

    Args:
        traces: pen-down traces (x-height units, y up).
        pen_mm: line width of the pen, mm.
        xheight_mm: x-height on paper, mm (with the dpi it fixes letter size in pixels).
        profile: the scanning session (paper, ink, resolution, scanner).
        cfg: framing and rotation range.
        rng: the generator of this image (pose, margins, texture, noise).

    Returns:
        uint8 RGB image [H, W, 3]: ink on paper.
    """
    rot = rng.normal(0.0, cfg.max_rotation / 5.0)
    pts = _rotate(traces, float(np.clip(rot, -cfg.max_rotation, cfg.max_rotation)))
    allp = np.concatenate(pts)
    lo, hi = allp.min(0), allp.max(0)
    size = np.maximum(hi - lo, 1e-3)  # x-heights
    small = profile.small
    pen_rel = min(0.12, pen_mm / xheight_mm * float(np.exp(rng.normal(0.0, 0.1))))  # pen width, x-heights
    if small:
        scale = profile.small_xheight_px * float(np.exp(rng.normal(0.0, 0.06)))  # x-height of a small modern scan
        if cfg.canvas is None:
            scale = min(scale, rng.uniform(200.0, 300.0) / size[0])
        pen_rel = profile.small_pen_px * float(np.exp(rng.normal(0.0, 0.08))) / scale
    else:
        scale = xheight_mm * profile.dpi * float(np.exp(rng.normal(0.0, 0.08))) / 25.4
    if cfg.canvas is None:
        margin = rng.uniform(0.0, 0.12 if small else 0.35, 4) * size.max()
        extent = size + margin[:2] + margin[2:]
        scale = max(scale, _MIN_SIDE / float(extent.min()), _MIN_XHEIGHT)
        scale = min(scale, cfg.max_side / float(extent.max()))
        out_hw = None
    else:
        ch, cw = cfg.canvas
        fill = rng.uniform(0.6, 0.95)
        fit = fill * min(cw / size[0], ch / size[1])
        low = min(scale, fit)  # scanned at a resolution lower than the canvas needs: upscaled afterwards
        free = np.array([cw, ch]) / fit * low - size * low
        off = rng.uniform(0.1, 0.9, 2) * np.maximum(free, 0)
        margin = np.array([off[0], off[1], free[0] - off[0], free[1] - off[1]]) / low
        scale, out_hw = low, (ch, cw)
    origin = lo - margin[:2]
    h = max(8, int(np.ceil((size[1] + margin[1] + margin[3]) * scale)))
    w = max(8, int(np.ceil((size[0] + margin[0] + margin[2]) * scale)))
    pixels = [(p - origin) * scale for p in pts]
    page = _paper(h, w, profile, rng)
    xh_px = scale
    box = (margin[0] * scale, margin[1] * scale, (margin[0] + size[0]) * scale, (margin[1] + size[1]) * scale)
    _guides(page, box, xh_px, profile, rng)
    ink = Ink(
        width_px=max(1.3 if profile.mode == "binary" else 0.8, pen_rel * scale),  # binarising loses fainter lines
        rgb=_legible_ink(profile.ink_rgb, profile.paper_rgb),
        opacity=rng.uniform(0.8, 1.0),
    )
    tone = rng.uniform(0.0, 0.5) if rng.random() < 0.6 else 0.0  # ink darkness follows pressure (ballpoint)
    cover = _coverage(pixels, traces, h, w, ink.width_px, tone)
    alpha = (cover * np.float32(ink.opacity))[:, :, None]
    page += alpha * (np.asarray(ink.rgb, np.float32)[None, None, :] - page)  # ink over paper
    if out_hw is not None and (h, w) != out_hw:
        page = cv2.resize(page, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR)
    return _scanner(page.astype(np.float32), profile, ink.width_px, rng)
