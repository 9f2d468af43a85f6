"""How far apart the generator's skilled forgeries are from genuine signatures before any image is made.

The synthetic skilled-forgery target (EER <= 0.10, single reference) is judged on the training generator's held-out
test writers. This bench re-draws those very writers' pen traces (generator v2: same seed, same writer and sample
indices as the images on disk) and scores each genuine/forgery pair by dynamic time warping between the two pen
paths, as an online-signature verifier would: it knows the stroke order and the exact geometry, and sees no paper,
ink, resolution or crop. Two oracles: the path resampled by arc length (shape and stroke order), and the path
sampled in time (shape, order and speed: slow strokes weigh more). Beside them, the image models on the same
writers and pairs. If the oracles sit near the target, the target asks an image model to read more than the
generator puts between a forger and the writer. Synthetic throughout.

    python -m bench.bench_forgery_oracle [--synth runs/mm/data/heldout] [--writers 80] [--model DIR ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.spatial.distance import cdist
from tqdm import tqdm

from bench.__main__ import command_line, write_results
from bench.bench_signature import embed, load_set, synth_test_writers
from verify.eval.multiref import WriterSet, multi_reference_scores, single_reference_scores
from verify.eval.roc import eer
from verify.io import load_image
from verify.models.loading import load_model
from verify.synth.generator import NameSignatureGenerator
from verify.synth.scan import ScanConfig
from verify.synth.writer import Trace

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_forgery_oracle"
TITLE = "Synthetic skilled forgeries: pen-trace oracle"
MODELS = ("signature-hog", "signature-teacher", "signature-teacher-hog")
N_REFS = 5
ARC_STEP = 0.15  # x-heights between resampled points of the arc-length path
TIME_STRIDE = 8  # every 8th sample of the trace (the generator samples at a fixed time step)


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Dynamic time warping between point sequences a [N, D] and b [M, D] (Euclidean local cost, steps (1,1),
    (1,0), (0,1)), divided by N + M. Filled one anti-diagonal at a time."""
    cost = cdist(a, b)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        acc[i, j] = cost[i - 1, j - 1] + np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
    return float(acc[n, m] / (n + m))


def _normalise(points: np.ndarray) -> np.ndarray:
    """Centred on the mean point, scaled to unit RMS radius (what a crop-and-resize does to an image)."""
    p = points - points.mean(axis=0)
    return p / max(float(np.sqrt((p**2).sum(axis=1).mean())), 1e-9)


def arc_path(traces: list[Trace], step: float = ARC_STEP) -> np.ndarray:
    """The traces' points resampled every `step` x-heights along the pen path, pen-down components in writing
    order, normalised. [N, 2]"""
    parts = []
    for t in traces:
        along = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(t.xy, axis=0), axis=1))]
        s = np.arange(0.0, max(along[-1], 1e-9), step)
        parts.append(np.stack([np.interp(s, along, t.xy[:, 0]), np.interp(s, along, t.xy[:, 1])], axis=1))
    return _normalise(np.concatenate(parts))


def time_path(traces: list[Trace], stride: int = TIME_STRIDE) -> np.ndarray:
    """The traces' points as the generator sampled them (every 5 ms), every `stride`-th, normalised. [N, 2]"""
    return _normalise(np.concatenate([t.xy[::stride] for t in traces]))


ORACLES: dict[str, Callable[[list[Trace]], np.ndarray]] = {
    "pen path by arc length (shape, stroke order)": arc_path,
    "pen path in time (shape, stroke order, speed)": time_path,
}


def oracle_similarity(
    gen: NameSignatureGenerator, writers: list[int], n_genuine: int, n_skilled: int, path: Callable
) -> np.ndarray:
    """-DTW between every two samples of each writer: [W, G + S, G + S] (genuine first, then skilled; skilled x
    skilled left at 0, never read)."""
    n = n_genuine + n_skilled
    out = np.zeros((len(writers), n, n))
    for wi, w in enumerate(tqdm(writers, desc="pen traces", unit="writer", leave=False)):
        seqs = [path(gen.traces(w, "genuine", i)[0]) for i in range(n_genuine)]
        seqs += [path(gen.traces(w, "skilled", i)[0]) for i in range(n_skilled)]
        for a, b in itertools.product(range(n_genuine), range(n)):
            if b > a:
                out[wi, a, b] = out[wi, b, a] = -dtw_distance(seqs[a], seqs[b])
    return out


