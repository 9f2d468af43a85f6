"""Single-reference score normalisation: the raw cosine against symmetric S-norm and adaptive S-norm (top-k), each
image's cosines to a cohort of other people's signatures giving the mean and spread its scores are z-normed by.

The cohort is every genuine signature of the calibration half of the training generator's held-out set (synthetic,
shippable with a model): never a writer of the set being scored. Sets: the held-out set's test half, the
independent set, the real sample (reported only: nothing here is chosen on it). Pairs: bench_signature's 1-ref
protocol (`verify.eval.multiref.single_reference_pairs`).

    python -m bench.bench_score_norm [--models DIR ...] [--synth DIR] [--top-k 50 200]
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
from verify.eval.multiref import single_reference_scores, snorm_scores
from verify.eval.roc import eer
from verify.models.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_score_norm"
TITLE = "Single-reference score normalisation (S-norm) against a synthetic cohort"
KINDS = ("skilled", "random")
MODELS = [ROOT / "assets" / "models" / m for m in ("signature-teacher-hog", "signature-teacher")]


def measure(emb: np.ndarray, data: Any, cohort: np.ndarray, top_ks: list[int]) -> dict[str, dict[str, float]]:
    """{scoring: {kind: EER}} for the raw cosine, S-norm and adaptive S-norm at each top k."""
    scorings = {"raw cosine": single_reference_scores(emb, data), "S-norm": snorm_scores(emb, data, cohort)}
    scorings |= {f"adaptive S-norm, top {k}": snorm_scores(emb, data, cohort, k) for k in top_ks}
    return {name: {k: eer(s["genuine"], s[k])[0] for k in KINDS} for name, s in scorings.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, nargs="+", default=MODELS, help="signature models")
    parser.add_argument("--synth", type=Path, help="training generator's held-out set (default: bench_signature's)")
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set folder")
    parser.add_argument("--real", type=Path, default=REAL, help="real sample (reported only)")
    parser.add_argument("--top-k", type=int, nargs="+", default=[50, 200], help="adaptive S-norm cohort sizes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    synth = args.synth or _default_synth()
    sets: dict[str, tuple[Path, list[str] | None]] = {"synth": (synth, synth_test_writers(synth))}
    if args.indep.is_dir():
        sets["indep"] = (args.indep, None)
    if args.real.is_dir():
        sets["real"] = (args.real, None)
    cohort_paths, cohort_set = load_set(synth, calibration_writers(synth))
    results: dict[str, dict[str, Any]] = {}
    for model_dir in args.models:
        model = load_model(model_dir)
        cohort = embed(model, cohort_paths)[0]
        for name, (root, writers) in sets.items():
            paths, data = load_set(root, writers)
            results[f"{model_dir.name}|{name}"] = measure(embed(model, paths)[0], data, cohort, args.top_k)
            print(f"{model_dir.name} {name}: done", file=sys.stderr, flush=True)
    lines = ["| model | set | scoring | EER skilled | EER random |", "|---|---|---|---|---|"]
    for key, by_scoring in results.items():
        model_name, set_name = key.split("|")
        for scoring, e in by_scoring.items():
            lines.append(f"| {model_name} | {set_name} | {scoring} | {e['skilled']:.3f} | {e['random']:.3f} |")
    n_cohort = len(cohort_paths)
    text = "\n".join(lines) + (
        f"\n\nCohort: {n_cohort} signatures, every genuine signature of the {len(cohort_set.writers)} writers of the "
        f"calibration half of {_rel(synth)} (synthetic). Sets: synth = the test half of that set's writers; indep = "
        f"{_rel(args.indep)} (synthetic, other fonts and forgers); real = the real sample (reported only). Single "
        "reference, EER over all writers' scores pooled, no threshold fitted."
    )
    print(text)
    payload = {"results": results, "cohort": n_cohort}
    write_results(args.out, TITLE, command_line("bench.bench_score_norm", argv), text, payload,
                  time.perf_counter() - start)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
