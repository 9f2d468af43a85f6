"""`verify batch`: score a pairs CSV (or claims against a gallery) into a results CSV; `verify batch merge`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verify.cli.common import (
    add_gate_flag,
    add_json_flag,
    add_model_flags,
    add_threshold_flag,
    int_at_least,
    print_json,
)
from verify.errors import ConfigError

_EPILOG = """\
input CSV/Parquet: reference,questioned[,label][,id] (paths relative to --images-root, default the input's folder),
or questioned,claimed_identity[,label][,id] with --gallery (both engines). --pairs, --images-root and image paths
may be pyarrow filesystem URIs (file:///abs/pairs.csv, s3://bucket/pairs.parquet, gs://...).
An image path must stay inside --images-root: a row with `../` or an absolute path leading elsewhere fails (its
error says so) unless --allow-outside-root.
A row with more or fewer fields than the header fails on its own; --resume continues only the same run (same
input content, model, threshold, gate mode, shard, images root), recorded in OUT.partial.json / OUT.run.json.
Output: every input column, row (1-based input row),
score, p_match, decision, threshold, ood_score, ood_flag, error (empty when fine), elapsed_ms.
Exit 0: every row scored; 1: some rows have an error (missing/corrupt/rejected image); 2: usage error.
--gate-mode flag: an image the OOD gate refuses is scored anyway (ood_flag true, error empty), not rejected.

sub-action: `verify batch merge PART... --out OUT [--pairs IN]` joins the outputs of --shard runs (an optional
first word: without it, `verify batch --pairs ... --out ...` runs the job).
sharding: --shard i/n (0 <= i < n) takes the rows whose sha1(id or row number) % n == i.
engines: --engine local (default) decodes in --workers processes on this machine; --engine ray runs on a Ray
cluster (--address, or RAY_ADDRESS, or a new local one): each distinct image is embedded once by an actor pool,
results go to OUT.parts/ (CSV OUT) or to the OUT folder itself (OUT ending in .parquet) one partition of
--partition-rows rows at a time, and --resume redoes only the partitions that were not written.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "batch",
        help="verify every pair of a CSV (resumable, sharded); `batch merge` joins shard outputs",
        description="Verify every row of a pairs CSV; writes a results CSV (+ report when labels are given).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pairs", help="input CSV or .parquet (a path or a URI: file:///..., s3://...); required")
    p.add_argument("--out", type=Path, help="results CSV to write; required")
    p.add_argument("--images-root", help="folder (or URI) relative image paths start from (default: the input's)")
    p.add_argument("--gallery", type=Path, help="gallery directory, for questioned,claimed_identity CSVs")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run, skipping rows already done")
    p.add_argument("--workers", type=int, default=0, help="decoding worker processes (default 0: main process)")
    p.add_argument("--batch-size", type=int_at_least(1), default=32, help="images per embedding batch (default 32)")
    p.add_argument("--shard", default="0/1", help="do only shard i of n, as i/n with 0 <= i < n (default 0/1)")
    p.add_argument("--chunk-rows", type=int, default=256, help="rows per durable write to the output (default 256)")
    p.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="accept image paths outside --images-root (../, absolute paths elsewhere); default: such rows fail",
    )
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="where to run (default: local)")
    p.add_argument("--address", help="Ray cluster address (--engine ray; default: RAY_ADDRESS or a local cluster)")
    p.add_argument("--partition-rows", type=int, default=10_000, help="rows per output partition (--engine ray)")
    p.add_argument("--actors", type=int, help="embedding actors (--engine ray; default: one per CPU, or per GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_model_flags(p)
    add_threshold_flag(p)
    add_gate_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="batch_action", metavar="{merge}", parser_class=type(p))
    m = actions.add_parser("merge", help="join the results CSVs of --shard runs into one, in input order")
    m.add_argument("parts", nargs="+", type=Path, help="results CSVs of `verify batch --shard i/n`")
    m.add_argument("--out", type=Path, required=True, help="merged results CSV to write")
    m.add_argument("--pairs", help="the input CSV (path or URI): check that every row is there exactly once")
    m.add_argument("--images-root", type=Path, help="unused by merge; accepted so job scripts can share flags")
    add_json_flag(m)
    m.set_defaults(func=run_merge)


def run(args: argparse.Namespace) -> int:
    from verify.batch import BatchConfig, parse_shard, run_batch
    from verify.models.defaults import resolve_model
    from verify.verifier import Verifier

    if args.pairs is None or args.out is None:
        raise ConfigError("needs --pairs IN.csv and --out OUT.csv (or: verify batch merge PART... --out OUT.csv)")
    config = BatchConfig(
        pairs=args.pairs,
        out=args.out,
        images_root=args.images_root,
        resume=args.resume,
        workers=args.workers,
        batch_size=args.batch_size,
        shard=parse_shard(args.shard),
        chunk_rows=args.chunk_rows,
        gallery=args.gallery,
        allow_outside_root=args.allow_outside_root,
    )
    verifier = Verifier.from_path(
        resolve_model(args.model, args.modality), threshold=args.threshold, gate_mode=args.gate_mode
    )
    if args.modality != "auto" and verifier.model.modality != args.modality:
        raise ConfigError(f"--modality {args.modality}, but the model is a {verifier.model.modality} model")
    engine = run_batch
    if args.engine != "ray" and (args.address is not None or args.actors is not None):
        raise ConfigError("--address and --actors are options of --engine ray")
    if args.engine == "ray":
        from functools import partial

        from verify.batch.ray_engine import run_batch_ray
        from verify.batch.ray_images import RayOptions

        options = RayOptions(
            address=args.address, actors=args.actors, batch_size=args.batch_size, partition_rows=args.partition_rows
        )
        engine = partial(run_batch_ray, options=options)  # type: ignore[assignment]
    if args.gallery is not None:
        from verify.gallery import FaissGallery

        with FaissGallery.open(args.gallery, fingerprint=verifier.model.fingerprint) as gallery:
            summary = engine(verifier, config, gallery=gallery, progress=not args.no_progress)
    else:
        summary = engine(verifier, config, progress=not args.no_progress)
    if args.json:
        print_json(summary.to_dict())
    else:
        print(
            f"{summary.rows} rows (shard {config.shard}): {summary.ok} ok, {summary.failed} with an error "
            f"({summary.rejected} rejected)"
            + (f", {summary.flagged} answered but flagged" if summary.flagged else "")
            + f"; {summary.processed} processed now at {summary.rows_per_s:.1f} rows/s"
        )
        print(f"results: {summary.out}" + (f"  report: {summary.report}" if summary.report else ""))
    return 0 if summary.failed == 0 else 1


def run_merge(args: argparse.Namespace) -> int:
    from verify.batch import merge_parts, read_batch_input
    from verify.batch.shard import read_results

    if args.pairs is not None:
        data = read_batch_input(args.pairs, args.images_root, allow_outside_root=True)
        key, expected, inputs = data.key, data.keys, data.frame
    else:
        columns = list(read_results(args.parts[0]).columns)
        key, expected, inputs = next((c for c in columns if c.strip().lower() == "id"), "row"), None, None
    summary = merge_parts(args.parts, args.out, key, expected, inputs=inputs)
    if args.json:
        print_json({"out": str(summary.out), "rows": summary.rows, "parts": summary.parts})
    else:
        print(f"merged {summary.parts} part(s), {summary.rows} rows -> {summary.out}", file=sys.stdout)
    return 0
