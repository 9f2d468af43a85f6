"""`make models` end to end from scratch at a toy size: every stage runs, every model it writes loads and answers,
and a second run finds every stage done (the build resumes instead of starting over)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verify.decision import MATCH, NO_MATCH
from verify.models.loading import load_model
from verify.verifier import Verifier

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("signature-hog", "signature-teacher", "signature-teacher-hog", "signature-student", "signature-student-hog")
TOY = [
    "--writers", "6", "--heldout-writers", "6", "--ood-material", "8",
    "--teacher-set", "epochs=1", "steps_per_epoch=2", "p=4", "k=2", "val_fraction=0.34", "synth_writers=4",
    "--student-set", "epochs=1", "steps_per_epoch=2", "p=4", "k=2",
]  # fmt: skip


def _make_models(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # two torch threads, as conftest gives the in-process tests (CI has 2 cores); one made this test ~45 s slower
    out = ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "models"), "--demo-out", str(tmp_path / "demo")]
    return subprocess.run(
        [sys.executable, "-m", "training.make_models", *out, *TOY, "--threads", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )


@pytest.mark.slow  # about 3 min on 2 cores: kept out of the default run's 15-minute budget (make test-all runs it)
def test_make_models_builds_every_model_from_scratch_and_resumes(tmp_path: Path) -> None:
    first = _make_models(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == sorted(MODELS)
    teacher = json.loads((models / "signature-teacher" / "model.json").read_text())
    assert teacher["training"]["config"]["epochs"] == 1 and teacher["training"]["config"]["lr"] == 3e-4
    assert teacher["training"]["init"]["name"] == "signature-teacher-base"  # continued the base stage ...
    base = json.loads((tmp_path / "work" / "signature-teacher-base" / "model.json").read_text())
    assert base["training"].get("init") is None and base["training"]["config"]["lr"] == 1e-3  # ... from scratch
    assert "teacher_init" not in teacher["provenance"] and "teacher_base" in teacher["provenance"]
    assert "6 training writers" in teacher["provenance"]["data"]
    assert "capitals" in teacher["provenance"]["ood_data"]
    assert (tmp_path / "work" / "data" / "gate" / "manifest.csv").is_file()  # the gates' own writers
    assert "plus 4 writers the generator drew afresh" in teacher["provenance"]["data"]
    student = json.loads((models / "signature-student" / "model.json").read_text())
    assert student["distillation"]["teacher"]["fingerprint"] == teacher["fingerprint"]
    split = json.loads((tmp_path / "work" / "signature-student" / "split.json").read_text())["splits"]
    pooled = {writer.split("/")[0] for part in split.values() for writer in part}
    assert pooled == {"0", "1"}  # `verify distill --data A B`: the training writers and the extra ones, kept apart
    assert [Path(r).name for r in student["data"]["roots"]] == ["train", "student-extra"]
    assert "pooled with 3 writers of seed 2" in student["provenance"]["data"]

    writer = tmp_path / "demo" / "writer-01"
    assert sorted(p.name for p in writer.iterdir())[:2] == ["forgery_1.png", "forgery_2.png"]
    for name in MODELS:
        model = load_model(models / name)
        card = json.loads((models / name / "model.json").read_text())
        assert card["calibration"]["threshold"] is not None and card["metrics"]["heldout_test"]["metrics"]
        assert name == "signature-hog" or (models / name / card["ood"]["file"]).is_file(), name
        result = Verifier(model).match(writer / "genuine_1.png", writer / "genuine_2.png")
        assert result.decision in (MATCH, NO_MATCH) and 0.0 <= result.probability <= 1.0, (name, result.reason)

    stamps = {name: (models / name / "model.json").stat().st_mtime_ns for name in MODELS[1:4]}
    shutil.rmtree(models / "signature-student-hog")  # as if the build had stopped while writing it
    again = _make_models(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "verify train" not in again.stdout and "verify distill" not in again.stdout  # nothing trained twice
    assert {name: (models / name / "model.json").stat().st_mtime_ns for name in MODELS[1:4]} == stamps
    assert load_model(models / "signature-student-hog").card.name == "signature-student-hog"  # only it was redone


def _manifest(folder: Path, rows: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.csv").write_text("path,writer,kind,forgery\n" + rows)
    return folder


def _model(folder: Path, fingerprint: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads((ROOT / "assets" / "models" / "signature-hog" / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**card, "fingerprint": fingerprint}))
    return folder


def test_a_teacher_stage_stopped_before_its_first_checkpoint_starts_over(tmp_path: Path, monkeypatch) -> None:
    """A run folder without a checkpoint (stopped during its first epoch) is trained afresh, not `--resume`d (which
    would fail: nothing to resume); one with a checkpoint is resumed; a finished one is left alone."""
    from training import make_models

    calls: list[list[str]] = []
    monkeypatch.setattr(make_models, "run_verify", calls.append)
    run, train = tmp_path / "signature-teacher", _manifest(tmp_path / "train")
    run.mkdir()
    (run / "run.json").write_text("{}")
    make_models.train_teacher(run, train, None, {"epochs": 1}, "signature-teacher")
    assert "--resume" not in calls[-1] and "--data" in calls[-1] and not (run / "run.json").exists()
    assert (run / make_models.RECORD).is_file()  # what the run is being built from, written before it starts

    (run / "state").mkdir(parents=True)
    (run / "state" / "last.json").write_text("{}")
    make_models.train_teacher(run, train, None, {"epochs": 1}, "signature-teacher")
    assert "--resume" in calls[-1]

    (run / "summary.json").write_text("{}")
    make_models.train_teacher(run, train, None, {"epochs": 1}, "signature-teacher")
    assert len(calls) == 2


def test_a_teacher_stage_is_trained_again_when_its_data_start_or_recipe_changed(tmp_path: Path, monkeypatch) -> None:
    """A finished or interrupted teacher run is reused only when its record names this data, starting model and
    recipe; otherwise (another recipe, a rebuilt base, other writers, no record) it is set aside as `<run>.stale`
    and trained from the start, never resumed."""
    from training import make_models

    calls: list[list[str]] = []

    def train(argv: list[str]) -> None:
        calls.append(argv)
        run = Path(argv[argv.index("--out") + 1])
        (run / "summary.json").write_text("{}")

    monkeypatch.setattr(make_models, "run_verify", train)
    run, data, base = tmp_path / "signature-teacher", _manifest(tmp_path / "train"), _model(tmp_path / "base", "aaaa")
    recipe = {"epochs": 2, "lr": 3e-4}
    make_models.train_teacher(run, data, str(base), recipe, "signature-teacher")
    make_models.train_teacher(run, data, str(base), recipe, "signature-teacher")
    assert len(calls) == 1 and "--init" in calls[0]  # finished, from the same things: kept
    changed = {**recipe, "lr": 1e-4}
    for i, change in enumerate(["recipe", "base", "data"], start=2):
        if change == "base":
            _model(base, "bbbb")  # the base stage was rebuilt
        if change == "data":
            _manifest(data, "a.png,1,genuine,\n")  # other writers
        make_models.train_teacher(run, data, str(base), changed, "signature-teacher")
        assert len(calls) == i and "--resume" not in calls[-1], change
        assert (tmp_path / "signature-teacher.stale" / "summary.json").is_file()
    (run / "summary.json").unlink()
    (run / "state").mkdir()
    (run / make_models.RECORD).unlink()  # an interrupted run from before records existed: not resumed
    make_models.train_teacher(run, data, str(base), changed, "signature-teacher")
    assert len(calls) == 5 and "--resume" not in calls[-1] and not (run / "state").exists()


def test_a_held_out_report_is_reused_only_for_the_model_and_writers_it_evaluated(tmp_path: Path, monkeypatch) -> None:
    """`calibrate` skips `verify eval` when its report was made for this model (fingerprint) and this held-out set,
    and evaluates again when either changed (a fused model over a retrained teacher must not take the old model's
    threshold; nor a model calibrated on other writers)."""
    from training import packaging
    from training.synth_sets import SynthSetSpec, write_synth_set

    calls: list[list[str]] = []

    def evaluate(argv: list[str]) -> None:
        calls.append(argv)
        out, model = Path(argv[argv.index("--out") + 1]), Path(argv[argv.index("--model") + 1])
        _model(out, json.loads((model / "model.json").read_text())["fingerprint"])
        (out / "report.json").write_text("{}")

    monkeypatch.setattr(packaging, "run_verify", evaluate)
    model, report = _model(tmp_path / "raw", "aaaa"), tmp_path / "heldout-eval"
    heldout = write_synth_set(tmp_path / "heldout", SynthSetSpec(writers=2, genuine=1, skilled=1), progress=False)
    assert packaging.calibrate(model, heldout, report)[0]["fingerprint"] == "aaaa"
    packaging.calibrate(model, heldout, report)
    assert len(calls) == 1
    _model(model, "bbbb")  # rebuilt
    assert packaging.calibrate(model, heldout, report)[0]["fingerprint"] == "bbbb" and len(calls) == 2
    write_synth_set(heldout, SynthSetSpec(writers=3, genuine=1, skilled=1), progress=False)  # other writers
    packaging.calibrate(model, heldout, report)
    assert len(calls) == 3


def test_the_student_is_distilled_again_when_its_teacher_or_recipe_changed(tmp_path: Path, monkeypatch) -> None:
    """A finished student run is kept only when it came from this teacher, data and recipe; otherwise (a rebuilt
    teacher, an older recipe, no record) it is set aside as `<run>.stale` and distilled again."""
    from training import make_models

    calls: list[list[str]] = []

    def distill(argv: list[str]) -> None:
        calls.append(argv)
        run = Path(argv[argv.index("--out") + 1])
        run.mkdir(parents=True)
        (run / "summary.json").write_text("{}")

    monkeypatch.setattr(make_models, "run_verify", distill)
    teacher, run = _model(tmp_path / "teacher", "aaaa"), tmp_path / "signature-student"
    recipe = {"epochs": 1, "name": "signature-student"}
    data = [_manifest(tmp_path / "train"), _manifest(tmp_path / "student-extra")]
    make_models.distill_student(run, teacher, data, "mobilenetv3_small_100", recipe)
    assert len(calls) == 1 and "--set" in calls[0] and "epochs=1" in calls[0]
    assert calls[0][calls[0].index("--data") + 1 :][:2] == [str(d) for d in data]  # both sets, pooled by distill
    make_models.distill_student(run, teacher, data, "mobilenetv3_small_100", recipe)
    assert len(calls) == 1  # same teacher, data and recipe: kept

    _model(teacher, "bbbb")  # the teacher was rebuilt
    make_models.distill_student(run, teacher, data, "mobilenetv3_small_100", recipe)
    assert len(calls) == 2 and (tmp_path / "signature-student.stale" / "summary.json").is_file()
    make_models.distill_student(run, teacher, data, "mobilenetv3_small_100", {**recipe, "epochs": 2})
    assert len(calls) == 3
    _manifest(data[1], "a.png,1,genuine,\n")  # other extra writers
    make_models.distill_student(run, teacher, data, "mobilenetv3_small_100", {**recipe, "epochs": 2})
    assert len(calls) == 4
    (run / "make_models.json").unlink()  # a run from before the record existed
    make_models.distill_student(run, teacher, data, "mobilenetv3_small_100", {**recipe, "epochs": 2})
    assert len(calls) == 5
