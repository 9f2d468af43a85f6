"""An independent signature EVALUATION set, built differently from the training generators (never train or
calibrate on it): names written with TrueType/OpenType handwriting fonts, in the CEDAR layout.

- A writer = a name (first name, initial or both + surname, from the lists below), one handwriting font (the
  "hand"), and a style: size, slant, letter spacing, baseline drift, pen width, optional underline or flourish.
- Genuine: the writer's name re-rendered letter by letter with small per-letter jitter (position, size,
  rotation), a small whole-image affine and a smooth elastic warp.
- Skilled forgery: the same name by a forger who copies the shape: most use the writer's font (the letter
  shapes) with the forger's own errors (proportions, spacing, slant, tremor, pen width, no or other
  flourish); some write the right name in another hand (simple forgeries).
- Random forgery (for the benchmark): other writers' genuine signatures.
- Scan simulation, per image: white to grey or tinted paper with texture, ruled lines, black or blue ink of
  varying density, resolution change, blur, JPEG artefacts, rotation, margins; saved as RGB PNG.

Fonts come from Debian packages (apt-get install fonts-dancingscript fonts-breip fonts-dkg-handwriting
fonts-ecolier-court fonts-femkeklaver fonts-kaushanscript fonts-kristi fonts-rufscript fonts-bwht fonts-humor-sans
fonts-joscelyn fonts-havana); the fonts used are listed in OUT/PROVENANCE.json. A font must have a glyph for every
letter a name uses: fonts without the plain Latin letters are left out, and a writer's (or a forger's) font is
drawn among those that can write the writer's name (some lack "ö" or "ü"), so no image shows a missing-glyph box.
Seeded: same fonts, same arguments, same bytes.

Usage: python -m bench.make_indep_set --out data/indep --writers 40 [--genuine 10 --forgeries 10 --seed 7]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts",)
FONT_NAMES = (  # handwriting / script faces from the Debian packages named above (file stems)
    "DancingScript-Regular", "DancingScript-Bold", "Breip", "dkg", "dkgIt", "Ecolier-court", "femkeklaver",
    "KaushanScript-Regular", "Kristi", "Rufscript010", "BecauseWeBuild-Regular",
    "BecauseWeConnect-Regular", "BecauseWeCreate-Regular", "BecauseWeLearn-Regular", "BecauseWeMentor-Regular",
    "BecauseWeOrganize-Regular", "Humor-Sans", "Joscelyn-Regular", "Havana-Regular",
)  # fmt: skip
LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz."  # what every font must write (names, initials)
FIRST = (
    "Anna", "Boris", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Irene", "Jonas", "Karin", "Lukas", "Maria",
    "Nikos", "Olga", "Pedro", "Quentin", "Rosa", "Stefan", "Tanja", "Ulrich", "Vera", "Walter", "Xenia", "Yusuf",
    "Zoe", "Amir", "Bianca", "Claude", "Dmitri", "Esther", "Felix", "Greta", "Henrik", "Ines", "Jakob", "Lena",
    "Marco", "Nadia", "Oscar", "Paula", "Rafael", "Sofia", "Tomas", "Ursula", "Viktor", "Wanda", "Yara",
)  # fmt: skip
LAST = (
    "Albrecht", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Gallagher", "Horvath", "Ivanova", "Jansen",
    "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka",
    "Underwood", "Varga", "Whitfield", "Yilmaz", "Zimmermann", "Almeida", "Bergström", "Costa", "Delgado",
    "Engel", "Fontaine", "Grünwald", "Hughes", "Ibarra", "Jovanovic", "Keller", "Lambert", "Marsh", "Nilsen",
    "Olsen", "Pereira", "Reyes", "Sandoval", "Thornton", "Ueda", "Vogel", "Wagner", "Young", "Ziegler",
    "Brennan", "Carvalho", "Dalton", "Ferreira", "Haas", "Kaplan", "Larsen", "Mendes", "Navarro", "Price",
)  # fmt: skip


@dataclass(frozen=True)
class Hand:
    """How one person writes: font and style."""

    font: str
    size: int  # font size in pixels
    slant: float  # horizontal shear (x += slant * (bottom - y))
    spacing: float  # advance multiplier
    drift: float  # baseline slope, pixels per pixel
    pen: int  # stroke width change: dilate (>0) / erode (<0) iterations
    underline: str  # "", "line" or "loop"
    jitter: float  # per-letter variation, as a fraction of the size


def find_fonts(names: tuple[str, ...] = FONT_NAMES) -> list[Path]:
    """The handwriting fonts installed, in the order of `names` (missing ones, and ones that cannot write every
    plain Latin letter, skipped)."""
    found: dict[str, Path] = {}
    for root in FONT_DIRS:
        for path in sorted(Path(root).rglob("*")):
            if path.suffix.lower() in (".ttf", ".otf") and path.stem in names:
                found.setdefault(path.stem, path)
    return [found[n] for n in names if n in found and font_covers(found[n], LATIN)]


@cache
def _glyphs(font: Path) -> frozenset[int]:
    """The code points `font` has a glyph for (its best Unicode cmap)."""
    logging.getLogger("fontTools").setLevel(logging.ERROR)  # some fonts' harmless table quirks are logged
    with TTFont(str(font), fontNumber=0, lazy=True) as tt:
        return frozenset(tt.getBestCmap() or {})


def font_covers(font: Path | str, text: str) -> bool:
    """Whether `font` has a glyph for every character of `text` but spaces (else PIL draws a box)."""
    glyphs = _glyphs(Path(font))
    return all(ord(c) in glyphs for c in text if not c.isspace())


def _name(rng: np.random.Generator, surname: str) -> str:
    first = str(rng.choice(FIRST))
    form = rng.choice(["full", "initial", "initials", "surname"], p=[0.4, 0.35, 0.1, 0.15])
    if form == "full":
        return f"{first} {surname}"
    if form == "initial":
        return f"{first[0]}. {surname}"
    if form == "initials":
        return f"{first[0]}{surname[0]} {surname}"
    return surname


def _hand(rng: np.random.Generator, fonts: list[Path]) -> Hand:
    return Hand(
        font=str(fonts[int(rng.integers(len(fonts)))]),
        size=int(rng.integers(56, 96)),
        slant=float(rng.uniform(-0.15, 0.45)),
        spacing=float(rng.uniform(0.8, 1.1)),
        drift=float(rng.uniform(-0.08, 0.08)),
        pen=int(rng.choice([-1, 0, 0, 1, 2])),
        underline=str(rng.choice(["", "", "line", "loop"])),
        jitter=float(rng.uniform(0.02, 0.06)),
    )


def _forger(rng: np.random.Generator, hand: Hand, fonts: list[Path]) -> Hand:
    """A forger's imitation of `hand`: mostly the same letter shapes with the forger's own proportions."""
    other = len(fonts) > 1 and rng.random() < 0.3
    font = str(fonts[int(rng.integers(len(fonts)))]) if other else hand.font
    return Hand(
        font=font,
        size=int(hand.size * rng.uniform(0.85, 1.15)),
        slant=hand.slant + float(rng.uniform(-0.15, 0.15)),
        spacing=hand.spacing * float(rng.uniform(0.85, 1.15)),
        drift=hand.drift + float(rng.uniform(-0.04, 0.04)),
        pen=int(np.clip(hand.pen + rng.integers(-1, 2), -1, 2)),
        underline=hand.underline if rng.random() < 0.6 else str(rng.choice(["", "line", "loop"])),
        jitter=hand.jitter * float(rng.uniform(1.5, 2.5)),
    )


def _render(text: str, hand: Hand, rng: np.random.Generator, tremor: float = 0.0) -> np.ndarray:
    """Ink coverage float [H, W] in [0, 1] of `text` written by `hand` (one random repetition)."""
    font = ImageFont.truetype(hand.font, hand.size)
    width = int(sum(font.getlength(c) for c in text) * hand.spacing * 1.3 + 4 * hand.size)
    canvas = Image.new("L", (width, 4 * hand.size), 0)
    draw = ImageDraw.Draw(canvas)
    x, base = float(hand.size), 2.2 * hand.size
    for ch in text:
        s = hand.jitter
        dy = rng.normal(0, s * hand.size) + hand.drift * (x - hand.size)
        glyph = ImageFont.truetype(hand.font, max(8, int(hand.size * (1 + rng.normal(0, s)))))
        draw.text((x, base + dy), ch, fill=255, font=glyph, anchor="ls")
        x += font.getlength(ch) * hand.spacing * (1 + rng.normal(0, s))
    ink = np.asarray(canvas, np.float32) / 255.0
    if hand.underline:
        ink = _underline(ink, hand, x, base, rng)
    return _warp(ink, hand, rng, tremor)


def _underline(ink: np.ndarray, hand: Hand, end: float, base: float, rng: np.random.Generator) -> np.ndarray:
    out = (ink * 255).astype(np.uint8)
    t = np.linspace(0, 1, 60)
    x0, x1 = hand.size * rng.uniform(0.8, 1.5), end * rng.uniform(0.85, 1.05)
    y = base + hand.size * (0.25 + 0.1 * rng.normal()) + hand.drift * (t * (x1 - x0))
    xs = x0 + t * (x1 - x0)
    if hand.underline == "loop":  # a paraph: the line comes back in a loop under the name
        xs = np.r_[xs, x1 - (x1 - x0) * 0.3 * np.sin(np.linspace(0, np.pi, 30))]
        y = np.r_[y, y[-1] + hand.size * 0.3 * np.sin(np.linspace(0, np.pi, 30)) ** 2]
    ys = y + rng.normal(0, hand.size * 0.02, y.shape).cumsum() * 0.2
    pts = np.stack([xs, ys], 1).astype(np.int32)
    cv2.polylines(out, [pts], False, 255, max(1, hand.size // 24), cv2.LINE_AA)
    return out.astype(np.float32) / 255.0


def _warp(ink: np.ndarray, hand: Hand, rng: np.random.Generator, tremor: float) -> np.ndarray:
    """Slant + small affine + smooth elastic field (+ forger's tremor), then the pen width."""
    h, w = ink.shape
    angle = np.deg2rad(rng.normal(0, 2.0))
    scale = rng.uniform(0.95, 1.05)
    m = np.array([[1, -hand.slant, hand.slant * h / 2], [0, 1, 0]], np.float64)
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), np.rad2deg(angle), scale)
    m = rot @ np.vstack([m, [0, 0, 1]])
    out = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    for sigma, amp in ((hand.size * 0.8, hand.size * 0.06), (hand.size * 0.15, tremor * hand.size)):
        if amp <= 0:
            continue
        field = [cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma) for _ in range(2)]
        field = [f / (np.abs(f).max() + 1e-6) * amp for f in field]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        out = cv2.remap(out, gx + field[0], gy + field[1], cv2.INTER_LINEAR, borderValue=0)
    if hand.pen:
        kernel = np.ones((3, 3), np.uint8)
        op = cv2.dilate if hand.pen > 0 else cv2.erode
        thick = op((out * 255).astype(np.uint8), kernel, iterations=abs(hand.pen))
        out = thick.astype(np.float32) / 255.0 if thick.any() else out
    return out


