"""`make models`: rebuild the bundled signature models from synthetic data, reproducibly, on a CPU.

Stages (each skipped when its output exists, so an interrupted build resumes):
  1. synthetic signatures: a training set and a held-out set of other writers (seeds 0 and 1);
  2. the teacher (`verify train`), 3. the student distilled from it (`verify distill`);
  for each model: threshold and p(match) calibrated on held-out calibration writers and evaluated on the other
  held-out writers (`verify eval --calibrate`), its OOD gate fitted (`verify ood fit`), then stored as fp16
  safetensors + card (with the report's headline metrics) under assets/models/;
  4. a few demo signature writers for the web UI under assets/demo/signatures/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from verify.cli import main as verify_main
from verify.models.card import load_network, save_model

ROOT = Path(__file__).resolve().parents[1]
SIZE = {"height": 96, "width": 144}  # smaller than the 150x220 default: CPU training in well under an hour
# Best epoch by the mean of skilled- and random-forgery EER: skilled EER alone barely moves on synthetic data.
TEACHER = {
    "backbone": "resnet18",
    "epochs": 10,
    "p": 16,
    "k": 4,
    "lr": 1e-3,
    "early_stopping": 4,
    "val_metric": "eer_mean",
}
STUDENT = {"epochs": 6, "p": 16, "k": 4, "lr": 2e-3, "early_stopping": 4, "val_metric": "eer_mean"}


def _run(argv: list[str]) -> None:
    print("+ verify " + " ".join(argv), flush=True)
    code = verify_main(argv)
    if code != 0:
        raise SystemExit(f"verify {argv[0]} failed with exit code {code}")


def _sets(values: dict[str, Any]) -> list[str]:
    return [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]


def synth(data: Path, writers: int, heldout_writers: int) -> tuple[Path, Path]:
    train, heldout = data / "train", data / "heldout"
    for out, n, seed in ((train, writers, 0), (heldout, heldout_writers, 1)):
        if not (out / "manifest.csv").is_file():
            _run(
                [
                    "synth",
                    "signatures",
                    "--writers",
                    str(n),
                    "--genuine",
                    "16",
                    "--forgeries",
                    "12",
                    "--seed",
                    str(seed),
                    "--out",
                    str(out),
                    "--workers",
                    "2",
                    "--no-progress",
                ]
            )
    return train, heldout


def package(run: Path, heldout: Path, train: Path, dest: Path, extra: dict[str, Any]) -> None:
    """Calibrate on held-out writers, store fp16 + card, fit the OOD gate, keep the report."""
    report = run / "heldout-eval"
    if not (report / "model.json").is_file():
        _run(
            [
                "eval",
                "--model",
                str(run),
                "--data",
                str(heldout),
                "--protocol",
                "cedar",
                "--out",
                str(report),
                "--calibrate",
                "--target-far",
                "eer",
                "--bootstrap",
                "200",
                "--no-progress",
            ]
        )
    net, _ = load_network(run)
    card = json.loads((report / "model.json").read_text())
    results = json.loads((report / "report.json").read_text())
    card["metrics"] = {"heldout_test": _headline(results), "report": "report/report.md"}
    card.update(extra)
    for key in ("weights", "fingerprint"):
        card.pop(key, None)
    card = _relative(card)
    if dest.exists():
        shutil.rmtree(dest)
    save_model(dest, net, card, dtype="float16")
    _run(["ood", "fit", "--model", str(dest), "--data", str(train), "--protocol", "cedar"])
    (dest / "report").mkdir(exist_ok=True)
    for name in ("report.md", "report.json", "roc.png", "det.png", "scores.png"):
        if (report / name).is_file():
            shutil.copy2(report / name, dest / "report" / name)
    for name in ("metrics.csv", "curves.png"):
        if (run / name).is_file():
            shutil.copy2(run / name, dest / "report" / name)


def _relative(obj: Any) -> Any:
    """The card with paths inside the repository made relative to it (bundled files name no machine)."""
    if isinstance(obj, dict):
        return {k: _relative(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relative(v) for v in obj]
    if isinstance(obj, str) and obj.startswith(f"{ROOT}/"):
        return obj[len(str(ROOT)) + 1 :]
    return obj


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    """The report's test-writer numbers that belong in the card: metrics with CIs, errors at the threshold."""
    keys = ("sizes", "metrics", "threshold", "data")
    out = {k: results[k] for k in keys if k in results}
    if "signature" in results:
        out["errors_at_threshold"] = results["signature"].get("errors_at_threshold")
        out["eer_per_writer"] = (results["signature"].get("writers_skilled") or {}).get("eer_per_writer")
    return out


