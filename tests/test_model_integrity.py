"""Model files are verified before use: weights hash required, fingerprint recomputed from the tensors, NaN
weights and unhashed or changed OOD scorers refused; the bundled models pass these checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from verify.errors import ModelError
from verify.models import load_model
from verify.models.card import file_sha256

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "models"


def _card(directory: Path) -> dict:
    return json.loads((directory / "model.json").read_text())


def _write_card(directory: Path, card: dict) -> None:
    (directory / "model.json").write_text(json.dumps(card, indent=2))


def _noise_weights(directory: Path) -> None:
    """Perturb every float tensor and rewrite the file (its safetensors header card kept)."""
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    state = load_file(str(directory / "model.safetensors"))
    gen = torch.Generator().manual_seed(0)
    noisy = {k: v + 0.05 * torch.randn(v.shape, generator=gen).to(v.dtype) if v.is_floating_point() else v
             for k, v in state.items()}  # fmt: skip
    save_file(noisy, str(directory / "model.safetensors"), metadata=meta)


@pytest.fixture
def model_dir(tiny_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model, tmp_path / "m"))


def test_card_without_weights_hash_is_refused(model_dir: Path) -> None:
    card = _card(model_dir)
    del card["weights"]["sha256"]
    _write_card(model_dir, card)
    with pytest.raises(ModelError, match=r"no weights\.sha256"):
        load_model(model_dir)


def test_fingerprint_is_recomputed_from_the_tensors(model_dir: Path) -> None:
    original = load_model(model_dir).fingerprint
    _noise_weights(model_dir)
    card = _card(model_dir)
    card["weights"]["sha256"] = file_sha256(model_dir / "model.safetensors")  # the hash updated to match
    _write_card(model_dir, card)
    with pytest.raises(ModelError, match="fingerprint"):  # the card's fingerprint names other weights
        load_model(model_dir)
    del card["fingerprint"]
    _write_card(model_dir, card)
    assert load_model(model_dir).fingerprint != original  # a gallery of the original model refuses it


def test_changed_weights_refused_by_hash(model_dir: Path) -> None:
    _noise_weights(model_dir)
    with pytest.raises(ModelError, match="sha256 differs"):
        load_model(model_dir)


def test_nan_weights_refused_at_load_with_a_typed_error(model_dir: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    state = load_file(str(model_dir / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 4)
    state[name].view(-1)[3] = float("nan")
    save_file(state, str(model_dir / "model.safetensors"), metadata=meta)
    card = _card(model_dir)
    card["weights"]["sha256"] = file_sha256(model_dir / "model.safetensors")
    _write_card(model_dir, card)
    with pytest.raises(ModelError, match="NaN"):
        load_model(model_dir)


def test_ood_scorer_must_be_hashed_and_match(model_dir: Path) -> None:
    (model_dir / "ood.safetensors").write_bytes(b"stand-in scorer bytes")
    card = _card(model_dir)
    card["ood"] = {"file": "ood.safetensors", "threshold": 0.0}
    _write_card(model_dir, card)
    with pytest.raises(ModelError, match=r"no ood\.sha256"):
        load_model(model_dir)
    card["ood"]["sha256"] = file_sha256(model_dir / "ood.safetensors")
    _write_card(model_dir, card)
    (model_dir / "ood.safetensors").write_bytes(b"stand-in scorer bytes, changed")
    with pytest.raises(ModelError, match=r"ood\.sha256"):
        load_model(model_dir)


@pytest.mark.parametrize("name", ["face-resnet", "signature-student", "signature-teacher"])
def test_bundled_models_carry_verifiable_hashes(name: str) -> None:
    card = _card(ASSETS / name)
    assert file_sha256(ASSETS / name / "model.safetensors") == card["weights"]["sha256"]
    if "ood" in card:
        assert file_sha256(ASSETS / name / card["ood"]["file"]) == card["ood"]["sha256"]
    assert load_model(ASSETS / name, device="cpu").fingerprint == card["fingerprint"]
