"""`verify identify --gallery G IMAGE`: who is this, among the enrolled, or "unknown"?"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from verify.cli.common import (
    add_gate_flag,
    add_json_flag,
    add_model_flags,
    add_threshold_flag,
    load_verifier,
    print_json,
    signature_reliability,
)
from verify.decision import REJECTED


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("identify", help="open-set identification (1:N) of one image against a gallery")
    p.add_argument("image", help="the probe image")
    p.add_argument("--gallery", required=True, help="gallery directory")
    p.add_argument("-k", "--top-k", type=int, default=5, help="how many candidates to list (default 5)")
    add_model_flags(p)
    add_gate_flag(p)
    add_threshold_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from verify.gallery import FaissGallery

    verifier = load_verifier(args, first_image=args.image)
    with FaissGallery.open(args.gallery, fingerprint=verifier.model.fingerprint) as gallery:
        result = verifier.identify(args.image, gallery, k=args.top_k, name=args.image)
    code = 1 if result.decision == REJECTED else 0  # ran, but the input was refused: scripts can tell
    rel = None if result.decision == REJECTED else signature_reliability(verifier)
    if args.json:
        print_json({**result.to_dict(), "reliability": None if rel is None else asdict(rel)})
        return code
    if result.decision == REJECTED:
        print(f"REJECTED  {result.reason}")
    elif result.identity is None:
        print(f"UNKNOWN  no enrolled identity reaches the threshold {result.threshold:.3f}")
    else:
        print(f"{result.identity}  similarity {result.score:.3f} (threshold {result.threshold:.3f})")
    for name, score in result.candidates:
        print(f"  {score:7.3f}  {name}")
    if rel is not None:
        print(f"trust: {rel.line()}")
    for flag in result.flags:
        print(f"flagged: {flag}")
    return code