def demo_signatures(heldout: Path, dest: Path, writers: int = 3) -> None:
    if dest.exists():
        return
    for w in range(1, writers + 1):
        folder = dest / f"writer-{w:02d}"
        folder.mkdir(parents=True)
        for i in range(1, 5):
            shutil.copy2(heldout / "full_org" / f"original_{w}_{i}.png", folder / f"genuine_{i}.png")
        for i in range(1, 3):
            shutil.copy2(heldout / "full_forg" / f"forgeries_{w}_{i}.png", folder / f"forgery_{i}.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.make_models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(ROOT / "assets" / "models"), help="where the models go")
    parser.add_argument("--work", default=str(ROOT / "runs" / "make_models"), help="data and run folders")
    parser.add_argument("--writers", type=int, default=120, help="training writers (default 120)")
    parser.add_argument("--heldout-writers", type=int, default=80, help="calibration + test writers (default 80)")
    parser.add_argument("--student", default="mobilenetv3_small_100", help="student backbone")
    parser.add_argument("--skip-student", action="store_true", help="build only the teacher")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: all cores; 1 on a busy machine)"
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    work, out = Path(args.work), Path(args.out)
    train, heldout = synth(work / "data", args.writers, args.heldout_writers)
    size = _sets(SIZE)
    teacher_run = work / "signature-teacher"
    if (teacher_run / "run.json").is_file() and not (teacher_run / "summary.json").is_file():
        _run(["train", "--out", str(teacher_run), "--resume", "--quiet", *_sets(TEACHER)])
    elif not (teacher_run / "summary.json").is_file():
        _run(
            [
                "train",
                "--data",
                str(train),
                "--protocol",
                "cedar",
                "--out",
                str(teacher_run),
                "--quiet",
                *size,
                *_sets(TEACHER),
                "--set",
                "name=signature-teacher",
            ]
        )
    package(teacher_run, heldout, train, out / "signature-teacher", {"provenance": _provenance(args, "teacher")})
    if not args.skip_student:
        student_run = work / "signature-student"
        if not (student_run / "summary.json").is_file():
            _run(
                [
                    "distill",
                    "--teacher",
                    str(out / "signature-teacher"),
                    "--student",
                    args.student,
                    "--data",
                    str(train),
                    "--protocol",
                    "cedar",
                    "--out",
                    str(student_run),
                    "--quiet",
                    *_sets(STUDENT),
                    "--set",
                    "name=signature-student",
                ]
            )
        package(student_run, heldout, train, out / "signature-student", {"provenance": _provenance(args, "student")})
    demo_signatures(heldout, ROOT / "assets" / "demo" / "signatures")
    print(f"bundled models written to {out}")
    return 0


def _provenance(args: argparse.Namespace, role: str) -> dict[str, Any]:
    return {
        "made_by": "python -m training.make_models (make models)",
        "role": role,
        "data": f"synthetic signatures (verify synth, sigma-lognormal): {args.writers} training writers seed 0, "
        f"{args.heldout_writers} held-out writers seed 1 split into calibration and test writers",
        "licence": "MIT (trained by this project on synthetic data)",
    }


if __name__ == "__main__":
    sys.exit(main())
