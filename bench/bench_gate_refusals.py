"""Genuine signatures the bundled signature models' OOD gates refuse, and what they take them for.

Each bundled signature model's own gate (as shipped, nothing refitted) reads every scan of the real sample
(../shared/data/signatures-real-sample: 12 writers x 5 genuine + 5 skilled forgeries, all of them real
signatures; reported only, never fitted or tuned on) and the independent set's genuine signatures (data/indep,
python -m bench.make_indep_set). Reported: how many are refused as "not a signature", by the kind named, and
the bundled demo signatures (assets/demo/signatures) refused.

    python -m bench.bench_gate_refusals [--model DIR ...] [--real DIR] [--indep DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.__main__ import command_line, write_results
from verify.data import load_signature_dataset
from verify.decision import Rejection
from verify.io import load_image
from verify.models.loading import load_model
from verify.ood_gate import kind_words
from verify.verifier import Verifier

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_gate_refusals"
TITLE = "Signature OOD gates: genuine signatures refused"
MODELS = ("signature-teacher-hog", "signature-teacher", "signature-student", "signature-student-hog")


def refusals(verifier: Verifier, paths: list[Path]) -> dict[str, Any]:
    """How many of `paths` the verifier's gate refuses, and the kinds it names."""
    probes = verifier.probes([load_image(p, mode="gray") for p in paths])
    kinds = Counter(_taken_for(r) for p in probes if (r := p.rejection) is not None)
    return {"n": len(paths), "refused": sum(kinds.values()), "kinds": dict(kinds.most_common())}


def _taken_for(rejection: Rejection) -> str:
    """What the refused input was taken for, in the gate's words ("printed text", "a blank page", ...)."""
    return kind_words(rejection.looks_like or ("blank" if rejection.kind == "blank_page" else rejection.kind))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_gate_refusals", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, nargs="+", default=[ROOT / "assets" / "models" / m for m in MODELS])
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "signatures-real-sample")
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set (make_indep_set)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sets: dict[str, list[Path]] = {
        "demo signatures": sorted((ROOT / "assets" / "demo" / "signatures").glob("*/genuine_*"))
    }
    if args.real.is_dir():
        sets["real sample, every scan"] = [s.path for s in load_signature_dataset(args.real, "cedar")]
    if args.indep.is_dir():
        sets["independent set, genuine"] = [
            s.path for s in load_signature_dataset(args.indep, "cedar") if s.kind == "genuine"
        ]
    rows = []
    for model in args.model:
        verifier = Verifier(load_model(model))
        for name, paths in sets.items():
            rows.append({"model": model.name, "set": name, **refusals(verifier, paths)})
    lines = [
        "Each model's bundled gate; real sample: real scans (genuine and forged, all real signatures), reported only. "
        "Independent set and demo signatures: synthetic.",
        "",
        "| model | set | refused | taken for |",
        "|---|---|---|---|",
    ]
    for r in rows:
        kinds = ", ".join(f"{k} {n}" for k, n in r["kinds"].items()) or "-"
        lines.append(f"| {r['model']} | {r['set']} | {r['refused']} of {r['n']} | {kinds} |")
    text = "\n".join(lines)
    print(text)
    command = command_line("bench.bench_gate_refusals", argv)
    write_results(args.out, TITLE, command, text, {"rows": rows}, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
