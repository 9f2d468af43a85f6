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

from training.make_hog_model import build as build_hog
from training.packaging import calibrate, keep_report, run_verify
from training.synth_sets import SynthSetSpec, write_synth_set
from verify.models.card import load_network, read_card, save_model, write_card
from verify.models.classical import new_hog_card
from verify.models.fused import create_fused_model

ROOT = Path(__file__).resolve().parents[1]
# 96x192 (1:2) matches the aspect of real signatures (a 90x200 px scan fills it; 150x220 would leave a third
# black) and is the classical baseline's crop, so learned and HOG parts of a fused model share one crop.
SIZE = {"height": 96, "width": 192}
# Best epoch by the mean of skilled- and random-forgery EER on the validation writers (identity-disjoint).
# Crops: paper flattened and ruled lines removed (the classical baseline's preprocessing), so the learned and the
# HOG part of a fused model read one crop.
TEACHER = {
    "backbone": "resnet18",
    "epochs": 14,
    "steps_per_epoch": 100,
    "p": 16,
    "k": 4,
    "lr": 5e-4,
    "warmup_epochs": 0.5,
    "val_fraction": 0.05,
    "early_stopping": 0,
    "val_metric": "eer_mean",
    "preprocessing_params": "{ink: flat, remove_lines: true}",
}
# From scratch (no --teacher-init) the teacher gets the bundled teacher's whole history in one run: it was trained
# 8 epochs at lr 1e-3 and then continued 14 at 5e-4 (its card's training.init names the earlier one).
TEACHER_FROM_SCRATCH = {"epochs": 24, "lr": 1e-3, "warmup_epochs": 1.0}
# 24 epochs: at 6 the student was still improving (validation EER 0.144, cosine to the teacher 0.69).
STUDENT = {
    "epochs": 24,
    "steps_per_epoch": 100,
    "p": 16,
    "k": 4,
    "lr": 2e-3,
    "early_stopping": 6,
    "val_metric": "eer_mean",
}
# Training writers: genuine, skilled (a forger copying the image) and simple (the name in the forger's own hand)
# forgeries; held-out writers (other seed): genuine and skilled only, the standard protocol for calibration/test.
TRAIN_SET = SynthSetSpec(writers=2000, genuine=8, skilled=4, simple=2, seed=0)
HELDOUT_SET = SynthSetSpec(writers=160, genuine=8, skilled=8, simple=0, seed=1)
OOD_FIT = ("--max-identities", "400")  # the gate's Gaussians need a few hundred writers, not all 2,000
# The student's features are weaker: its gate's one-hidden-layer classifier overfits (faces rejected 55-67% at
# keep 0.97), a logistic regression does not (100%); measured on held-out material of another seed.
STUDENT_OOD = ("--classifier", "logistic")
# The fused student's gate reads its fused embedding (the student's + the HOG descriptor) rather than the student's
# backbone features: held-out material rejected photos 90 -> 94%, printed text 91 -> 98%, ruled 93 -> 98%, logos
# 86 -> 94%, shapes 93 -> 91%; independent genuine refused 73 -> 48 of 400 (`python -m bench.bench_ood_design
# --model assets/models/signature-student-hog --classifier logistic --seeds 1 [--features embedding]`).
STUDENT_HOG_OOD = (*STUDENT_OOD, "--features", "embedding")
FUSED_WEIGHT = 0.5  # learned share of a fused score: the best of 0.0-1.0 by `python -m bench.bench_fusion` (indep set +
# held-out calibration writers, never the real sample); equal weights were also the choice before any evaluation


def teacher_recipe(init: str | None, epochs: int | None = None) -> dict[str, Any]:
    """The teacher's `verify train` settings: TEACHER, with TEACHER_FROM_SCRATCH when it starts from nothing."""
    recipe = {**TEACHER} if init else {**TEACHER, **TEACHER_FROM_SCRATCH}
    if epochs is not None:
        recipe["epochs"] = epochs
    return recipe


def _pairs(items: list[str]) -> dict[str, str]:
    """["epochs=2", ...] -> {"epochs": "2", ...}; later keys win (they reach `verify` as `--set`, which checks them)."""
    bad = [item for item in items if "=" not in item]
    if bad:
        raise SystemExit(f"expected KEY=VALUE, got {bad[0]!r}")
    return dict(item.split("=", 1) for item in items)


def _sets(values: dict[str, Any]) -> list[str]:
    return [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]


