"""How right the answers are for signatures the OOD gate refuses, when `--gate-mode flag` answers them anyway.

The model (default: the bundled default) reads every signature of each set with gate mode "flag": every scan is
embedded and the gate's refusals are flags. The single-reference pairs of `verify.eval.multiref` (genuine: a
writer's genuine pairs; skilled: genuine x the writer's forgeries; random: genuine x other writers' first genuine)
are split into pairs with no flagged image and pairs with at least one; each part's errors at the model's
calibrated threshold (FRR: genuine pairs answered "no match"; FAR: forged or other writers' pairs answered
"match") and EERs are reported. Sets: the independent set (data/indep, synthetic) and the real sample
(../shared/data/signatures-real-sample; real, reported only, never fitted or tuned on).

    python -m bench.bench_gate_flag [--model DIR] [--indep DIR] [--real DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.__main__ import command_line, write_results
from bench.bench_signature import load_set
from verify.eval.multiref import WriterSet, single_reference_scores
from verify.eval.roc import eer
from verify.io import load_image
from verify.models.loading import load_model
from verify.verifier import Verifier

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_gate_flag"
TITLE = "Signatures the gate refuses, answered with --gate-mode flag"
KINDS = ("genuine", "skilled", "random")


def flagged_pairs(flags: np.ndarray, data: WriterSet) -> dict[str, np.ndarray]:
    """Per protocol pair (in `single_reference_scores` order): True where at least one of its two images is
    flagged. Scoring the column (1 - flag) as a 1-d embedding gives (1 - f_a)(1 - f_b): 1 only when neither is."""
    clean = single_reference_scores((1.0 - flags.astype(np.float64))[:, None], data)
    return {kind: clean[kind] < 0.5 for kind in KINDS}


def split_errors(
    scores: dict[str, np.ndarray], flagged: dict[str, np.ndarray], threshold: float
) -> dict[str, dict[str, Any]]:
    """{"not flagged" | "flagged": pair counts, FRR / FAR at `threshold`, skilled and random EER}."""
    out: dict[str, dict[str, Any]] = {}
    for part, want in (("not flagged", False), ("flagged", True)):
        s = {kind: scores[kind][flagged[kind] == want] for kind in KINDS}
        row: dict[str, Any] = {"n": {kind: len(v) for kind, v in s.items()}}
        row["frr"] = float(np.mean(s["genuine"] < threshold)) if len(s["genuine"]) else None
        for kind in ("skilled", "random"):
            row[f"far_{kind}"] = float(np.mean(s[kind] >= threshold)) if len(s[kind]) else None
            both = len(s["genuine"]) and len(s[kind])
            row[f"eer_{kind}"] = eer(s["genuine"], s[kind])[0] if both else None
        out[part] = row
    return out


def evaluate(verifier: Verifier, root: Path) -> dict[str, Any]:
    """Flags, scores and the errors of both parts on one CEDAR-layout set."""
    paths, data = load_set(root)
    probes = verifier.probes([load_image(p, mode="gray") for p in paths])
    refused = [p for p, probe in zip(paths, probes, strict=True) if probe.embedding is None]
    if refused:
        raise SystemExit(f"{root}: {len(refused)} scans could not be compared at all, e.g. {refused[0].name}")
    emb = np.stack([probe.embedding for probe in probes])  # type: ignore[misc]
    flags = np.array([probe.flagged is not None for probe in probes])
    genuine = [i for rows in data.genuine.values() for i in rows]
    result = split_errors(single_reference_scores(emb, data), flagged_pairs(flags, data), verifier.threshold)
    return {"scans": len(paths), "flagged_scans": int(flags.sum()), "flagged_genuine": int(flags[genuine].sum()),
            "genuine": len(genuine), "parts": result}  # fmt: skip


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_gate_flag", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "assets" / "models" / "signature-teacher-hog")
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set (make_indep_set)")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "signatures-real-sample")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    verifier = Verifier(load_model(args.model), gate_mode="flag")
    sets = {"independent set (synthetic)": args.indep, "real sample (reported only)": args.real}
    results = {name: evaluate(verifier, root) for name, root in sets.items() if root.is_dir()}
    lines = [
        f"Model {args.model.name}, gate mode flag, threshold {verifier.threshold:.3f} (its calibrated one). "
        "Single-reference pairs, split by whether either image is flagged; FRR: genuine pairs answered no match; "
        "FAR: pairs of a forgery or another writer answered match.",
        "",
        "| set | flagged scans | pairs | genuine / skilled / random pairs | FRR | FAR skilled | FAR random "
        "| EER skilled | EER random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for part, row in r["parts"].items():
            n = row["n"]
            lines.append(
                f"| {name} | {r['flagged_scans']} of {r['scans']} ({r['flagged_genuine']} of {r['genuine']} genuine) "
                f"| {part} | {n['genuine']} / {n['skilled']} / {n['random']} | {_pct(row['frr'])} "
                f"| {_pct(row['far_skilled'])} | {_pct(row['far_random'])} | {_num(row['eer_skilled'])} "
                f"| {_num(row['eer_random'])} |"
            )
    text = "\n".join(lines)
    print(text)
    command = command_line("bench.bench_gate_flag", argv)
    data = {"model": args.model.name, "threshold": verifier.threshold, "sets": results}
    write_results(args.out, TITLE, command, text, data, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
