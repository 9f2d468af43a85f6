"""Several references per writer: the best reference's score (what the gallery does) against a writer-dependent
classifier (a per-writer RBF SVM of the references against a cohort of other people's signatures).

The cohort is the first 5 genuine signatures of each writer of the calibration half of the training generator's
held-out set (synthetic, shippable with a model): never a writer of the set being scored. Sets: the held-out set's
test half, the independent set, the real sample (reported only: nothing here is chosen on it). R references =
the writer's first R genuine signatures; probes as in bench_signature's R-ref rows (the writer's other genuine
signatures, its forgeries, one genuine of every other writer); R is at most the fewest genuine - 2. The SVM's C
and kernel were chosen on the calibration half and the independent set (RBF, C = 1, balanced classes).

    python -m bench.bench_writer_dependent [--model DIR] [--synth DIR] [--refs 1 2 3 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.__main__ import command_line, write_results
from bench.bench_fusion import calibration_writers
from bench.bench_signature import REAL, _default_synth, _rel, embed, load_set, synth_test_writers
from verify.eval.multiref import WriterSet, multi_reference_scores, writer_dependent_scores
from verify.eval.roc import eer
from verify.models.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_writer_dependent"
TITLE = "Several references: best reference or a writer-dependent classifier"
KINDS = ("skilled", "random")


def cohort_of(emb: np.ndarray, data: WriterSet, per_writer: int = 5) -> np.ndarray:
    """The first `per_writer` genuine embeddings of every writer of `data`, stacked."""
    return np.vstack([emb[list(data.genuine[w][:per_writer])] for w in data.writers])


def measure(emb: np.ndarray, data: WriterSet, cohort: np.ndarray, refs: list[int], c: float) -> dict[int, Any]:
    """{R: {"max": {kind: EER}, "svm": {kind: EER}}} for each R the set allows."""
    out: dict[int, Any] = {}
    for r in refs:
        if r > data.min_genuine() - 2:
            continue
        scores = {
            "max": multi_reference_scores(emb, data, r, "max"),
            "svm": writer_dependent_scores(emb, data, r, cohort, c),
        }
        out[r] = {m: {k: eer(s["genuine"], s[k])[0] for k in KINDS} for m, s in scores.items()}
    return out


def table(results: dict[str, dict[int, Any]]) -> str:
    lines = [
        "| set | references | EER skilled, best reference | EER skilled, writer-dependent SVM "
        "| EER random, best reference | EER random, writer-dependent SVM |",
        "|---|---|---|---|---|---|",
    ]
    for name, by_r in results.items():
        for r, m in by_r.items():
            cells = [f"{m[a][k]:.3f}" for k in KINDS for a in ("max", "svm")]
            lines.append(f"| {name} | {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ROOT / "assets" / "models" / "signature-teacher-hog"
    parser.add_argument("--model", type=Path, default=default, help="signature model (default: the bundled default)")
    parser.add_argument("--synth", type=Path, help="training generator's held-out set (default: bench_signature's)")
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set folder")
    parser.add_argument("--real", type=Path, default=REAL, help="real sample (reported only)")
    parser.add_argument("--refs", type=int, nargs="+", default=[1, 2, 3, 5], help="numbers of references R")
    parser.add_argument("--c", type=float, default=1.0, help="the SVM's C")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model = load_model(args.model)
    synth = args.synth or _default_synth()
    paths, data = load_set(synth, calibration_writers(synth))
    cohort = cohort_of(embed(model, paths)[0], data)
    sets: dict[str, tuple[Path, list[str] | None]] = {"synth": (synth, synth_test_writers(synth))}
    if args.indep.is_dir():
        sets["indep"] = (args.indep, None)
    if args.real.is_dir():
        sets["real"] = (args.real, None)
    results: dict[str, dict[int, Any]] = {}
    for name, (root, writers) in sets.items():
        paths, data = load_set(root, writers)
        results[name] = measure(embed(model, paths)[0], data, cohort, args.refs, args.c)
        print(f"{name}: done", file=sys.stderr, flush=True)
    text = table(results) + (
        f"\n\nModel {_rel(args.model)}. Cohort: {len(cohort)} signatures, the first 5 genuine of each writer of the "
        f"calibration half of {_rel(synth)} (synthetic). Sets: synth = the test half of that set's writers; indep = "
        f"{_rel(args.indep)} (synthetic, other fonts and forgers); real = the real sample (reported only). Best "
        f"reference: the max of the probe's cosines to the R references (the gallery's template). Writer-dependent "
        f"SVM: RBF, C = {args.c:g}, balanced classes, the R references against the cohort; its decision value is the "
        "score. EER over all writers' scores pooled (one threshold), no threshold fitted."
    )
    print(text)
    payload = {"results": {n: {str(r): m for r, m in by.items()} for n, by in results.items()}, "cohort": len(cohort)}
    write_results(args.out, TITLE, command_line("bench.bench_writer_dependent", argv), text, payload,
                  time.perf_counter() - start)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