def synth(data: Path, train_spec: SynthSetSpec, heldout_spec: SynthSetSpec) -> tuple[Path, Path]:
    """The generator-v2 training and held-out sets (skipped when written)."""
    heldout = write_synth_set(data / "heldout", heldout_spec, workers=2)
    train = write_synth_set(data / "train", train_spec, workers=2)
    return train, heldout


def fit_gate(model: Path, train: Path, ood: tuple[str, ...] = ()) -> None:
    """`verify ood fit` on the training writers (OOD_FIT, plus `ood`), into the model directory."""
    run_verify(["ood", "fit", "--model", str(model), "--data", str(train), "--protocol", "cedar", *OOD_FIT, *ood])


def _packaged(source: Path, dest: Path, work: Path) -> Path | None:
    """None when `dest` was built from `source` as it is now (a marker in `work` says so), else the marker to write
    once it is. The marker names the source's fingerprint, so a retrained source is packaged again."""
    marker = work / f"packaged-{dest.name}.json"
    done = marker.is_file() and (dest / "model.json").is_file()
    if done and json.loads(marker.read_text()) == _package_key(source, dest):
        print(f"= {dest.name}: already built from {source.name} ({marker.name})", flush=True)
        return None
    marker.unlink(missing_ok=True)
    return marker


def _mark_packaged(source: Path, marker: Path, dest: Path) -> None:
    marker.write_text(json.dumps(_package_key(source, dest)))


def _package_key(source: Path, dest: Path) -> dict[str, Any]:
    """What a packaged model was built from: its source's fingerprint and where it went."""
    return {"source": read_card(source).get("fingerprint"), "dest": str(dest.resolve())}


def package(
    run: Path, heldout: Path, train: Path, dest: Path, extra: dict[str, Any], ood: tuple[str, ...] = ()
) -> None:
    """Calibrate on held-out writers, store fp16 + card, fit the OOD gate, keep the report (skipped when done)."""
    if (marker := _packaged(run, dest, run)) is None:
        return
    report = run / "heldout-eval"
    card, results = calibrate(run, heldout, report)
    net, _ = load_network(run)
    card["metrics"] = {"heldout_test": _headline(results), "report": "report/report.md"}
    card.update(extra)
    for key in ("weights", "fingerprint"):
        card.pop(key, None)
    card = _relative(card)
    if dest.exists():
        shutil.rmtree(dest)
    save_model(dest, net, card, dtype="float16")
    fit_gate(dest, train, ood)
    keep_report(report, dest, run)
    _mark_packaged(run, marker, dest)


