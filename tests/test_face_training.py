"""Faces through the project's own tools: fine-tune, distill, export and LFW-evaluate the ported dlib ResNet.

Training data are identity folders built from the demo photos with augmentation (flips, small rotations and
crops, colour jitter). Only two people appear in the demo photos, so the four training "identities" are
pseudo-identities (obama, obama2, partial = other photos of Obama, biden): enough to check the mechanics,
not accuracy. One image with no face in it must be skipped and reported, not crash the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from verify.data.lfw import write_lfw_pairs
from verify.io import load_image
from verify.models.card import load_network, read_card

VERIFY_BIN = str(Path(sys.executable).parent / "verify")
ROOT = Path(__file__).resolve().parents[1]
FACE_MODEL = ROOT / "assets" / "models" / "face-resnet"
FACES = Path(__file__).parent / "data" / "faces"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # 2 shared cores: one thread per process
TINY = ["epochs=1", "p=2", "k=2", "val_fraction=0.5", "early_stopping=0", "warmup_epochs=0"]
IDENTITIES = {
    "obama": ["obama.jpg", "obama3.jpg"],
    "obama2": ["obama2.jpg", "32bit.png"],
    "partial": ["obama_partial_face.jpg", "obama_partial_face2.jpg"],
    "biden": ["biden.jpg"],
}


def _run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([VERIFY_BIN, *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _sets(*items: str) -> list[str]:
    return [arg for item in (*TINY, *items) for arg in ("--set", item)]


def _augment(image: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """A flip, a rotation of up to 8 degrees with a 0.92-1.08 zoom, brightness / contrast jitter."""
    h, w = image.shape[:2]
    if flip:
        image = np.ascontiguousarray(image[:, ::-1])
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.92, 1.08))
    image = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    jitter = image.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
    return np.clip(jitter, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def face_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/<identity>/<image>: 4 pseudo-identities x 4 augmented photos, plus one image with no face."""
    root = tmp_path_factory.mktemp("faces") / "folders"
    rng = np.random.default_rng(0)
    for name, files in IDENTITIES.items():
        (root / name).mkdir(parents=True)
        for i in range(4):
            image = cv2.imread(str(FACES / files[i % len(files)]), cv2.IMREAD_COLOR)
            cv2.imwrite(str(root / name / f"{name}_{i}.jpg"), _augment(image, rng, flip=i % 2 == 1))
    cv2.imwrite(str(root / "biden" / "no_face.png"), np.full((120, 160, 3), 200, np.uint8))
    return root


@pytest.fixture(scope="module")
def demo_embeddings() -> dict[str, np.ndarray]:
    """The bundled face model's embeddings of the demo photos, by file name ([D] each)."""
    import verify

    model = verify.load_model(FACE_MODEL)
    names = sorted(n for files in IDENTITIES.values() for n in files)
    crops = [model.preprocess(load_image(FACES / n, mode="rgb")).image for n in names]
    return dict(zip(names, model.embed_crops(crops), strict=True))


def test_dlib_resnet_has_the_embedder_interface():
    from verify.models.dlib_resnet import DlibFaceResNet

    torch.manual_seed(0)
    net = DlibFaceResNet(dim=16).eval()
    x = torch.randn(2, 3, 150, 150)
    with torch.no_grad():
        feats = net.features(x)
        assert feats.shape == (2, net.num_features) and net.num_features == 256 and net.dim == 16
        raw = net.project(feats)
        torch.testing.assert_close(raw, net.forward_raw(x))
        torch.testing.assert_close(F.normalize(raw, dim=1), net(x))
        a, b = net.forward_pair(x[:1], x[1:])
        torch.testing.assert_close(torch.cat([a, b]), net(x), atol=1e-6, rtol=1e-5)


def test_train_fine_tunes_the_face_resnet(face_folders, tmp_path):
    import verify

    run = tmp_path / "ft"
    args = ["train", "--init", str(FACE_MODEL), "--data", str(face_folders), "--modality", "face"]
    proc = _run(*args, "--out", str(run), "--quiet", "--json", *_sets())
    summary = json.loads(proc.stdout)
    assert summary["epochs"] == 1 and summary["skipped_images"] == 1  # the no-face image, reported
    assert summary["train_identities"] == summary["val_identities"] == 2
    card, base = read_card(run), read_card(FACE_MODEL)
    assert card["architecture"] == {"kind": "dlib_resnet", "dim": 128}
    assert card["input"] == base["input"] and card["input"]["height"] == card["input"]["width"] == 150
    assert card["preprocessing"] == base["preprocessing"] and card["preprocessing"]["kind"] == "face"
    assert card["training"]["init"]["fingerprint"] == base["fingerprint"]
    config = json.loads((run / "config.json").read_text())
    assert (config["height"], config["width"], config["backbone"]) == (150, 150, "dlib_resnet")
    assert config["name"] == card["name"] == f"{base['name']}-finetuned"
    tuned, _ = load_network(run)
    old, _ = load_network(FACE_MODEL)
    assert type(tuned).__name__ == "DlibFaceResNet"
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, old.state_dict()[k])]
    assert changed  # the weights were trained
    model = verify.load_model(run)
    emb = model.embed_crops([model.preprocess(load_image(FACES / "obama.jpg", mode="rgb")).image])
    assert emb.shape == (1, 128) and abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5


