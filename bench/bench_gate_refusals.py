"""Genuine signatures the bundled signature models' OOD gates refuse, and what they take them for.

Each bundled signature model's own gate (as shipped, nothing refitted) reads every scan of the real sample
(../shared/data/signatures-real-sample: 12 writers x 5 genuine + 5 skilled forgeries, all of them real
signatures; reported only, never fitted or tuned on) and the independent set's genuine signatures (data/indep,
python -m bench.make_indep_set). Reported: how many are refused as "not a signature", by the kind named, and
the bundled demo signatures (assets/demo/signatures) refused; then the independent set's refusals by the writer's
hand (the handwriting font its PROVENANCE.json names), to show which styles of signature a gate turns away.

    python -m bench.bench_gate_refusals [--model DIR ...] [--real DIR] [--indep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.__main__ import command_line, write_results
from verify.data import Sample, load_signature_dataset
from verify.decision import Rejection
from verify.io import load_image
from verify.models.loading import load_model
from verify.ood_gate import kind_words
from verify.verifier import Verifier

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_gate_refusals"
TITLE = "Signature OOD gates: genuine signatures refused"
MODELS = ("signature-teacher-hog", "signature-teacher", "signature-student", "signature-student-hog")
INDEP = "independent set, genuine"


def refusals(verifier: Verifier, paths: list[Path], hands: dict[Path, str] | None = None) -> dict[str, Any]:
    """How many of `paths` the verifier's gate refuses, and the kinds it names; with `hands` (path -> hand), also
    {hand: [refused, n]}."""
    probes = verifier.probes([load_image(p, mode="gray") for p in paths])
    kinds = Counter(_taken_for(r) for p in probes if (r := p.rejection) is not None)
    out: dict[str, Any] = {"n": len(paths), "refused": sum(kinds.values()), "kinds": dict(kinds.most_common())}
    if hands is not None:
        by_hand: dict[str, list[int]] = {}
        for path, probe in zip(paths, probes, strict=True):
            counts = by_hand.setdefault(hands[path], [0, 0])
            counts[0] += probe.rejection is not None
            counts[1] += 1
        out["by_hand"] = by_hand
    return out


def indep_hands(root: Path, samples: list[Sample]) -> dict[Path, str]:
    """Image path -> the handwriting font (file stem) its writer was drawn with, from root/PROVENANCE.json."""
    provenance = json.loads((root / "PROVENANCE.json").read_text())
    font = {str(w["writer"]): Path(w["hand"]["font"]).stem for w in provenance["writers"]}
    return {s.path: font[s.identity] for s in samples}


def hand_table(rows: list[dict[str, Any]]) -> list[str]:
    """Refused of n by hand (rows) and model (columns), hands most refused first."""
    models = [r for r in rows if "by_hand" in r]
    if not models:
        return []
    hands = sorted(models[0]["by_hand"], key=lambda h: (-sum(m["by_hand"][h][0] for m in models), h))
    lines = [
        "",
        "Independent set, genuine signatures refused by the writer's hand (handwriting font):",
        "",
        "| hand | " + " | ".join(m["model"] for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for hand in hands:
        cells = [f"{m['by_hand'][hand][0]} of {m['by_hand'][hand][1]}" for m in models]
        lines.append(f"| {hand} | " + " | ".join(cells) + " |")
    return lines


def _taken_for(rejection: Rejection) -> str:
    """What the refused input was taken for, in the gate's words ("printed text", "a blank page", ...; "no kind
    named" when no kind held most of the non-signature probability)."""
    if rejection.looks_like is None and rejection.kind == "out_of_distribution":
        return "no kind named"
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
    hands = None
    if args.indep.is_dir():
        indep = [s for s in load_signature_dataset(args.indep, "cedar") if s.kind == "genuine"]
        sets[INDEP] = [s.path for s in indep]
        if (args.indep / "PROVENANCE.json").is_file():
            hands = indep_hands(args.indep, indep)
    rows = []
    for model in args.model:
        verifier = Verifier(load_model(model))
        for name, paths in sets.items():
            by_hand = hands if name == INDEP else None
            rows.append({"model": model.name, "set": name, **refusals(verifier, paths, by_hand)})
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
    lines += hand_table([r for r in rows if r["set"] == INDEP])
    text = "\n".join(lines)
    print(text)
    command = command_line("bench.bench_gate_refusals", argv)
    write_results(args.out, TITLE, command, text, {"rows": rows}, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