def _scan(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage -> an RGB uint8 scan: paper, rules, ink colour, resolution, blur, JPEG, rotation, margin."""
    ys, xs = np.nonzero(ink > 0.05)
    if ys.size == 0:
        raise RuntimeError("nothing rendered: the font has no glyphs for this name")
    pad = int(rng.integers(8, 60))
    ink = np.pad(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], pad)
    h, w = ink.shape
    paper = rng.uniform(185, 250) + rng.normal(0, rng.uniform(1, 6), (h, w))
    paper += cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), rng.uniform(5, 30)) * rng.uniform(0, 60)
    tint = rng.uniform(-10, 10, 3) * np.array([1.0, 1.0, -1.0])
    page = np.clip(paper[..., None] + tint, 0, 255)
    if rng.random() < 0.3:  # ruled paper: light blue or grey lines
        gap, colour = int(rng.integers(28, 60)), rng.choice([0, 1])
        line = np.array([150, 180, 230]) if colour else np.array([160, 160, 160])
        for y in range(int(rng.integers(0, gap)), h, gap):
            page[y : y + int(rng.integers(1, 3))] = line * rng.uniform(0.9, 1.05)
    ink_rgb = np.array([20, 20, 25]) if rng.random() < 0.6 else np.array([25, 40, 140])
    density = rng.uniform(0.7, 1.0) * np.clip(1 + rng.normal(0, 0.08, (h, w)), 0.6, 1.2)
    alpha = np.clip(ink * density, 0, 1)[..., None]
    image = page * (1 - alpha) + ink_rgb * alpha
    scale = rng.uniform(0.45, 1.0)  # resolution of the scanner
    size = (max(8, int(w * scale)), max(8, int(h * scale)))
    image = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.0))
    angle = rng.normal(0, 1.5)
    ih, iw = image.shape[:2]
    rot = cv2.getRotationMatrix2D((iw / 2, ih / 2), angle, 1.0)
    border = tuple(float(v) for v in np.median(image.reshape(-1, 3), axis=0))
    image = cv2.warpAffine(image, rot, (iw, ih), borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    out = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        _, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
        out = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))[..., ::-1]
    return np.ascontiguousarray(out)


def build(out: Path, writers: int, genuine: int, forgeries: int, seed: int, fonts: list[Path]) -> Path:
    """Write OUT/full_org, OUT/full_forg, manifest.csv and PROVENANCE.json; returns OUT."""
    if not fonts:
        raise SystemExit("no handwriting fonts found; install the Debian packages named in this module's docstring")
    if writers > len(LAST):
        raise SystemExit(f"at most {len(LAST)} writers (one surname each)")
    rng = np.random.default_rng(seed)
    surnames = rng.permutation(len(LAST))[:writers]
    (out / "full_org").mkdir(parents=True, exist_ok=True)
    (out / "full_forg").mkdir(parents=True, exist_ok=True)
    rows, people = [], []
    for w, k in enumerate(surnames, start=1):
        wrng = np.random.default_rng([seed, w])
        name = _name(wrng, LAST[int(k)])
        usable = [f for f in fonts if font_covers(f, name)]  # fonts that can write this name
        if not usable:
            raise SystemExit(f"none of the fonts has every letter of {name!r}")
        hand = _hand(wrng, usable)
        people.append({"writer": w, "name": name, "hand": {**asdict(hand), "font": Path(hand.font).name}})
        for i in range(1, genuine + 1):
            rel = f"full_org/original_{w}_{i}.png"
            _save(out / rel, _scan(_render(name, hand, wrng), wrng))
            rows.append((rel, w, "genuine"))
        for i in range(1, forgeries + 1):
            forger = _forger(wrng, hand, usable)
            rel = f"full_forg/forgeries_{w}_{i}.png"
            _save(out / rel, _scan(_render(name, forger, wrng, tremor=float(wrng.uniform(0.005, 0.02))), wrng))
            rows.append((rel, w, "skilled"))
    with (out / "manifest.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([("path", "writer", "kind"), *rows])
    provenance = {
        "what": "independent signature evaluation set (handwriting fonts, not the training generators); "
        "evaluation only: never train or calibrate on it",
        "made_by": "python -m bench.make_indep_set",
        "args": {"writers": writers, "genuine": genuine, "forgeries": forgeries, "seed": seed},
        "fonts": [p.name for p in fonts],
        "writers": people,
    }
    (out / "PROVENANCE.json").write_text(json.dumps(provenance, indent=1, ensure_ascii=False) + "\n")
    return out


def _save(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), rgb[..., ::-1]):
        raise OSError(f"could not write {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.make_indep_set", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="output folder (CEDAR layout)")
    parser.add_argument("--writers", type=int, default=40, help="writers (default 40)")
    parser.add_argument("--genuine", type=int, default=10, help="genuine signatures per writer (default 10)")
    parser.add_argument("--forgeries", type=int, default=10, help="skilled forgeries per writer (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    fonts = find_fonts()
    build(args.out, args.writers, args.genuine, args.forgeries, args.seed, fonts)
    n = args.writers * (args.genuine + args.forgeries)
    print(f"wrote {n} images of {args.writers} writers ({len(fonts)} fonts) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
