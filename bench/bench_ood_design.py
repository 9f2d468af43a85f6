"""The signature OOD gate's ink statistics, and how much its classifier's seed matters.

One model's features are computed once: signatures of `verify ood fit`'s seeded identity sample of the training
set (its train and held-out writers, binarised and ruled copies included), the "fit" split of the outlier
material, a third material set (the "eval" split with another seed, never fitted on) and the independent set's
genuine signatures (data/indep; never the real sample). Gates are then refitted on those features with the
11 older ink statistics (`INK_FEATURES`) and with the shape statistics added (`ALL_FEATURES`), for several
classifier seeds, and for the mean of the seeds' probabilities (what `verify ood fit --members N` stores). Each
gate's threshold keeps `--keep` of the held-out signatures (as `verify ood fit`; the mean of seeds is judged at
every --keep given); reported: each material kind's rejection (a crop the preprocessing calls blank counts as
rejected) and the share of the independent set's genuine signatures refused. Several --data sets (e.g. the
training set and one where some writers sign in block capitals) give one block of rows each.

    python -m bench.bench_ood_design [--model DIR] [--data DIR ...] [--keep 0.97 ...] [--seeds 5] [--cache DIR]

`--pooled A B` adds one set made of those folders pooled (what make models fits its gates on: the training set
and the gate set). The gate set is the training seed's first 600 writers with 30% of the print hands signing in
block capitals (make models' data/gate; by hand: `python -m training.synth_sets --out runs/mm/data/gate --writers
600 --all-caps-share 0.3`).
`--l2` scales each feature row to unit length before the Gaussians; `--c` sets the classifier's inverse
regularisation strength.
`--cache DIR` keeps each set's computed features in DIR/<model>-<data>.npz (and reads them from there when they
exist), so other --keep or --seeds values are quick to compare.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.__main__ import command_line, write_results
from training.data import load_pooled_samples
from training.ood_exposure import _crops, _embed, _signatures, fit_exposure_gate
from training.ood_fit import default_features, gate_split
from training.ood_material import ood_material
from verify.data import load_signature_dataset
from verify.io import load_image
from verify.models.loading import load_model
from verify.ood_gate import OutlierExposureGate
from verify.ood_ink import ALL_FEATURES, INK_FEATURES, ink_statistics_batch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_ood_design"
TITLE = "Signature OOD gate: ink statistics and classifier seed"
VARIANTS = {"11 ink statistics": INK_FEATURES, "+ shape statistics": ALL_FEATURES}


def _features(model: Any, crops: list[np.ndarray], features: str, desc: str) -> dict[str, np.ndarray]:
    return {"x": _embed(model, crops, features, 32, desc), "ink": ink_statistics_batch(crops, ALL_FEATURES)}


def collect(args: argparse.Namespace, data: tuple[Path, ...]) -> dict[str, Any]:
    """Features and ink statistics of every set (computed once); several `data` sets are pooled as `verify ood fit
    --data A B` pools them."""
    model = load_model(args.model)
    features = args.features or default_features(model)
    samples = load_pooled_samples(data, "signature", "cedar")
    parts = gate_split(samples, args.max_identities)  # as `verify ood fit --max-identities`
    rng = np.random.default_rng(0)
    crops, writers, genuine, _ = _signatures(model, parts["train"], 900, rng)
    held, _, _, _ = _signatures(model, parts["held_out"], 900, rng)
    signatures = _features(model, crops, features, "signatures")
    out: dict[str, Any] = {
        "in": {**signatures, "writer": np.array(writers), "genuine": np.array(genuine)},
        "held": _features(model, held, features, "held-out signatures"),
    }
    for name, split, n, seed in (("fit", "fit", args.material, 0), ("eval", "eval", args.eval_material, 11)):
        got, kinds, totals = [], [], {}
        for kind, images in ood_material(150, 220, n=n, seed=seed, split=split).items():
            kept = _crops(model, images)
            got += kept
            kinds += [kind] * len(kept)
            totals[kind] = len(images)
        out[name] = {**_features(model, got, features, f"{name} material"), "kind": np.array(kinds), "n": totals}
    indep = [s for s in load_signature_dataset(args.indep, "cedar") if s.kind == "genuine"]
    mode = "gray" if int(model.card["input"]["channels"]) == 1 else "rgb"
    indep_crops = [model.preprocess(load_image(s.path, mode=mode)).image for s in indep]
    out["indep"] = _features(model, indep_crops, features, "indep")
    return out


def _save_cache(path: Path, sets: dict[str, Any]) -> None:
    flat = {f"{name}/{key}": value for name, part in sets.items() for key, value in part.items() if key != "n"}
    for name, part in sets.items():
        flat.update({f"{name}/n/{kind}": np.array(n) for kind, n in part.get("n", {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **flat)


def _load_cache(path: Path) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            name, _, rest = key.partition("/")
            part = sets.setdefault(name, {})
            if rest.startswith("n/"):
                part.setdefault("n", {})[rest[2:]] = int(data[key])
            else:
                part[rest] = data[key]
    return sets


def _sets(args: argparse.Namespace, data: tuple[Path, ...]) -> dict[str, Any]:
    """The features of one in-distribution set, or of several pooled (from the cache folder when there); with
    `--l2`, each row scaled to unit length."""
    name = f"{args.model.name}-{_label(data)}" + (f"-{args.features}" if args.features else "")
    cache = None if args.cache is None else args.cache / f"{name}.npz"
    if cache is not None and cache.is_file():
        sets = _load_cache(cache)
    else:
        sets = collect(args, data)
        if cache is not None:
            _save_cache(cache, sets)
    if args.l2:
        for part in sets.values():
            part["x"] = part["x"] / np.maximum(np.linalg.norm(part["x"], axis=1, keepdims=True), 1e-12)
    return sets


def _label(data: tuple[Path, ...]) -> str:
    return "+".join(d.name for d in data)


def _rows(args: argparse.Namespace, sets: dict[str, Any], label: str, names: tuple[str, ...], data: str) -> list[dict]:
    """Each seed's gate at the first keep, then the mean of the seeds' probabilities at every keep (one seed: its
    gate at every keep)."""
    cols = len(names)
    gates = [
        fit_exposure_gate(sets["in"]["x"], sets["in"]["writer"], sets["in"]["genuine"].astype(bool),
                          sets["in"]["ink"][:, :cols], sets["fit"]["x"], sets["fit"]["kind"],
                          sets["fit"]["ink"][:, :cols], seed=seed, ink_features=names, classifier=args.classifier,
                          c=args.c)
        for seed in range(args.seeds)
    ]  # fmt: skip
    head = {"data": data, "variant": label}
    if len(gates) == 1:  # one seed (e.g. a logistic classifier): that gate at every keep
        return [{**head, "seed": "0", "keep": k, **judge(gates, sets, cols, k)} for k in args.keep]
    rows = [
        {**head, "seed": str(seed), "keep": args.keep[0], **judge([gate], sets, cols, args.keep[0])}
        for seed, gate in enumerate(gates)
    ]
    rows += [{**head, "seed": "mean of seeds", "keep": k, **judge(gates, sets, cols, k)} for k in args.keep]
    return rows


def judge(gates: list[OutlierExposureGate], sets: dict[str, Any], cols: int, keep: float) -> dict[str, Any]:
    """Rejection per material kind and independent-set refusals of the mean of `gates`' p(signature)."""

    def p(name: str) -> np.ndarray:
        x, ink = sets[name]["x"], sets[name]["ink"][:, :cols]
        return np.mean([g.probabilities_from_ink(x, ink)[:, 0] for g in gates], axis=0)

    threshold = float(np.quantile(p("held"), 1.0 - keep, method="lower"))
    scores, kinds, totals = p("eval"), sets["eval"]["kind"], sets["eval"]["n"]
    rejected = {k: (n - np.sum(kinds == k) + np.sum(scores[kinds == k] < threshold)) / n for k, n in totals.items()}
    return {"rejected": rejected, "indep_refused": float(np.mean(p("indep") < threshold))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ood_design", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "assets" / "models" / "signature-teacher")
    parser.add_argument(
        "--data",
        type=Path,
        nargs="*",
        default=[ROOT / "runs" / "make_models" / "data" / "train"],
        help="in-distribution set(s), one block of rows each (`--data` alone: none, for --pooled only)",
    )
    parser.add_argument(
        "--pooled",
        type=Path,
        nargs="+",
        default=[],
        help="one more in-distribution set: these folders pooled (as `verify ood fit --data A B` and make models do)",
    )
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set (make_indep_set)")
    parser.add_argument("--max-identities", type=int, default=400, help="as make models' `verify ood fit`")
    parser.add_argument("--material", type=int, default=120, help="outlier images per kind to fit on")
    parser.add_argument("--eval-material", type=int, default=200, help="outlier images per kind to judge on")
    parser.add_argument("--seeds", type=int, default=5, help="classifier seeds")
    parser.add_argument("--classifier", choices=["mlp", "logistic"], default="mlp", help="as verify ood fit's")
    parser.add_argument("--features", choices=["backbone", "embedding"], help="as verify ood fit's")
    parser.add_argument("--l2", action="store_true", help="scale each feature row to unit length first")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength, as fit_exposure_gate's")
    parser.add_argument("--keep", type=float, nargs="+", default=[0.97], help="share(s) of held-out signatures kept")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    parser.add_argument("--cache", type=Path, help="feature cache folder: read when there, else written")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows, kinds = [], []
    for data in [(d,) for d in args.data] + ([tuple(args.pooled)] if args.pooled else []):
        sets = _sets(args, data)
        kinds = list(sets["eval"]["n"])
        for label, names in VARIANTS.items():
            rows += _rows(args, sets, label, names, _label(data))
    lines = [
        f"Model {args.model.name} ({args.classifier} classifier, C {args.c:g}, {args.features or 'default'} "
        f"features{', L2-normalised' if args.l2 else ''}), features "
        f"of {args.max_identities} writers of each in-distribution set; material: {args.material} per kind to fit, "
        f"{args.eval_material} per kind (eval split, seed 11) to judge; keep: share of the set's held-out signatures "
        "accepted; independent set: its genuine signatures. All synthetic.",
        "",
        "| in-distribution set | ink statistics | classifier seed | keep | independent genuine refused | worst kind | "
        + " | ".join(kinds) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(kinds),
    ]  # fmt: skip
    for r in rows:
        worst = min(r["rejected"], key=r["rejected"].get)
        cells = " | ".join(f"{r['rejected'][k]:.0%}" for k in kinds)
        head = (
            f"| {r['data']} | {r['variant']} | {r['seed']} | {r['keep']:.3g} | {r['indep_refused']:.1%} | "
            f"{worst} {r['rejected'][worst]:.0%}"
        )
        lines.append(f"{head} | {cells} |")
    text = "\n".join(lines)
    print(text)
    command = command_line("bench.bench_ood_design", argv)
    payload = {"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}}
    write_results(args.out, TITLE, command, text, payload, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
