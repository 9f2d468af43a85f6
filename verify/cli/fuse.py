"""`verify fuse`: a fused model from models that read the same crop (e.g. a fine-tuned teacher + the HOG baseline)."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from verify.cli.common import add_json_flag, print_json
from verify.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fuse",
        help="fuse models into one whose score is the weighted mean of their cosines (as the default signature model)",
        description="Copy the models into OUT/<part> and write a fused card: the embedding is the concatenation of "
        "sqrt(weight) x each model's embedding, so a cosine is the weighted mean of the models' cosines, in "
        "galleries and batch jobs too. The models must share modality, input size and preprocessing (one crop "
        "feeds them all). The new model has no threshold yet: calibrate it with `verify eval --calibrate`.",
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="DIR:WEIGHT",
        help="a model directory and its weight (repeat; weights sum to 1), e.g. runs/ft:0.5",
    )
    p.add_argument("--out", type=Path, required=True, help="the fused model directory to write (replaced)")
    p.add_argument("--name", default=None, help="model name in the card (default: the --out folder's name)")
    add_json_flag(p)
    p.set_defaults(func=run)


def parse_parts(items: list[str]) -> list[tuple[str, Path, float]]:
    """["runs/ft:0.5", ...] -> [(sub-folder name, directory, weight), ...]; sub-folder names are unique."""
    parts: list[tuple[str, Path, float]] = []
    for item in items:
        path, sep, weight = item.rpartition(":")
        try:
            value = float(weight)
        except ValueError:
            value = float("nan")
        if not sep or not path or value != value:
            raise ConfigError(f"--model expects DIR:WEIGHT (e.g. runs/ft:0.5), got {item!r}")
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).name) or "part"
        sub, n = base, 2
        while sub in {s for s, _, _ in parts}:
            sub, n = f"{base}-{n}", n + 1
        parts.append((sub, Path(path), value))
    return parts


def run(args: argparse.Namespace) -> int:
    from verify.models.fused import create_fused_model
    from verify.models.loading import load_model

    parts = parse_parts(args.model)
    for _, path, _ in parts:
        if not (path / "model.json").is_file():
            raise ConfigError(f"--model {path.name}: not a model directory (no model.json)")
    out: Path = args.out
    work = out.with_name(f".{out.name}.fusing")  # built and loaded beside OUT, then moved in: OUT is never half made
    try:
        create_fused_model(work, parts, name=args.name or out.name)
        load_model(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    model = load_model(out)
    report = {"path": str(out), "name": model.card["name"], "dim": model.dim, "fingerprint": model.fingerprint,
              "components": [{"model": p.name, "weight": w} for _, p, w in parts]}  # fmt: skip
    if args.json:
        print_json(report)
        return 0
    listed = " + ".join(f"{w:g} x {p.name}" for _, p, w in parts)
    print(f"fused model {report['name']} ({listed}, {model.dim}-d) -> {out}; calibrate: verify eval --calibrate")
    return 0
