"""The classical HOG signature baseline: its feature against scikit-image, its card, and every path a model takes
(match, batch, eval --calibrate, enroll/identify with the gallery's fingerprint check)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import verify
from verify.cli import main
from verify.errors import ConfigError, ModelError, ModelMismatchError
from verify.models.card import write_card
from verify.models.classical import HogParams, hog_features, new_hog_card

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "models" / "signature-hog"
VERIFY_BIN = str(Path(sys.executable).parent / "verify")


@pytest.fixture(scope="module")
def hog_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small HOG card (48x96 input, 8 px cells) with a threshold, as a model directory."""
    directory = tmp_path_factory.mktemp("hog")
    card = new_hog_card("tiny-hog", 48, 96, HogParams(cell=8), calibration={"threshold": 0.5, "source": "test"})
    write_card(directory, card)
    return directory


def _sig(root: Path, writer: int, i: int) -> str:
    return str(root / "full_org" / f"original_{writer}_{i}.png")


@pytest.mark.parametrize(("shape", "params"), [((40, 56), HogParams()), ((37, 50), HogParams(8, 6, 3)),
                                              ((24, 24), HogParams(9, 4, 1)), ((96, 192), HogParams())])  # fmt: skip
def test_hog_equals_scikit_image(rng: np.random.Generator, shape: tuple[int, int], params: HogParams) -> None:
    from skimage.feature import hog

    images = rng.integers(0, 256, (3, *shape)).astype(np.uint8)
    images[0] = 0  # a blank crop: all-zero blocks stay zero
    images[1, :, : shape[1] // 2] = 0  # half blank
    ours = hog_features(images, params)
    cell, block = (params.cell, params.cell), (params.block, params.block)
    ref = np.stack([hog(im, params.orientations, cell, block, block_norm="L2-Hys") for im in images])
    assert ours.shape == ref.shape == (3, params.dim(*shape))
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_bundled_card_loads_with_a_synthetic_calibration() -> None:
    model = verify.load_model(BUNDLED)
    card = json.loads((BUNDLED / "model.json").read_text())
    assert type(model).__name__ == "HogEmbedder" and model.modality == "signature"
    assert model.dim == 3780 and model.fingerprint == card["fingerprint"]
    assert model.threshold is not None and 0 < model.threshold < 1
    assert "synthetic" in card["provenance"]["data"] and not list(BUNDLED.glob("*.safetensors"))


def test_embeddings_are_unit_rows_and_genuine_scores_higher(hog_model: Path, synth_signatures: Path) -> None:
    import cv2

    model = verify.load_model(hog_model)
    images = [cv2.imread(_sig(synth_signatures, w, i), cv2.IMREAD_GRAYSCALE) for w in (1, 2, 3, 4) for i in (1, 2, 3)]
    emb = model.embed(images, batch_size=5)
    assert emb.shape == (12, model.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb, model.embed(images, batch_size=32), atol=1e-6)  # batch size changes nothing
    sims = emb @ emb.T
    same = np.kron(np.eye(4), np.ones((3, 3))).astype(bool) & ~np.eye(12, dtype=bool)
    assert sims[same].mean() > sims[~np.kron(np.eye(4), np.ones((3, 3))).astype(bool)].mean()
    assert model.embed([]).shape == (0, model.dim)


def test_edited_or_inconsistent_cards_are_refused(tmp_path: Path, hog_model: Path) -> None:
    for name in ("edited", "dim", "unknown"):
        (tmp_path / name).mkdir()
    card = json.loads((hog_model / "model.json").read_text())
    card["architecture"]["cell"] = 6  # feature changed after the fingerprint was written
    write_card(tmp_path / "edited", card)
    with pytest.raises(ModelMismatchError, match="fingerprint"):
        verify.load_model(tmp_path / "edited")
    card = json.loads((hog_model / "model.json").read_text())
    card["architecture"]["dim"] = 10
    del card["fingerprint"]  # a hand-written card: the loader fills the fingerprint in, but checks dim
    write_card(tmp_path / "dim", card)
    with pytest.raises(ModelError, match="dim must be"):
        verify.load_model(tmp_path / "dim")
    card = json.loads((hog_model / "model.json").read_text())
    card["architecture"]["colour"] = True
    write_card(tmp_path / "unknown", card)
    with pytest.raises(ConfigError, match="unknown"):
        verify.load_model(tmp_path / "unknown")
    with pytest.raises(ConfigError):
        HogParams(cell=1)


def test_match_batch_and_eval_calibrate(hog_model: Path, synth_signatures: Path, tmp_path: Path) -> None:
    a, b = _sig(synth_signatures, 1, 1), _sig(synth_signatures, 2, 1)
    proc = subprocess.run([VERIFY_BIN, "match", a, a, "--model", str(hog_model), "--json"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["decision"] == "match" and out["score"] == pytest.approx(1.0, abs=1e-5)
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        csv.writer(fh).writerows([["reference", "questioned"], [a, a], [a, b], [a, str(tmp_path / "missing.png")]])
    assert (
        main(
            [
                "batch",
                "--pairs",
                str(pairs),
                "--out",
                str(tmp_path / "out.csv"),
                "--model",
                str(hog_model),
                "--allow-outside-root",
                "--no-progress",
            ]
        )
        == 1
    )  # fmt: skip  (one row has a missing file)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert float(rows[0]["score"]) == pytest.approx(1.0, abs=1e-5) and float(rows[1]["score"]) < 1.0
    assert "missing.png" in rows[2]["error"]
    code = main(["eval", "--model", str(hog_model), "--data", str(synth_signatures), "--protocol", "cedar",
                 "--out", str(tmp_path / "eval"), "--calibrate", "--target-far", "eer", "--bootstrap", "0",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    calibrated = verify.load_model(tmp_path / "eval")
    assert calibrated.fingerprint == verify.load_model(hog_model).fingerprint  # calibration keeps galleries valid
    assert calibrated.threshold is not None and calibrated.threshold != 0.5


def test_gallery_enroll_identify_and_other_model_refused(
    capsys: pytest.CaptureFixture[str], hog_model: Path, tiny_model: Path, synth_signatures: Path, tmp_path: Path
) -> None:
    gallery = str(tmp_path / "g")
    for w in (1, 2, 3):
        assert main(["enroll", "--gallery", gallery, "--name", f"w{w}", "--model", str(hog_model),
                     _sig(synth_signatures, w, 1), _sig(synth_signatures, w, 2)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["identify", _sig(synth_signatures, 2, 3), "--gallery", gallery, "--model", str(hog_model),
                 "--json"]) == 0  # fmt: skip
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.dumps(found).count("w2") >= 1
    assert main(["identify", _sig(synth_signatures, 2, 3), "--gallery", gallery, "--model", str(tiny_model)]) == 2
    assert "model" in capsys.readouterr().err


def test_a_classical_or_fused_model_has_no_network_to_fine_tune() -> None:
    """`verify train --init` / `verify distill --teacher` on them say so (they said "unknown architecture")."""
    from verify.models.card import load_network

    root = Path(__file__).resolve().parents[1] / "assets" / "models"
    for name, kind in (("signature-hog", "classical-hog"), ("signature-teacher-hog", "fused")):
        with pytest.raises(ModelError, match=f"a {kind} model has no network to fine-tune or distil"):
            load_network(root / name)
