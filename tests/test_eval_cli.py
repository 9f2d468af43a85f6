"""`verify eval` and the evaluation pipeline on a tiny synthetic signature set with a real (untrained) model."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import VERIFY_BIN, make_tiny_model

import verify
from verify.cli import main
from verify.data.lfw import write_lfw_pairs
from verify.data.signatures import load_signature_dataset
from verify.eval.report import REPORT_FILES
from verify.eval.run import evaluate, sample_pairs
from verify.models.base import Embedder
from verify.preprocess.crop import Crop


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 writers x 4 genuine + 2 skilled forgeries at 48x64 px (synthetic)."""
    from verify.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("evalsynth"), 6, 4, 2, seed=1, height=48, width=64, progress=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("evalmodel") / "tiny", threshold=0.5)


class CountingEmbedder(Embedder):
    """Wraps a real model and counts the images it preprocesses."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.card, self.calls = inner, inner.card, 0

    def preprocess(self, image: np.ndarray) -> Crop:
        self.calls += 1
        return self.inner.preprocess(image)

    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        return self.inner.embed_crops(crops, batch_size=batch_size)


def test_cli_writes_report_and_calibrated_copy(synth, model_dir, tmp_path):
    before = (model_dir / "model.json").read_bytes()
    out = tmp_path / "report"
    cmd = [VERIFY_BIN, "eval", "--model", str(model_dir), "--data", str(synth), "--protocol", "cedar"]
    proc = subprocess.run(
        [*cmd, "--out", str(out), "--calibrate", "--bootstrap", "50", "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["threshold_source"] == "calibration" and summary["calibrated_card"] == str(out / "model.json")
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    for name in ("roc.png", "det.png", "scores.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"skilled", "random"}
    eer = report["metrics"]["skilled"]["eer"]
    assert 0 <= eer["value"] <= 1 and eer["ci95"][0] <= eer["ci95"][1]
    assert report["sizes"]["skilled"] > 0 and report["score_set_sizes"]["genuine"] == report["sizes"]["genuine"]
    assert (
        report["threshold"]["chosen_on"] == "calibration" and "calibration identities" in report["threshold"]["source"]
    )
    assert set(report["signature"]["errors_at_threshold"]) == {"FRR", "FAR_skilled", "FAR_random"}
    assert "| eer |" in (out / "report.md").read_text()
    # the input model is untouched; the copy loads with the new operating point
    assert (model_dir / "model.json").read_bytes() == before
    calibrated = verify.load_model(out)
    assert calibrated.threshold == pytest.approx(report["threshold"]["value"])
    assert calibrated.card["calibration"]["calibrator"]["method"] == "platt"
    assert calibrated.fingerprint == verify.load_model(model_dir).fingerprint


def test_evaluate_embeds_each_image_once_and_splits_writers(synth, model_dir, tmp_path):
    samples = load_signature_dataset(synth, "cedar")
    dup = tmp_path / "copy_of_first.png"  # same bytes under another path: embedded once
    shutil.copy(samples[0].path, dup)
    samples.append(type(samples[0])(path=dup, identity=samples[0].identity, kind="genuine"))
    model = CountingEmbedder(verify.load_model(model_dir))
    results = evaluate(model, samples, n_bootstrap=0, progress=False)
    assert model.calls == len(samples) - 1
    assert results["data"]["images"] == len(samples)
    assert results["data"]["calibration_identities"] == 3 and results["data"]["test_identities"] == 3
    _, table, _ = sample_pairs(samples, seed=0)
    writer = {k: s.identity for k, s in enumerate(sorted(samples, key=lambda s: s.path))}
    kind_of = {s.path: s.kind for s in samples}
    paths = sorted(s.path for s in samples)
    part = {writer[k]: split for k, split in zip(table["a"], table["split"], strict=True)}
    assert set(part.values()) == {"calibration", "test"}
    for row in table.itertuples():
        wa, wb = writer[row.a], writer[row.b]
        assert part[wa] == part[wb] == row.split  # no pair crosses the calibration/test boundary
        assert (wa == wb) == (row.kind in ("genuine", "skilled"))
        assert (kind_of[paths[row.b]] == "skilled") == (row.kind == "skilled")
    assert set(results["scores"]) == {"genuine", "skilled", "random"}


def test_cli_lfw_pairs_report_missing_and_kfold(synth, model_dir, tmp_path):
    images = tmp_path / "lfw"
    names = [f"p{w}" for w in range(1, 7)]
    for w, name in enumerate(names, start=1):
        (images / name).mkdir(parents=True)
        for i in range(1, 4):
            img = cv2.imread(str(synth / "full_org" / f"original_{w}_{i}.png"))
            cv2.imwrite(str(images / name / f"{name}_{i:04d}.jpg"), img)
    folds = []
    for f in range(2):
        a, b, c = names[3 * f : 3 * f + 3]
        folds.append(([(a, 1, 2), (b, 1, 3), (c, 2, 9)], [(a, 1, b, 1), (a, 2, c, 1), (b, 3, c, 3)]))
    pairs = write_lfw_pairs(tmp_path / "pairs.txt", folds)  # c 9 does not exist: 2 pairs miss an image
    out = tmp_path / "rep"
    argv = ["eval", "--model", str(model_dir), "--pairs", str(pairs), "--images", str(images), "--out", str(out)]
    assert main([*argv, "--bootstrap", "0", "--no-progress"]) == 1  # ran, but some input was missing
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["kind"] == "lfw" and report["data"]["pairs_missing_images"] == 2
    assert report["kfold"]["folds"] == 2 and 0 <= report["kfold"]["accuracy"] <= 1
    assert report["data"]["by"] == "fold"


def test_cli_csv_with_a_broken_image(synth, model_dir, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    rows = ["path_a,path_b,label"]
    for w in range(1, 7):  # every reference image has genuine and impostor pairs: the split of the references
        # (seeded by their full paths, so by pytest's temporary folder) always leaves both kinds in each part
        rows.append(f"{synth}/full_org/original_{w}_1.png,{synth}/full_org/original_{w}_2.png,1")
        rows.append(f"{synth}/full_org/original_{w}_1.png,{synth}/full_forg/forgeries_{w}_1.png,0")
        rows.append(f"{synth}/full_org/original_{w}_1.png,{synth}/full_org/original_{w % 6 + 1}_3.png,0")
    rows.append(f"{broken},{synth}/full_org/original_1_1.png,1")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "rep"
    argv = ["eval", "--model", str(model_dir), "--pairs", str(tmp_path / "pairs.csv"), "--out", str(out)]
    assert main([*argv, "--bootstrap", "0", "--json", "--target-far", "eer"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed_images"] == 1
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["kind"] == "pairs_csv" and report["data"]["pairs_dropped"] == 1
    assert str(broken) in report["failures"]
    assert report["threshold"]["target"] == "eer"


@pytest.mark.parametrize(
    "extra",
    [
        ["--data", "X", "--pairs", "Y.csv"],  # both sources
        ["--data", "X"],  # no protocol
        ["--pairs", "Y.csv", "--protocol", "cedar"],  # protocol reads a folder
        ["--data", "X", "--protocol", "cedar", "--target-far", "2"],  # argparse: bad FAR
    ],
)
def test_cli_usage_errors_exit_2(extra, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(["eval", "--out", str(tmp_path / "r"), *extra])
        raise SystemExit(code)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_refuses_to_calibrate_into_the_model_folder(synth, model_dir, tmp_path, capsys):
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    before = (copy / "model.json").read_bytes()
    argv = ["eval", "--model", str(copy), "--data", str(synth), "--protocol", "cedar", "--out", str(copy)]
    assert main([*argv, "--calibrate", "--bootstrap", "0", "--no-progress"]) == 2
    assert "model's own folder" in capsys.readouterr().err
    assert (copy / "model.json").read_bytes() == before


def test_sample_pairs_for_identity_folders_is_seeded_and_disjoint():
    from verify.data import Sample

    samples = [Sample(Path(f"/x/id{i}/{k}.png"), f"id{i}") for i in range(8) for k in range(3)]
    paths, table, info = sample_pairs(samples, seed=3, impostors_per_identity=10)
    assert set(table["kind"]) == {"genuine", "impostor"}
    assert info["calibration_identities"] == info["test_identities"] == 4
    ident = [p.parent.name for p in paths]
    same = [ident[a] == ident[b] for a, b in zip(table["a"], table["b"], strict=True)]
    assert list(table["kind"] == "genuine") == same
    assert (table[table["kind"] == "genuine"].groupby("identity").size() == 3).all()  # C(3, 2) pairs each
    assert (table[table["kind"] == "impostor"].groupby("identity").size() <= 10).all()
    split_of = dict(zip(table["identity"], table["split"], strict=False))
    for a, b, s in zip(table["a"], table["b"], table["split"], strict=True):
        assert split_of[ident[a]] == split_of[ident[b]] == s
    again = sample_pairs(samples, seed=3, impostors_per_identity=10)[1]
    assert again.equals(table)
    assert not sample_pairs(samples, seed=4, impostors_per_identity=10)[1].equals(table)


def test_cli_default_model_missing_is_a_usage_error(synth, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VERIFY_ASSETS", str(tmp_path / "no-assets"))
    argv = ["eval", "--data", str(synth), "--protocol", "cedar", "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no bundled signature model" in err and "--model" in err


def test_write_report_from_plain_scores(tmp_path):
    from verify.eval.report import write_report

    rng = np.random.default_rng(0)
    scores = {"genuine": rng.normal(0.7, 0.1, 40), "impostor": rng.normal(0.2, 0.1, 300)}
    results = {"model": {"name": "m"}, "metrics": {}, "threshold": {"value": None, "source": "none given"}}
    write_report(tmp_path / "r", results, scores)
    for name in REPORT_FILES:
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert cv2.imread(str(tmp_path / "r" / "det.png")) is not None
    assert json.loads((tmp_path / "r" / "report.json").read_text())["score_set_sizes"] == {
        "genuine": 40,
        "impostor": 300,
    }
    assert "threshold: n/a (None: none given)" in (tmp_path / "r" / "report.md").read_text()
