"""`verify match A B`: are these two images the same person?"""

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
    p = subparsers.add_parser("match", help="verify two images (1:1): match / no match / rejected")
    p.add_argument("image_a", help="first image (reference)")
    p.add_argument("image_b", help="second image (questioned)")
    add_model_flags(p)
    add_gate_flag(p)
    add_threshold_flag(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    verifier = load_verifier(args, first_image=args.image_a)
    result = verifier.match(args.image_a, args.image_b, names=[args.image_a, args.image_b])
    code = 1 if result.decision == REJECTED else 0  # ran, but an input was refused: scripts can tell
    rel = None if result.decision == REJECTED else signature_reliability(verifier)
    if args.json:
        print_json({**result.to_dict(), "reliability": None if rel is None else asdict(rel)})
        return code
    line = f"{result.decision.upper()}"
    if result.score is not None:
        line += f"  similarity {result.score:.3f} (threshold {result.threshold:.3f}, {result.threshold_source})"
    if result.probability is not None:
        line += f"  p(match) = {result.probability:.2f}"
    if result.reason:
        line += f"  {result.reason}"
    print(line)
    if rel is not None:
        print(f"trust: {rel.line()}")
    for flag in result.flags:
        print(f"flagged: {flag}")
    for note in result.notes:
        print(f"note: {note}")
    return code
