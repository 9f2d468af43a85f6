"""`verify enroll --gallery G --name NAME IMAGE...`: add samples of one identity to a gallery."""

from __future__ import annotations

import argparse

from verify.cli.common import add_gate_flag, add_json_flag, add_model_flags, load_verifier, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("enroll", help="enroll images of one identity into a gallery (created if missing)")
    p.add_argument("images", nargs="+", help="image files of the identity")
    p.add_argument("--gallery", required=True, help="gallery directory (created with the model if missing)")
    p.add_argument("--name", required=True, help="identity name")
    p.add_argument("--index-type", default="Flat", help="faiss index_factory string for a new gallery (default Flat)")
    p.add_argument("--no-keep-images", action="store_true", help="do not store the images (no re-embedding later)")
    p.add_argument("--no-quality-check", action="store_true", help="accept low-quality face samples")
    add_model_flags(p)
    add_gate_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from verify.enroll import enroll_images
    from verify.gallery import FaissGallery

    verifier = load_verifier(args, first_image=args.images[0])
    model = verifier.model
    with FaissGallery.open_or_create(
        args.gallery, dim=model.dim, fingerprint=model.fingerprint, index_type=args.index_type
    ) as gallery:
        report = enroll_images(
            verifier,
            gallery,
            args.name,
            args.images,
            keep_images=not args.no_keep_images,
            check_quality=not args.no_quality_check,
        )
    if args.json:
        print_json(report.to_dict())
    else:
        for o in report.outcomes:
            reason = o.reason.removeprefix(f"{o.source}: ")  # the line already names the image
            print(f"{o.status:9s} {o.source}" + (f"  ({reason})" if reason else ""))
        for w in report.warnings:
            print(f"warning: {w}")
        print(f"{report.enrolled} sample(s) enrolled for {report.name!r}")
    return 0 if all(o.status != "refused" for o in report.outcomes) else 1
