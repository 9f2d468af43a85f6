"""Signature preprocessing time on big scans: a demo signature as scanned, pasted on A4 pages at 300 and 600 dpi
(white, and greying down the page), and blown up to 8000 x 2000.

Each page goes through the default signature model's preprocessing (paper flattening, ruled-line removal, crop
to ink, fit to the input size); the median of `--repeats` runs is reported, with the paper closing the page asks
for, the one it runs (scaled down beyond `MAX_CLOSING` pixels) and whether the crop's ink box lies on the pasted
signature. Synthetic pages made from a bundled demo signature; timings depend on the machine and its load.

    python -m bench.bench_big_scans [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.__main__ import command_line, write_results
from verify.io import load_image
from verify.models.defaults import assets_dir, default_model_path
from verify.models.loading import load_model
from verify.preprocess import signature_ink as ink

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_big_scans"
TITLE = "Signature preprocessing on big scans"


def _pages(signature: np.ndarray) -> dict[str, tuple[np.ndarray, tuple[int, int, int, int]]]:
    """name -> (grey page, where the signature was put: x, y, w, h)."""
    h, w = signature.shape
    out = {"as scanned": (signature, (0, 0, w, h))}
    for dpi in (300, 600):
        page_w, page_h = round(8.27 * dpi), round(11.69 * dpi)
        scale = dpi / 300 * 800 / w  # about 6.8 cm wide at any dpi
        sig = cv2.resize(signature, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        page = np.full((page_h, page_w), 255, np.uint8)
        x, y = page_w // 2, int(page_h * 0.7)
        page[y : y + sig.shape[0], x : x + sig.shape[1]] = np.minimum(
            page[y : y + sig.shape[0], x : x + sig.shape[1]], sig
        )
        box = (x, y, sig.shape[1], sig.shape[0])
        out[f"A4, {dpi} dpi"] = (page, box)
        shade = np.linspace(0.95, 0.7, page_h, dtype=np.float32)[:, None]
        out[f"A4, {dpi} dpi, paper greying"] = ((page * shade).astype(np.uint8), box)
    big = cv2.resize(signature, (8000, 2000), interpolation=cv2.INTER_CUBIC)
    out["8000 x 2000 blow-up"] = (big, (0, 0, 8000, 2000))
    return out


def _inside(found: tuple[int, int, int, int] | None, put: tuple[int, int, int, int], slack: float = 0.1) -> bool:
    if found is None:
        return False
    fx, fy, fw, fh = found
    px, py, pw, ph = put
    pad_x, pad_y = slack * pw, slack * ph
    return px - pad_x <= fx and py - pad_y <= fy and fx + fw <= px + pw + pad_x and fy + fh <= py + ph + pad_y


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_big_scans", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per page (the median is reported)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model = load_model(default_model_path("signature"))
    signature = load_image(assets_dir() / "demo" / "signatures" / "writer-01" / "genuine_1.png", mode="gray")
    rows = []
    for name, (page, put) in _pages(signature).items():
        times, crop = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            crop = model.preprocess(page)
            times.append(time.perf_counter() - t0)
        k = ink.paper_kernel(ink.to_gray(page))
        rows.append(
            {
                "page": name,
                "size": f"{page.shape[1]} x {page.shape[0]}",
                "megapixels": page.size / 1e6,
                "closing_asked": k,
                "closing_run": min(k, ink.MAX_CLOSING),
                "seconds": float(np.median(times)),
                "found": _inside(crop.info.get("bbox") if crop is not None else None, put),
            }
        )
    lines = [
        f"Model {model.card.get('name')} (the default); median of {args.repeats} runs of its preprocessing; pages "
        "made from a bundled demo signature (synthetic). Closing: the paper estimate's ellipse in pixels, asked for "
        f"by the page and run (scaled down beyond {ink.MAX_CLOSING}).",
        "",
        "| page | size | megapixels | closing asked / run | seconds | signature found |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['page']} | {r['size']} | {r['megapixels']:.1f} | {r['closing_asked']} / {r['closing_run']} | "
        f"{r['seconds']:.2f} | {'yes' if r['found'] else 'no'} |"
        for r in rows
    ]
    text = "\n".join(lines)
    print(text)
    write_results(
        args.out, TITLE, command_line("bench.bench_big_scans", argv), text, {"rows": rows}, time.perf_counter() - start
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