def test_distill_a_face_student(face_folders, tmp_path):
    import verify

    run = tmp_path / "student"
    args = ["distill", "--teacher", str(FACE_MODEL), "--student", "mnasnet_050", "--data", str(face_folders)]
    proc = _run(*args, "--out", str(run), "--quiet", "--json", *_sets())
    summary = json.loads(proc.stdout)
    teacher = read_card(FACE_MODEL)
    assert summary["epochs"] == 1 and summary["teacher"]["fingerprint"] == teacher["fingerprint"]
    card = read_card(run)
    assert card["distillation"]["teacher"]["fingerprint"] == teacher["fingerprint"]
    assert card["distillation"]["teacher"]["name"] == teacher["name"]
    assert card["architecture"]["kind"] == "timm" and card["architecture"]["backbone"] == "mnasnet_050"
    assert card["modality"] == "face" and card["preprocessing"] == teacher["preprocessing"]
    assert card["input"] == teacher["input"]  # the student sees the teacher's 150x150 chips
    emb = verify.load_model(run).embed_crops([np.zeros((150, 150, 3), np.uint8)])
    assert emb.shape == (1, 128)


def test_export_face_resnet_to_onnx_matches_torch(demo_embeddings, tmp_path):
    from verify.export import load_onnx_model

    out = tmp_path / "face.onnx"
    proc = _run("export", "--model", str(FACE_MODEL), "--format", "onnx", "--out", str(out), "--json")
    report = json.loads(proc.stdout)
    assert report["max_abs_diff"] < 1e-4 and report["fingerprint"] == read_card(FACE_MODEL)["fingerprint"]
    onnx_model = load_onnx_model(out, threads=1)
    assert onnx_model.card["architecture"]["kind"] == "dlib_resnet"
    names = sorted(demo_embeddings)
    crops = [onnx_model.preprocess(load_image(FACES / n, mode="rgb")).image for n in names]
    got = onnx_model.embed_crops(crops)
    ref = np.stack([demo_embeddings[n] for n in names])
    assert np.abs(got - ref).max() < 1e-4  # on real aligned face chips, not only on random inputs


def test_eval_lfw_protocol_with_the_face_model(demo_embeddings, tmp_path):
    people = {
        "Barack_Obama": ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg"],
        "Joe_Biden": ["biden.jpg", "biden.jpg"],  # the second copy is mirrored
    }
    source: dict[tuple[str, int], str] = {}
    for name, files in people.items():
        (tmp_path / "lfw" / name).mkdir(parents=True)
        for i, file in enumerate(files, start=1):
            image = cv2.imread(str(FACES / file), cv2.IMREAD_COLOR)
            image = image[:, ::-1] if name == "Joe_Biden" and i == 2 else image
            cv2.imwrite(str(tmp_path / "lfw" / name / f"{name}_{i:04d}.jpg"), image)
            source[name, i] = file
    o, b = "Barack_Obama", "Joe_Biden"
    folds = [
        ([(o, 1, 2), (b, 1, 2)], [(o, 1, b, 1), (o, 2, b, 2)]),
        ([(o, 3, 4), (o, 1, 3)], [(o, 3, b, 1), (o, 4, b, 2)]),
    ]
    pairs = write_lfw_pairs(tmp_path / "pairs.txt", folds)
    out = tmp_path / "report"
    args = ["eval", "--model", str(FACE_MODEL), "--pairs", str(pairs), "--protocol", "lfw"]
    _run(*args, "--images", str(tmp_path / "lfw"), "--out", str(out), "--bootstrap", "0", "--no-progress")
    for name in ("report.json", "report.md", "roc.png", "det.png", "scores.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["kind"] == "lfw" and report["data"]["pairs_missing_images"] == 0
    assert report["data"]["failed_images"] == 0 and report["model"]["modality"] == "face"
    assert report["kfold"]["folds"] == 2 and report["kfold"]["accuracy"] == 1.0
    assert report["metrics"]["impostor"]["auc"]["value"] == 1.0
    # the same ordering, from embeddings computed here (biden vs its mirror image: the original's embedding)
    matched = [demo_embeddings[source[n, i]] @ demo_embeddings[source[n, j]] for f in folds for n, i, j in f[0]]
    mismatched = [demo_embeddings[source[n, i]] @ demo_embeddings[source[m, j]] for f in folds for n, i, m, j in f[1]]
    assert min(matched) > max(mismatched)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--init", "no-such-model"], "no such model"),
        (["--init", str(FACE_MODEL), "--modality", "signature"], "is a face model"),
    ],
)
def test_train_init_usage_errors_exit_2(face_folders, tmp_path, capsys, extra, message):
    from verify.cli import main

    assert main(["train", "--data", str(face_folders), "--out", str(tmp_path / "run"), *extra]) == 2
    assert message in capsys.readouterr().err