def oracle_eers(sim: np.ndarray, n_genuine: int, n_refs: int) -> dict[str, float]:
    """Skilled-forgery EER from per-writer similarities, single reference and `n_refs` references (max), with the
    pairs of `single_reference_scores` / `multi_reference_scores` (genuine probes and the writer's forgeries)."""
    genuine, skilled, genuine_r, skilled_r = [], [], [], []
    n = sim.shape[1]
    for s in sim:
        genuine += [s[a, b] for a, b in itertools.combinations(range(n_genuine), 2)]
        skilled += [s[a, f] for a in range(n_genuine) for f in range(n_genuine, n)]
        refs = list(range(n_refs))
        genuine_r += [s[p, refs].max() for p in range(n_refs, n_genuine)]
        skilled_r += [s[f, refs].max() for f in range(n_genuine, n)]
    return {"skilled": eer(genuine, skilled)[0], f"skilled_{n_refs}ref": eer(genuine_r, skilled_r)[0]}


def model_eers(emb: np.ndarray, data: WriterSet, n_refs: int) -> dict[str, float]:
    one = single_reference_scores(emb, data)  # skilled only: a one-writer set has no random forgeries
    many = multi_reference_scores(emb, data, n_refs, "max")
    return {
        "skilled": eer(one["genuine"], one["skilled"])[0],
        f"skilled_{n_refs}ref": eer(many["genuine"], many["skilled"])[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_forgery_oracle", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--synth", type=Path, default=ROOT / "runs" / "mm" / "data" / "heldout",
        help="a generator v2 set written by training.synth_sets (its spec.json says how); its test half is scored",
    )  # fmt: skip
    parser.add_argument("--writers", type=int, default=0, help="score only the first N test writers (0: all)")
    parser.add_argument("--model", type=Path, nargs="+", default=[ROOT / "assets" / "models" / m for m in MODELS])
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    spec_file = args.synth / "spec.json"
    if not spec_file.is_file():
        parser.error(f"{args.synth} has no spec.json: write it with training.synth_sets.write_synth_set")
    spec = json.loads(spec_file.read_text())
    if spec["simple"]:
        parser.error("the set has simple forgeries; this bench reads skilled forgeries only")
    names = synth_test_writers(args.synth)
    names = names[: args.writers] if args.writers else names
    paths, data = load_set(args.synth, names)
    if {len(v) for v in data.genuine.values()} != {spec["genuine"]}:
        parser.error(f"{args.synth} does not hold {spec['genuine']} genuine signatures per writer as its spec says")
    scan = ScanConfig(session_share=spec["session_share"])
    gen = NameSignatureGenerator(seed=spec["seed"], scan=scan, all_caps_share=spec["all_caps_share"])
    ids = [int(name) - 1 for name in data.writers]  # file writer w + 1 is generator writer w
    first = load_image(paths[data.genuine[data.writers[0]][0]])  # RGB, as the generator renders
    if not np.array_equal(first, gen.render(ids[0], "genuine", 0)):
        parser.error(f"{args.synth}'s images are not the generator's for its spec.json: the oracle would score others")
    rows = []
    for label, path in ORACLES.items():
        sim = oracle_similarity(gen, ids, spec["genuine"], spec["skilled"], path)
        rows.append({"scorer": f"oracle: {label}", **oracle_eers(sim, spec["genuine"], N_REFS)})
    for model_dir in args.model:
        rows.append({"scorer": model_dir.name, **model_eers(embed(load_model(model_dir), paths)[0], data, N_REFS)})
    lines = [
        f"{len(ids)} test writers of the held-out set ({args.synth.name}: generator v2 seed {spec['seed']}), "
        f"{spec['genuine']} genuine + {spec['skilled']} skilled forgeries each; the oracles score the same samples' "
        f"pen traces by DTW, the models their images. EER of skilled forgeries, single reference and {N_REFS} "
        "references (max of the similarities). Synthetic.",
        "",
        f"| scorer | EER skilled, 1 reference | EER skilled, {N_REFS} references (max) |",
        "|---|---|---|",
        *(f"| {r['scorer']} | {r['skilled']:.3f} | {r[f'skilled_{N_REFS}ref']:.3f} |" for r in rows),
    ]
    text = "\n".join(lines)
    print(text)
    command = command_line("bench.bench_forgery_oracle", argv)
    write_results(args.out, TITLE, command, text, {"rows": rows}, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
