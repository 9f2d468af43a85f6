"""The learned share w of a fused signature score (w x learned cosine + (1 - w) x HOG cosine), chosen on
validation sets that are not the real sample.

Sets: the independent handwriting-font set (data/indep) and the calibration half of the training generator's
held-out writers (the half `verify eval --calibrate` fits thresholds on; the bench's synth rows use the other
half). The real sample is never read here: it only reports the chosen model (bench_signature).
Score = single-reference EER (skilled and random forgeries); the choice is the w with the lowest mean of the
four EERs (two sets x two forgery kinds), ties to the larger learned share.

    python -m bench.bench_fusion --learned DIR [--hog DIR] [--indep DIR] [--synth DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.__main__ import command_line, write_results
from bench.bench_signature import _default_synth, _rel, embed, load_set, synth_test_writers
from verify.data import load_signature_dataset
from verify.eval.multiref import WriterSet, single_reference_scores
from verify.eval.roc import eer
from verify.models.fused import fuse_embeddings
from verify.models.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_fusion"
TITLE = "Fused signature score: learned share chosen on validation sets"
WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))


def calibration_writers(root: Path) -> list[str]:
    """The writers of the held-out set that the synth bench rows do not use."""
    test = set(synth_test_writers(root))
    return sorted({s.identity for s in load_signature_dataset(root, "cedar")} - test)


def sweep(learned: Any, hog: Any, paths: list[Path], data: WriterSet) -> dict[float, dict[str, float]]:
    """EER skilled / random per learned share."""
    e_l, _ = embed(learned, paths)
    e_h, _ = embed(hog, paths)
    return {w: eers(fuse_embeddings([e_l, e_h], [w, 1.0 - w]), data) for w in WEIGHTS}


def eers(emb: np.ndarray, data: WriterSet) -> dict[str, float]:
    """Single-reference EER of skilled and random forgeries."""
    scores = single_reference_scores(emb, data)
    return {k: eer(scores["genuine"], scores[k])[0] for k in ("skilled", "random")}


def choose(results: dict[str, dict[float, dict[str, float]]]) -> float:
    """The w with the lowest mean EER over sets and forgery kinds (ties: the larger w)."""
    mean = {w: float(np.mean([r[w][k] for r in results.values() for k in ("skilled", "random")])) for w in WEIGHTS}
    return max(WEIGHTS, key=lambda w: (-round(mean[w], 6), w))


def table(results: dict[str, dict[float, dict[str, float]]], chosen: float) -> str:
    names = list(results)
    head = "| learned share w | " + " | ".join(f"{n} EER skilled | {n} EER random" for n in names) + " | mean |"
    lines = [head, "|" + "---|" * (2 + 2 * len(names))]
    for w in WEIGHTS:
        cells = [f"{results[n][w][k]:.3f}" for n in names for k in ("skilled", "random")]
        mean = np.mean([float(c) for c in cells])
        mark = " (chosen)" if w == chosen else ""
        lines.append(f"| {w:.1f}{mark} | " + " | ".join(cells) + f" | {mean:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learned", type=Path, required=True, help="the learned model directory")
    parser.add_argument("--hog", type=Path, default=ROOT / "assets" / "models" / "signature-hog", help="HOG model")
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set folder")
    parser.add_argument("--synth", type=Path, help="training generator's held-out set (default: bench_signature's)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    learned, hog = load_model(args.learned), load_model(args.hog)
    synth = args.synth or _default_synth()
    sets: dict[str, tuple[Path, list[str] | None]] = {"synth-calibration": (synth, calibration_writers(synth))}
    if args.indep.is_dir():
        sets["indep"] = (args.indep, None)
    results: dict[str, dict[float, dict[str, float]]] = {}
    for name, (root, writers) in sets.items():
        paths, data = load_set(root, writers)
        results[name] = sweep(learned, hog, paths, data)
        print(f"{name}: done", file=sys.stderr, flush=True)
    chosen = choose(results)
    command = command_line("bench.bench_fusion", argv)
    text = table(results, chosen) + (
        f"\n\nLearned model: {_rel(args.learned)}; HOG: {_rel(args.hog)}. Sets: "
        + "; ".join(f"{n} ({_rel(r)}{', calibration half of the writers' if w else ''})" for n, (r, w) in sets.items())
        + ". Single-reference EER, no threshold fitted. The real sample is not used for this choice."
    )
    print(text)
    payload = {"chosen": chosen, "results": {n: {str(w): r for w, r in res.items()} for n, res in results.items()}}
    write_results(args.out, TITLE, command, text, payload, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
