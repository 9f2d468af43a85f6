"""Signature verification accuracy of every signature model on every evaluation set, single and multi-reference.

Sets (each skipped with a note when absent):
  real   ../shared/data/signatures-real-sample (real scans, 12 writers x 5 genuine + 5 skilled; validation only);
  indep  data/indep: the independent handwriting-font set (python -m bench.make_indep_set --out data/indep);
  synth  the training generator's held-out test writers: --synth DIR (CEDAR layout), default make models'
         held-out set (runs/make_models/data/heldout, or regenerated: generator v2, seed 1, 160 writers), of
         which only the test half of the writers is used (the calibration half chose the cards' thresholds).
Pairs: 1-ref = verify.eval.multiref.single_reference_scores (the protocol of the real-sample tool: all genuine
pairs; genuine x own forgeries; genuine x first genuine of each other writer). R-ref = the first R genuine as
references (R = 5, or fewer to keep two genuine probes per writer), scores aggregated (mean, max, mean of
top 3; optionally per-writer z-norm against the other writers' references). No threshold is fitted anywhere:
EER and AUC are threshold-free, TAR@FAR=1e-2 is read off the ROC.

    python -m bench.bench_signature [--model DIR ...] [--sets real indep synth] [--synth DIR] [--indep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.__main__ import command_line, machine
from verify.data import load_signature_dataset
from verify.data.splits import split_identities
from verify.eval.multiref import Aggregation, WriterSet, multi_reference_scores, single_reference_scores
from verify.eval.roc import roc_summary
from verify.fsutil import atomic_write_json
from verify.io import load_image
from verify.models.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_signature"
MODELS = ("signature-hog", "signature-teacher", "signature-student", "signature-teacher-hog", "signature-student-hog")
REAL = ROOT.parent / "shared" / "data" / "signatures-real-sample"
TITLE = "Signature accuracy: real scans, independent set, synthetic test writers"
AGGREGATIONS: tuple[tuple[Aggregation, bool], ...] = (
    ("mean", False), ("max", False), ("topk", False), ("mean", True), ("topk", True)
)  # fmt: skip


def load_set(root: Path, writers: list[str] | None = None) -> tuple[list[Path], WriterSet]:
    """Image paths and their rows by writer (CEDAR layout, file order by index); optionally only `writers`."""
    samples = load_signature_dataset(root, "cedar")
    keep = set(writers) if writers is not None else None
    samples = [s for s in samples if keep is None or s.identity in keep]
    samples.sort(key=lambda s: (s.identity, s.kind, _index(s.path)))
    genuine: dict[str, list[int]] = {}
    forgeries: dict[str, list[int]] = {}
    for row, s in enumerate(samples):
        (genuine if s.kind == "genuine" else forgeries).setdefault(s.identity, []).append(row)
    return [s.path for s in samples], WriterSet(genuine, forgeries)


def _index(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[-1])


def synth_test_writers(root: Path) -> list[str]:
    """The test half of the writers, as `verify eval` splits them (calibration fraction 0.5, seed 0)."""
    ids = sorted({s.identity for s in load_signature_dataset(root, "cedar")})
    return list(split_identities(ids, {"calibration": 0.5, "test": 0.5}, 0)["test"])


def embed(model: Any, paths: list[Path], batch: int = 32) -> tuple[np.ndarray, float]:
    """Embeddings [N, D] of the decoded images and the images per second (decode + preprocess + embed)."""
    start = time.perf_counter()
    out = [model.embed([load_image(p) for p in paths[i : i + batch]], batch_size=batch)
           for i in range(0, len(paths), batch)]  # fmt: skip
    return np.concatenate(out), len(paths) / (time.perf_counter() - start)


def _metrics(scores: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": {k: len(v) for k, v in scores.items()}}
    for kind in ("skilled", "random"):
        if len(scores["genuine"]) and len(scores[kind]):
            s = roc_summary(scores["genuine"], scores[kind], fars=(1e-2,))
            out[kind] = {"eer": s["eer"], "auc": s["auc"], "tar@far=0.01": s["tar@far=0.01"]}
    return out


def evaluate_set(emb: np.ndarray, data: WriterSet, max_refs: int = 5) -> dict[str, Any]:
    """1-ref metrics and R-ref metrics for every aggregation (R = min(max_refs, fewest genuine - 2): at least two
    genuine probes per writer)."""
    result: dict[str, Any] = {"1ref": _metrics(single_reference_scores(emb, data))}
    n_refs = min(max_refs, data.min_genuine() - 2)
    if n_refs >= 2:
        result["n_refs"] = n_refs
        result["multiref"] = {
            f"{method}{'+znorm' if z else ''}": _metrics(multi_reference_scores(emb, data, n_refs, method, 3, z))
            for method, z in AGGREGATIONS
        }
    return result


def _sets(args: argparse.Namespace) -> dict[str, tuple[Path, list[str] | None, str]]:
    sets: dict[str, tuple[Path, list[str] | None, str]] = {}
    if "real" in args.sets and args.real.is_dir():
        sets["real"] = (args.real, None, "real scans (validation only)")
    if "indep" in args.sets and args.indep.is_dir():
        sets["indep"] = (args.indep, None, "independent handwriting-font set (synthetic)")
    if "synth" in args.sets:
        root = args.synth or _default_synth()
        sets["synth"] = (root, synth_test_writers(root), f"training generator's held-out test writers ({root.name})")
    return sets


def _default_synth() -> Path:
    made = ROOT / "runs" / "make_models" / "data" / "heldout"
    if (made / "manifest.csv").is_file():
        return made
    out = ROOT / "data" / "bench-synth-heldout-v2"
    if not (out / "manifest.csv").is_file():
        from training.make_models import HELDOUT_SET
        from training.synth_sets import write_synth_set

        write_synth_set(out, HELDOUT_SET, workers=2, progress=False)
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def table(results: dict[str, Any]) -> str:
    head = ("| set | model | EER skilled | EER random | AUC skilled | AUC random | TAR@FAR=1e-2 random | R | "
            "R-ref EER skilled (mean/max/top3/top3+z) | R-ref EER random (mean/max/top3/top3+z) |")  # fmt: skip
    lines = [head, "|" + "---|" * 10]
    for set_name, by_model in results["sets"].items():
        for model, r in by_model["models"].items():
            one, multi = r["1ref"], r.get("multiref", {})
            sk, rd = one.get("skilled", {}), one.get("random", {})

            def agg(kind: str, multi: dict[str, Any] = multi) -> str:
                vals = [(multi.get(k) or {}).get(kind, {}).get("eer") for k in ("mean", "max", "topk", "topk+znorm")]
                return " / ".join(_fmt(v) for v in vals) if multi else "n/a"

            lines.append(
                f"| {set_name} | {model} | {_fmt(sk.get('eer'))} | {_fmt(rd.get('eer'))} | {_fmt(sk.get('auc'))} | "
                f"{_fmt(rd.get('auc'))} | {_fmt(rd.get('tar@far=0.01'))} | {r.get('n_refs', '-')} | "
                f"{agg('skilled')} | {agg('random')} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="another model directory (repeatable)")
    parser.add_argument("--only", action="store_true", help="only the --model dirs, not the bundled models")
    parser.add_argument("--sets", nargs="+", default=["real", "indep", "synth"], choices=["real", "indep", "synth"])
    parser.add_argument("--real", type=Path, default=REAL, help="real-sample folder (CEDAR layout)")
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set folder")
    parser.add_argument("--synth", type=Path, help="training generator's held-out set (CEDAR layout)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    bundled = [] if args.only else [ROOT / "assets" / "models" / m for m in MODELS]
    models = {p.name: load_model(p) for p in [*bundled, *map(Path, args.model)] if (p / "model.json").is_file()}
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": command_line("bench.bench_signature", argv),
        "sets": {},
    }
    for name, (root, writers, what) in _sets(args).items():
        paths, data = load_set(root, writers)
        entry: dict[str, Any] = {"what": what, "root": _rel(root), "writers": len(data.writers),
                                 "images": len(paths), "models": {}}  # fmt: skip
        for model_name, model in models.items():
            emb, rate = embed(model, paths)
            entry["models"][model_name] = {**evaluate_set(emb, data), "images_per_s": rate}
            print(f"{name} / {model_name}: done ({rate:.0f} images/s)", file=sys.stderr, flush=True)
        results["sets"][name] = entry
    sets = "; ".join(f"{k}: {v['what']}, {v['writers']} writers, {v['images']} images ({v['root']})"
                     for k, v in results["sets"].items())  # fmt: skip
    text = table(results) + (
        f"\n\nData: {sets}. 1-ref: all genuine pairs, genuine x own skilled forgeries, genuine x first genuine of "
        "each other writer. R-ref: first R genuine of a writer as references, the rest as probes; aggregation "
        "mean, max, mean of the top 3, top 3 with per-writer z-norm (cohort: other writers' references). No threshold "
        "is fitted: EER/AUC/TAR@FAR are read off each ROC. Only the real rows are real scans."
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out.with_suffix(".json"), results)
    seconds = time.perf_counter() - start
    when = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    args.out.with_suffix(".md").write_text(  # the section `python -m bench` writes for this script
        f"## {TITLE}\n\nCommand: `{results['command']}` ({seconds:.0f} s, run {when})\n\n{text}\n"
    )
    return 0


def _rel(path: Path) -> str:
    """A path inside the repository relative to it, a sibling of it as ../NAME, else the folder name."""
    for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
        try:
            return prefix + str(path.resolve().relative_to(base))
        except ValueError:
            continue
    return path.name


if __name__ == "__main__":
    sys.exit(main())
