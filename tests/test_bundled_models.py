"""The bundled signature models: cards complete, the OOD gate rejects what is not a signature, scores make sense."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verify.decision import REJECTED
from verify.io import load_image
from verify.models.defaults import assets_dir, default_model_path
from verify.verifier import Verifier

DEMO = assets_dir() / "demo"
SIGNATURES = sorted((DEMO / "signatures").glob("writer-*"))
FACE = DEMO / "faces" / "obama.jpg"


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier.from_path(default_model_path("signature"))


@pytest.mark.parametrize(
    "name", ["signature-teacher", "signature-student", "signature-teacher-hog", "signature-student-hog"]
)
def test_cards_say_everything_needed(name: str) -> None:
    card = json.loads((assets_dir() / "models" / name / "model.json").read_text())
    assert card["modality"] == "signature" and card["input"]["channels"] == 1
    cal = card["calibration"]
    assert 0 < cal["threshold"] < 1 and "calibration identities" in cal["source"] and cal["calibrator"]
    assert card["ood"]["file"] == "ood.safetensors" and 0.9 <= card["ood"]["keep"] <= 0.99
    assert card["metrics"]["heldout_test"]["metrics"]["skilled"]["eer"]["ci95"]
    assert "synthetic" in card["provenance"]["data"]
    assert "/work/" not in json.dumps(card) and not Path(json.dumps(card)).is_absolute()


def test_student_names_its_teacher() -> None:
    student = json.loads((assets_dir() / "models" / "signature-student" / "model.json").read_text())
    teacher = json.loads((assets_dir() / "models" / "signature-teacher" / "model.json").read_text())
    assert student["distillation"]["teacher"]["fingerprint"] == teacher["fingerprint"]
    assert "pooled with 1000 writers of seed 2" in student["provenance"]["data"]  # make models' student data
    assert student["data"]["identities"]["train"] + student["data"]["identities"]["val"] == 3000
    assert default_model_path("signature").name == "signature-teacher-hog"


def test_gate_rejects_a_blank_page_and_a_face_photo(verifier: Verifier, tmp_path: Path) -> None:
    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 440), 245, np.uint8))
    face = DEMO / "faces" / "obama.jpg"
    genuine = SIGNATURES[0] / "genuine_1.png"
    result = verifier.match(genuine, blank)
    assert result.decision == REJECTED and "not a signature" in result.reason
    result = verifier.match(genuine, face)
    assert result.decision == REJECTED and "input 2: not a signature" in result.reason, result.reason
    assert result.ood_scores[1] is not None and result.ood_scores[1] < verifier.ood_threshold
    photos = sorted(p for p in (DEMO / "faces").iterdir() if p.suffix in (".jpg", ".png"))
    kinds = json.loads((default_model_path("signature") / "model.json").read_text())["ood"]["kinds"]
    assert "faces" in kinds
    for photo, probe in zip(photos, verifier.probes(photos), strict=True):  # every demo face photo is refused
        assert probe.rejection is not None and probe.rejection.kind == "out_of_distribution", photo.name
        assert probe.rejection.looks_like == "faces", probe.rejection  # named as a face photo, whatever the gate
        assert probe.rejected == "not a signature: it looks like a face photo (a face was found in it)"


@pytest.mark.parametrize("mode", ["reject", "flag", "off"])
def test_a_face_photo_the_gate_accepts_is_refused_all_the_same(mode: str) -> None:
    """A gate that accepts everything (threshold 0, as a weak gate accepted obama.jpg) still has the face photo
    refused by the face found in it; with gate mode "flag" it is answered and flagged; with the gate off, nothing
    is looked for."""
    verifier = Verifier.from_path(default_model_path("signature"), gate_mode=mode)
    if mode != "off":
        assert verifier.ood is not None
        verifier.ood.threshold = verifier.ood_threshold = 0.0  # type: ignore[misc]
        _emb, _scores, reasons = verifier.embed_gated([verifier.model.preprocess(load_image(FACE, mode="gray")).image])
        assert reasons == [None]  # the gate alone: accepted
    probe = verifier.probe(FACE)
    genuine = verifier.probe(SIGNATURES[0] / "genuine_1.png")
    assert genuine.rejection is None and genuine.flag is None  # a signature is not taken for a face
    if mode == "reject":
        assert probe.rejection is not None and probe.rejection.looks_like == "faces"
    elif mode == "flag":
        assert probe.rejection is None and probe.flag is not None and "a face photo" in probe.flag.message
    else:
        assert probe.rejection is None and probe.flag is None


def test_genuine_pairs_score_above_other_writers(verifier: Verifier) -> None:
    probes = {w.name: verifier.probes(sorted(w.glob("genuine_*.png"))) for w in SIGNATURES}
    assert all(p.rejected is None for ps in probes.values() for p in ps), "demo signatures pass the gate"
    emb = {w: np.stack([p.embedding for p in ps]) for w, ps in probes.items()}
    same = [float(s) for e in emb.values() for s in (e @ e.T)[np.triu_indices(len(e), 1)]]
    names = list(emb)
    other = [float(s) for i, a in enumerate(names) for b in names[i + 1 :] for s in (emb[a] @ emb[b].T).ravel()]
    assert np.mean(same) > np.mean(other) + 0.05


@pytest.mark.parametrize(
    "name", ["signature-teacher-hog", "signature-teacher", "signature-student", "signature-student-hog"]
)
def test_bundled_gates_read_the_shape_statistics(name: str) -> None:
    """The gates make models fits: shape statistics of the ink, the mean of five MLPs on the backbone features of
    the learned network (a fused model's gate is its learned component's recipe); the students' on 480 outlier
    images per kind."""
    from verify.ood_gate import OutlierExposureGate, load_gate
    from verify.ood_ink import ALL_FEATURES

    directory = assets_dir() / "models" / name
    section = json.loads((directory / "model.json").read_text())["ood"]
    gate = load_gate(directory / section["file"], section)
    assert isinstance(gate, OutlierExposureGate) and gate.ink_features == ALL_FEATURES
    assert len(gate.layers) == 2 and section.get("classifier", "mlp") == "mlp" and section["features"] == "backbone"
    assert section.get("members", 1) == 5 == len(gate.members)
    assert section["n_outlier"]["logos"] == (480 if "student" in name else 120)
