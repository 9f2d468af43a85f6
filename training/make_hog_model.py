"""Build the bundled classical signature baseline, assets/models/signature-hog: a card, no weights.

The feature (signature preprocessing at 96x192 with the real-scan options: paper flattening and ruled-line
removal; HOG 9 orientations / 12 px cells / 2x2 blocks; cosine) needs no training; only its threshold and
p(match) calibrator are chosen, by `verify eval --calibrate --target-far eer` on the held-out SYNTHETIC writers
of `make models` (seed 1, calibration writers; numbers on the disjoint test writers), as for the learned models.

Usage: python -m training.make_hog_model [--work DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from training.packaging import calibrate, keep_report, run_verify
from verify.models.card import write_card
from verify.models.classical import new_hog_card

ROOT = Path(__file__).resolve().parents[1]
NAME = "signature-hog"
# Real-scan options chosen on the independent set and the synthetic held-out writers (bench_signature), never on
# the real sample: ink="flat" helped on the independent set, remove_lines changed nothing there and keeps forms usable.
PREPROCESSING = {"kind": "signature", "ink": "flat", "remove_lines": True}


def build(heldout: Path, work: Path, dest: Path) -> Path:
    """Card -> calibrated card (+ report) under `dest`; `heldout` is a synthetic CEDAR-layout folder."""
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_card(raw, new_hog_card(NAME, preprocessing=PREPROCESSING))
    report = work / "heldout-eval"
    if report.exists():
        shutil.rmtree(report)
    card, results = calibrate(raw, heldout, report)
    card["metrics"] = {
        "heldout_test": {k: results[k] for k in ("sizes", "metrics", "threshold", "data") if k in results},
        "report": "report/report.md",
    }
    card["provenance"] = {
        "made_by": "python -m training.make_hog_model",
        "role": "classical baseline (no training)",
        "data": "threshold and calibrator chosen on synthetic held-out writers (verify synth signatures, seed 1, "
        "the calibration half of make models' held-out set); metrics on the other half",
        "licence": "MIT",
    }
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    write_card(dest, card)
    keep_report(report, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.make_hog_model", description=__doc__)
    parser.add_argument("--work", default=str(ROOT / "runs" / "make_models"), help="data and run folders")
    parser.add_argument("--out", default=str(ROOT / "assets" / "models" / NAME), help="model folder to write")
    parser.add_argument("--heldout-writers", type=int, default=80, help="calibration + test writers (default 80)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    heldout = work / "data" / "heldout"
    if not (heldout / "manifest.csv").is_file():
        run_verify(["synth", "signatures", "--writers", str(args.heldout_writers), "--genuine", "16",
                    "--forgeries", "12", "--seed", "1", "--out", str(heldout), "--workers", "2",
                    "--no-progress"])  # fmt: skip
    out = build(heldout, work / NAME, Path(args.out))
    print(f"{NAME} written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
