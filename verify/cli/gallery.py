"""`verify gallery list|remove|reembed|stats|build|recover`: look after an enrolled gallery, fill one in bulk, or
recover what a damaged one holds."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify.cli.common import add_json_flag, add_model_flags, print_json

if TYPE_CHECKING:
    from verify.gallery import FaissGallery
    from verify.gallery.types import IdentityInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gallery", help="list, remove, re-embed, describe, build or recover a gallery")
    sub = p.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="identities and their sample counts")
    ls.add_argument("--samples", action="store_true", help="list every sample too")
    rm = sub.add_parser("remove", help="remove an identity or one sample")
    who = rm.add_mutually_exclusive_group(required=True)
    who.add_argument("--name", help="identity to remove with all its samples")
    who.add_argument("--sample", type=int, help="sample id to remove")
    re = sub.add_parser("reembed", help="re-embed the stored images with another model (after a model change)")
    add_model_flags(re)
    st = sub.add_parser("stats", help="counts, index type, model fingerprint, size on disk")
    bd = sub.add_parser("build", help="fill a gallery in one pass from `verify embed` output and a labels CSV")
    bd.add_argument("--from", dest="embeddings", type=Path, required=True, help="embeddings Parquet (verify embed)")
    bd.add_argument("--labels", type=Path, required=True, help="CSV with id (or path) and identity columns")
    bd.add_argument("--index-type", help="FAISS type of a new gallery (default by size: Flat, IVF{n},Flat, IVF-PQ)")
    bd.add_argument("--model", help="model directory: refuse embeddings made by another model")
    bd.add_argument(
        "--skip-flagged",
        action="store_true",
        help="leave out rows the gate flagged (embedded with --gate-mode flag); by default they are added and counted",
    )
    rc = sub.add_parser(
        "recover",
        help="copy what a damaged gallery database still holds into a new one (the damaged file is kept beside it)",
    )
    for q in (ls, rm, re, st, bd, rc):
        q.add_argument("--gallery", required=True, help="gallery directory")
    add_json_flag(bd)
    add_json_flag(rc)
    add_json_flag(ls)
    add_json_flag(st)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from verify.gallery import FaissGallery

    if args.gallery_command == "reembed":
        return _reembed(args)
    if args.gallery_command == "build":
        return _build(args)
    if args.gallery_command == "recover":
        return _recover(args)
    with FaissGallery.open(args.gallery) as gallery:
        if args.gallery_command == "list":
            rows = [_identity_row(gallery, info, args.samples) for info in gallery.identities()]
            if args.json:
                print_json({"identities": rows})
            else:
                for row in rows:
                    print(f"{row['n_samples']:4d}  {row['name']}")
                    for s in row.get("samples", []):
                        print(f"      sample {s['id']}  {s['enrolled_at']}  {s['source'] or ''}".rstrip())
        elif args.gallery_command == "remove":
            if args.name is not None:
                gallery.remove_identity(args.name)
                print(f"removed identity {args.name!r}")
            else:
                gallery.remove_sample(args.sample)
                print(f"removed sample {args.sample}")
        else:
            stats = gallery.stats()
            if args.json:
                print_json(stats)
            else:
                for key, value in stats.items():
                    if isinstance(value, dict):  # e.g. file_bytes: one indented line per file
                        print(f"{key}:")
                        for name, item in value.items():
                            print(f"  {name}: {item}")
                    else:
                        print(f"{key}: {value}")
    return 0


def _identity_row(gallery: FaissGallery, info: IdentityInfo, with_samples: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"name": info.name, "n_samples": info.n_samples}
    if with_samples:
        row["samples"] = [
            {"id": s.sample_id, "source": s.source, "enrolled_at": s.enrolled_at} for s in gallery.samples(info.name)
        ]
    return row


def _build(args: argparse.Namespace) -> int:
    from verify.gallery.bulk import build_gallery

    fingerprint = None
    if args.model is not None:
        from verify.models.loading import load_model

        fingerprint = load_model(args.model).fingerprint
    summary = build_gallery(
        args.gallery,
        args.embeddings,
        args.labels,
        fingerprint=fingerprint,
        index_type=args.index_type,
        skip_flagged=args.skip_flagged,
    )
    if args.json:
        print_json(summary.to_dict())
    else:
        print(
            f"{args.gallery}: added {summary.added} samples of {summary.identities} identities ({summary.index_type});"
            f" skipped {summary.skipped_unlabelled} unlabelled, {summary.skipped_unusable} unusable,"
            f" {summary.skipped_duplicate} already enrolled"
            + (f", {summary.skipped_flagged} flagged by the gate" if summary.skipped_flagged else "")
            + f"; {summary.seconds:.1f} s"
        )
        for warning in summary.warnings:
            print(f"warning: {warning}")
        if summary.flagged:
            print(
                f"note: {summary.flagged} of the rows given to the gallery were flagged by the gate (embedded with "
                "--gate-mode flag: they did not look like the modality's input); --skip-flagged leaves them out"
            )
    return 0


def _recover(args: argparse.Namespace) -> int:
    """Exit 0 when the gallery was healthy or everything was read back, 1 when some rows could not be."""
    from verify.gallery.recover import recover_gallery

    report = recover_gallery(args.gallery)
    if args.json:
        print_json({**asdict(report), "complete": report.complete})
    elif not report.damaged:
        print(f"{args.gallery}: the gallery database is not damaged; nothing was changed")
    else:
        print(
            f"{args.gallery}: recovered {report.identities} identities and {report.samples} samples; the damaged "
            f"database is kept as {report.kept_as}"
        )
        lost = [
            (report.identities_unreadable, "identity ids could not be read (lost to the damage, or no longer used)"),
            (report.samples_unreadable, "sample ids could not be read (lost to the damage, or no longer used)"),
            (report.samples_orphaned, "samples were dropped: their identity was lost"),
            (report.samples_invalid, "samples were dropped: their embedding was damaged"),
        ]
        for n, what in lost:
            if n != 0:
                print(f"warning: {'an unknown number of' if n is None else n} {what}")
        if report.emptied:
            print(f"warning: no sample is left of {', '.join(report.emptied)}: enroll them again")
        if not report.complete:
            print("note: `verify gallery list --samples` shows what is left; enroll what is missing again")
    return 0 if report.complete else 1


def _reembed(args: argparse.Namespace) -> int:
    from verify.enroll import reembed_gallery
    from verify.gallery import FaissGallery
    from verify.models.defaults import resolve_model
    from verify.verifier import Verifier

    verifier = Verifier.from_path(resolve_model(args.model, args.modality))
    with FaissGallery.open(args.gallery) as gallery:
        reembed_gallery(verifier, gallery)
    model = verifier.model
    print(f"re-embedded {args.gallery} with {model.card.get('name')} ({model.fingerprint})")
    return 0