def package_fused(
    learned: Path, heldout: Path, train: Path, dest: Path, work: Path, extra: dict[str, Any], ood: tuple[str, ...] = ()
) -> None:
    """learned + HOG with fixed weights -> a fused model, calibrated on held-out writers, with its OOD gate.

    The HOG part reads the learned part's crop (same size and preprocessing), so one crop feeds both. Skipped when
    done from this `learned`."""
    work.mkdir(parents=True, exist_ok=True)
    if (marker := _packaged(learned, dest, work)) is None:
        return
    raw, hog = work / "raw", work / "hog"
    spec = read_card(learned)
    hog.mkdir(parents=True, exist_ok=True)
    write_card(hog, new_hog_card(f"{dest.name}-hog", int(spec["input"]["height"]), int(spec["input"]["width"]),
                                 preprocessing=dict(spec["preprocessing"])))  # fmt: skip
    create_fused_model(raw, [("learned", learned, FUSED_WEIGHT), ("hog", hog, 1 - FUSED_WEIGHT)], name=dest.name)
    report = work / "heldout-eval"
    card, results = calibrate(raw, heldout, report)
    card["metrics"] = {"heldout_test": _headline(results), "report": "report/report.md"}
    card.update(extra)
    card = _relative(card)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(raw, dest, ignore=shutil.ignore_patterns("report"))
    write_card(dest, card)
    fit_gate(dest, train, ood)
    keep_report(report, dest)
    _mark_packaged(learned, marker, dest)


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
    parser.add_argument("--writers", type=int, default=TRAIN_SET.writers, help="training writers (default 2000)")
    parser.add_argument("--teacher-init", help="start the teacher from this model directory instead of from scratch")
    parser.add_argument(
        "--teacher-epochs",
        type=int,
        help=f"teacher epochs of {TEACHER['steps_per_epoch']} steps (default {TEACHER_FROM_SCRATCH['epochs']} from "
        f"scratch, {TEACHER['epochs']} with --teacher-init)",
    )
    parser.add_argument("--heldout-writers", type=int, default=HELDOUT_SET.writers, help="calibration + test writers")
    parser.add_argument(
        "--teacher-set", nargs="+", default=[], metavar="KEY=VALUE", help="more `verify train --set` for the teacher"
    )
    parser.add_argument(
        "--student-set", nargs="+", default=[], metavar="KEY=VALUE", help="more `verify distill --set` for the student"
    )
    parser.add_argument("--ood-material", type=int, help="outlier images per kind for the OOD gates (verify's default)")
    parser.add_argument(
        "--demo-out", default=str(ROOT / "assets" / "demo" / "signatures"), help="demo signature writers (if missing)"
    )
    parser.add_argument("--student", default="mobilenetv3_small_100", help="student backbone")
    parser.add_argument("--skip-student", action="store_true", help="build only the teacher (and its fused model)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: all cores; 1 on a busy machine)"
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    work, out = Path(args.work), Path(args.out)
    train, heldout = synth(
        work / "data",
        SynthSetSpec(**{**TRAIN_SET.__dict__, "writers": args.writers}),
        SynthSetSpec(**{**HELDOUT_SET.__dict__, "writers": args.heldout_writers}),
    )
    build_hog(heldout, work / "signature-hog", out / "signature-hog")
    teacher_run = work / "signature-teacher"
    recipe = {**teacher_recipe(args.teacher_init, args.teacher_epochs), **_pairs(args.teacher_set)}
    ood = ("--material", str(args.ood_material)) if args.ood_material else ()
    if (teacher_run / "run.json").is_file() and not (teacher_run / "summary.json").is_file():
        run_verify(["train", "--out", str(teacher_run), "--resume", "--quiet", *_sets(recipe)])
    elif not (teacher_run / "summary.json").is_file():
        init = ["--init", args.teacher_init] if args.teacher_init else []
        run_verify(["train", "--data", str(train), "--protocol", "cedar", "--out", str(teacher_run), "--quiet", *init,
              *_sets(SIZE), *_sets(recipe), "--set", "name=signature-teacher"])  # fmt: skip
    extra = {"provenance": _provenance(args, "teacher", teacher_run)}
    package(teacher_run, heldout, train, out / "signature-teacher", extra, ood)
    extra = {"provenance": _provenance(args, "fused teacher + HOG", teacher_run)}
    package_fused(out / "signature-teacher", heldout, train, out / "signature-teacher-hog",
                  work / "signature-teacher-hog", extra, ood)  # fmt: skip
    if not args.skip_student:
        student_run = work / "signature-student"
        if not (student_run / "summary.json").is_file():
            run_verify(["distill", "--teacher", str(out / "signature-teacher"), "--student", args.student, "--data",
                  str(train), "--protocol", "cedar", "--out", str(student_run), "--quiet",
                  *_sets({**STUDENT, **_pairs(args.student_set)}),
                  "--set", "name=signature-student"])  # fmt: skip
        package(student_run, heldout, train, out / "signature-student", {"provenance": _provenance(args, "student")},
                (*STUDENT_OOD, *ood))  # fmt: skip
        extra = {"provenance": _provenance(args, "fused student + HOG")}
        package_fused(out / "signature-student", heldout, train, out / "signature-student-hog",
                      work / "signature-student-hog", extra, (*STUDENT_HOG_OOD, *ood))  # fmt: skip
    demo_signatures(heldout, Path(args.demo_out))
    print(f"bundled models written to {out}")
    return 0


def _provenance(args: argparse.Namespace, role: str, teacher_run: Path | None = None) -> dict[str, Any]:
    """The card's provenance; `teacher_run` (for the teacher and its fused model) adds its on-the-fly writers."""
    out = {
        "made_by": "python -m training.make_models (make models)",
        "role": role,
        "data": f"synthetic signatures (generator v2: names from single-stroke fonts, sigma-lognormal timing, "
        f"skilled and simple forgers, scan randomisation): {args.writers} training writers seed 0, "
        f"{args.heldout_writers} held-out writers seed 1 split into calibration and test writers",
        "licence": "MIT (trained by this project on synthetic data)",
    }
    config = json.loads((teacher_run / "config.json").read_text()) if teacher_run else {}
    if config.get("synth_writers"):
        caps = float(config.get("synth_all_caps_share") or 0.0)
        out["data"] += (
            f"; plus {config['synth_writers']} writers the generator drew afresh for each training epoch "
            f"({caps:.0%} of print hands signing in capitals; seeded, so the same for the same epoch)"
        )
    if args.teacher_init:
        out["teacher_init"] = (
            f"the teacher started from {Path(args.teacher_init).name} (the previously bundled teacher, itself "
            "trained by make models on synthetic data), not from scratch; see the card's training.init"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
