"""`verify embed`: embed every image of a folder or CSV into one Parquet file (for `verify gallery build`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from verify.cli.common import add_gate_flag, add_json_flag, add_model_flags, int_at_least, print_json
from verify.errors import ConfigError

_EPILOG = """\
--images: a folder (every image in it and below; id = path relative to it) or a CSV with a `path` column and
optionally `id` (relative paths start at --images-root, default the CSV's folder).
output columns: id, path, sha256, fingerprint (of the model), embedding (float32 [D]; null when unusable),
status (ok / error / rejected), reason, ood_score. Exit 0: every image embedded; 1: some could not be.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "embed",
        help="embed a folder or CSV of images into a Parquet file (local or on Ray)",
        description="Bulk embedding: one row per image with its embedding, hash, model fingerprint and status.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--images", type=Path, required=True, help="folder of images, or CSV with a path column")
    p.add_argument("--out", type=Path, required=True, help="embeddings Parquet file to write")
    p.add_argument("--images-root", type=Path, help="where relative CSV paths start (default: the CSV's folder)")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="where to run (default: local)")
    p.add_argument("--address", help="Ray cluster address (--engine ray; default: RAY_ADDRESS or a local cluster)")
    p.add_argument("--actors", type=int, help="embedding actors (--engine ray; default: one per CPU, or per GPU)")
    p.add_argument("--workers", type=int, default=0, help="decoding processes (--engine local; default 0)")
    p.add_argument("--batch-size", type=int_at_least(1), default=64, help="images per embedding batch (default 64)")
    add_model_flags(p)
    add_gate_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from verify.batch.embed_job import run_embed
    from verify.models.defaults import resolve_model_path
    from verify.verifier import Verifier

    if args.engine != "ray" and (args.address is not None or args.actors is not None):
        raise ConfigError("--address and --actors are options of --engine ray")
    verifier = Verifier.from_path(resolve_model_path(args.model, args.modality), gate_mode=args.gate_mode)
    options = None
    if args.engine == "ray":
        from verify.batch.ray_images import RayOptions

        options = RayOptions(address=args.address, actors=args.actors, batch_size=args.batch_size)
    summary = run_embed(
        verifier, args.images, args.out, args.engine, args.images_root, options, args.workers, args.batch_size
    )
    if args.json:
        print_json(summary.to_dict())
    else:
        print(
            f"{summary.images} images: {summary.ok} embedded, {summary.failed} not ({summary.rejected} rejected)"
            f" at {summary.images_per_s:.1f} images/s -> {summary.out}"
        )
    return 0 if summary.failed == 0 else 1
