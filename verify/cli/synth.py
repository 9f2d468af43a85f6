"""`verify synth signatures`: write a synthetic signature dataset (CEDAR layout) and an optional preview."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from verify.cli.common import add_json_flag, int_at_least, print_json


def register(subparsers: Any) -> None:
    """Add `synth` with its `signatures` subcommand."""
    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic data",
        description="Generate synthetic data for training and tests.",
    )
    kinds = parser.add_subparsers(dest="synth_kind", metavar="KIND", parser_class=type(parser))
    sig = kinds.add_parser(
        "signatures",
        help="sigma-lognormal synthetic signatures with skilled forgeries, in the CEDAR layout",
        description=(
            "Write full_org/original_{w}_{i}.png, full_forg/forgeries_{w}_{i}.png and manifest.csv "
            "(synthetic data: sigma-lognormal writers and skilled forgers). --generator v2 writes people's names "
            "in Hershey script or print letters, with skilled forgers and scan domain randomisation (RGB)."
        ),
    )
    sig.add_argument("--writers", type=int, required=True, help="number of writers")
    sig.add_argument("--genuine", type=int, required=True, help="genuine signatures per writer")
    sig.add_argument("--forgeries", type=int, required=True, help="skilled forgeries per writer")
    sig.add_argument("--seed", type=int_at_least(0), default=0, help="random seed; same seed, same bytes (default: 0)")
    sig.add_argument("--out", type=Path, required=True, help="output folder")
    sig.add_argument("--height", type=int_at_least(16, 4096), default=150, help="image height in pixels (default: 150)")
    sig.add_argument("--width", type=int_at_least(16, 4096), default=220, help="image width in pixels (default: 220)")
    sig.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    sig.add_argument(
        "--generator",
        choices=("v1", "v2"),
        default="v1",
        help="v1: sigma-lognormal abstract writers (gray); v2: names in script or print letters, skilled forgers, "
        "RGB scans with domain randomisation (default: v1)",
    )
    sig.add_argument(
        "--natural-size",
        action="store_true",
        help="v2: tight crops at their own size instead of HEIGHT x WIDTH canvases",
    )
    sig.add_argument("--preview", action="store_true", help="also write OUT/preview.png, a contact sheet")
    sig.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_flag(sig)
    sig.set_defaults(func=run)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    """Generate the dataset; print a one-line summary (or one JSON object with --json)."""
    from verify.synth import generate_dataset, write_preview

    start = time.perf_counter()
    out = generate_dataset(
        args.out,
        writers=args.writers,
        genuine=args.genuine,
        forgeries=args.forgeries,
        seed=args.seed,
        height=args.height,
        width=args.width,
        workers=args.workers,
        progress=not (args.no_progress or args.json),
        generator=args.generator,
        natural_size=args.natural_size,
    )
    seconds = time.perf_counter() - start
    images = args.writers * (args.genuine + args.forgeries)
    preview = None
    if args.preview:
        preview = write_preview(out, writers=min(4, args.writers))
    summary = {
        "out": str(out),
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": round(images / max(seconds, 1e-9), 1),
        "preview": str(preview) if preview else None,
    }
    if args.json:
        print_json(summary)
    else:
        extra = f", preview {preview}" if preview else ""
        print(f"wrote {images} images to {out} in {seconds:.2f} s ({summary['images_per_s']} images/s){extra}")
    return 0
