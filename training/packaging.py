"""Steps shared by the scripts that build bundled models: run a `verify` command, calibrate a model on held-out
writers with `verify eval --calibrate`, and keep the evaluation report beside the packaged model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from verify.cli import main as verify_main
from verify.fsutil import atomic_write_json

REPORT_FILES = ("report.md", "report.json", "roc.png", "det.png", "scores.png")
RUN_FILES = ("metrics.csv", "curves.png")


def run_verify(argv: list[str]) -> None:
    """`verify ARGV` in this process; a non-zero exit code stops the build."""
    print("+ verify " + " ".join(argv), flush=True)
    code = verify_main(argv)
    if code != 0:
        raise SystemExit(f"verify {argv[0]} failed with exit code {code}")


def calibrate(model: Path, heldout: Path, report: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """`verify eval --calibrate` (threshold at the EER) on a CEDAR-layout held-out set, skipped when `report`
    already holds its output for this model and this held-out set (`report`/built_from.json: the model's
    fingerprint and the set's data fingerprint; a rebuilt model or another set is evaluated again): the calibrated
    card and the report, as JSON objects."""
    from training.data import data_fingerprint
    from verify.data import load_signature_dataset

    key = {
        "model": _fingerprint(model),
        "heldout": data_fingerprint(heldout, load_signature_dataset(heldout, "cedar")),
    }
    record = report / "built_from.json"
    done = (report / "model.json").is_file() and record.is_file() and json.loads(record.read_text()) == key
    if not done:
        shutil.rmtree(report, ignore_errors=True)
        run_verify(["eval", "--model", str(model), "--data", str(heldout), "--protocol", "cedar", "--out", str(report),
                    "--calibrate", "--target-far", "eer", "--bootstrap", "200", "--no-progress"])  # fmt: skip
        atomic_write_json(record, key)
    return json.loads((report / "model.json").read_text()), json.loads((report / "report.json").read_text())


def _fingerprint(model: Path) -> str | None:
    """The fingerprint in `model`/model.json, or None when there is none (or no readable card)."""
    try:
        value = json.loads((model / "model.json").read_text()).get("fingerprint")
    except (OSError, ValueError):
        return None
    return None if value is None else str(value)


def keep_report(report: Path, dest: Path, run: Path | None = None) -> None:
    """Copy the evaluation report (and the training run's curves, when given) into `dest/report/`."""
    (dest / "report").mkdir(parents=True, exist_ok=True)
    sources = [report / name for name in REPORT_FILES] + ([run / name for name in RUN_FILES] if run else [])
    for path in sources:
        if path.is_file():
            shutil.copy2(path, dest / "report" / path.name)
