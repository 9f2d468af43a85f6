"""The signature OOD gate, refitted with outlier exposure: share of each kind of non-signature input rejected and
share of genuine signatures refused, per model.

For each model, a copy of its directory gets a gate refitted by `verify ood fit` (gate "exposure") on synthetic
signatures (70% of the writers fit it, 30% set its threshold); it is then judged on data it never saw:
signatures of other synthetic writers (another seed; scans, and binarised copies), and the "eval" split of the
OOD material (other seeds, source images and fonts than the fit split). Optionally the number of images of a
real sample it refuses (a check that real scans pass; nothing is fitted or tuned on it).

    python -m bench.bench_ood [--models DIR ...] [--writers 40] [--material 120] [--real DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from training.ood_exposure import binarised
from training.ood_fit import fit_ood_gate
from training.ood_material import ood_material
from verify.data import load_signature_dataset
from verify.data.splits import split_identities, split_samples
from verify.io import load_image
from verify.models.loading import load_model
from verify.synth import generate_dataset
from verify.verifier import Verifier

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_ood.json"
MODELS = [ROOT / "assets" / "models" / n for n in ("signature-teacher", "signature-student", "signature-hog")]


def refused(verifier: Verifier, images: list) -> float:
    """Share of inputs the verifier refuses (blank page or OOD gate)."""
    return float(np.mean([p.rejected is not None for p in verifier.probes(images)])) if images else float("nan")


def bench_model(path: Path, data: Path, test: Path, args: argparse.Namespace, tmp: Path) -> dict:
    model_dir = shutil.copytree(path, tmp / path.name)
    model = load_model(model_dir)
    samples = load_signature_dataset(data, "cedar")
    split = split_identities(sorted({s.identity for s in samples}), {"train": 0.7, "held_out": 0.3}, seed=0)
    parts = split_samples(samples, split)
    t0 = time.perf_counter()
    section = fit_ood_gate(model, parts["train"], parts["held_out"], gate="exposure", material_n=args.material)
    fit_s = time.perf_counter() - t0
    verifier = Verifier(load_model(model_dir))
    mode = "gray" if int(model.card["input"]["channels"]) == 1 else "rgb"
    genuine = [load_image(s.path, mode=mode) for s in load_signature_dataset(test, "cedar") if s.kind == "genuine"]
    row = {
        "model": path.name,
        "features": section["features"],
        "fit_seconds": fit_s,
        "genuine refused": refused(verifier, genuine),
        "binarised genuine refused": refused(verifier, [binarised(im) for im in genuine]),
        "n_genuine": len(genuine),
    }
    material = ood_material(150, 220, n=args.n, seed=11, split="eval")
    row.update({f"{kind} rejected": refused(verifier, images) for kind, images in material.items()})
    if args.real and Path(args.real).is_dir():
        real = sorted(p for p in Path(args.real).rglob("*") if p.suffix.lower() in {".png", ".jpg", ".tif", ".bmp"})
        flags = [p.rejected is not None for p in verifier.probes([str(p) for p in real])]
        row["real sample refused"] = f"{sum(flags)} of {len(flags)}"
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=[str(p) for p in MODELS], help="signature model dirs")
    parser.add_argument("--writers", type=int, default=40, help="synthetic writers to fit the gate on")
    parser.add_argument("--material", type=int, default=120, help="outlier images per kind to fit on")
    parser.add_argument("--n", type=int, default=60, help="held-out outlier images per kind to judge on")
    parser.add_argument("--generator", default="v2", help="synthetic signature generator (v1 or v2)")
    parser.add_argument("--real", default=None, help="a folder of real scans: report how many are refused")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        kw = {"generator": args.generator} if args.generator != "v1" else {}
        data = generate_dataset(tmp / "fit", args.writers, 8, 2, seed=5, progress=False, **kw)
        test = generate_dataset(tmp / "test", 20, 6, 1, seed=9, progress=False, **kw)
        for path in args.models:
            rows.append(bench_model(Path(path), data, test, args, tmp))
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "data": f"synthetic signatures ({args.generator}): gate fitted on {args.writers} writers (seed 5), judged on "
        "20 other writers (seed 9); OOD material: fit split vs eval split (other seeds, sources, fonts)",
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    cols = [k for k in rows[0] if k.endswith(("refused", "rejected"))] if rows else []
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        cells = [r[c] if isinstance(r[c], str) else f"{r[c]:.0%}" for c in cols]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    RESULTS.with_suffix(".md").write_text(f"{result['data']}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
