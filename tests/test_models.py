"""Embedder network, model cards, safetensors checkpoints and `verify.load_model`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import verify
from verify.errors import ConfigError, ModelError
from verify.models import new_card, read_card, save_model
from verify.models.card import load_network
from verify.models.network import SiameseEmbedder, create_timm_network
from verify.models.registry import PREPROCESSORS
from verify.models.runtime import crops_to_tensor

ARCH = {"kind": "timm", "backbone": "resnet18", "dim": 16, "in_chans": 1}


def _card(arch: dict = ARCH) -> dict:
    return new_card(
        name="tiny",
        modality="signature",
        architecture=arch,
        input={"height": 32, "width": 48, "channels": arch["in_chans"]},
        preprocessing={"kind": "test-identity"},
        training={"epochs": 1},
    )


class _Identity:
    def __init__(self, card: dict) -> None:
        self.card = card

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return image


PREPROCESSORS["test-identity"] = _Identity


def test_embeddings_are_l2_normalised_and_branches_share_weights() -> None:
    net = SiameseEmbedder("resnet18", dim=16, in_chans=1).eval()
    a, b = torch.randn(3, 1, 32, 48), torch.randn(3, 1, 32, 48)
    ea, eb = net.forward_pair(a, b)
    assert ea.shape == (3, 16)
    torch.testing.assert_close(ea.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(ea, net(a), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eb, net(b), atol=1e-5, rtol=1e-5)


def test_unknown_backbone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown timm backbone"):
        SiameseEmbedder("resnet_does_not_exist")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = create_timm_network(ARCH).eval()
    card = _card()
    save_model(tmp_path / "m", net, card)
    loaded_net, loaded_card = load_network(tmp_path / "m")
    assert loaded_card == json.loads((tmp_path / "m" / "model.json").read_text())
    assert loaded_card["fingerprint"] == card["fingerprint"] and len(card["fingerprint"]) == 16
    x = torch.randn(2, 1, 32, 48)
    torch.testing.assert_close(loaded_net(x), net(x))


def test_load_model_gives_an_embedder_with_card_preprocessing(tmp_path: Path, rng: np.random.Generator) -> None:
    save_model(tmp_path / "m", create_timm_network(ARCH).eval(), _card())
    model = verify.load_model(tmp_path / "m")
    assert (model.modality, model.dim) == ("signature", 16)
    crops = [rng.integers(0, 256, (32, 48), dtype=np.uint8) for _ in range(5)]
    emb = model.embed(crops)
    assert emb.shape == (5, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(model.embed_crops(crops, batch_size=2), emb, atol=1e-5)


def test_fp16_weights_stay_close(tmp_path: Path) -> None:
    net = create_timm_network(ARCH).eval()
    save_model(tmp_path / "m", net, _card(), dtype="float16")
    loaded, card = load_network(tmp_path / "m")
    assert card["weights"]["dtype"] == "float16"
    x = torch.randn(2, 1, 32, 48)
    cos = torch.nn.functional.cosine_similarity(loaded(x), net(x))
    assert bool((cos > 0.999).all())


def test_card_is_also_in_the_weights_header(tmp_path: Path) -> None:
    save_model(tmp_path / "m", create_timm_network(ARCH).eval(), _card())
    (tmp_path / "m" / "model.json").unlink()
    card = read_card(tmp_path / "m" / "model.safetensors")
    assert card["architecture"] == ARCH and card["input"]["width"] == 48


def test_weights_from_another_model_are_refused(tmp_path: Path) -> None:
    save_model(tmp_path / "a", create_timm_network(ARCH), _card())
    save_model(tmp_path / "b", create_timm_network(ARCH), _card())
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    with pytest.raises(ModelError, match="do not match the card"):
        verify.load_model(tmp_path / "a")


def test_card_that_does_not_fit_the_weights_is_refused(tmp_path: Path) -> None:
    save_model(tmp_path / "m", create_timm_network(ARCH), _card())
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    card["architecture"]["dim"] = 32
    (tmp_path / "m" / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not fit the architecture"):
        verify.load_model(tmp_path / "m")


def test_missing_and_corrupt_models_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model"):
        verify.load_model(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a valid JSON"):
        verify.load_model(tmp_path / "bad")


def test_crops_to_tensor_normalises_and_adapts_channels() -> None:
    card = _card()
    gray = np.full((32, 48), 255, np.uint8)
    x = crops_to_tensor([gray, np.zeros((32, 48, 3), np.uint8)], card)
    assert x.shape == (2, 1, 32, 48)
    torch.testing.assert_close(x[0], torch.ones(1, 32, 48))  # (1 - 0.5) / 0.5
    torch.testing.assert_close(x[1], -torch.ones(1, 32, 48))


def test_fingerprint_names_the_weights_not_the_card(tmp_path: Path) -> None:
    net = create_timm_network(ARCH).eval()
    a = save_model(tmp_path / "a", net, _card())
    card = _card()
    card["calibration"] = {"threshold": 0.5, "source": "recalibrated"}
    b = save_model(tmp_path / "b", net, card)
    assert read_card(a)["fingerprint"] == read_card(b)["fingerprint"]
    assert read_card(a)["weights"]["sha256"] != read_card(b)["weights"]["sha256"]  # the header card differs
    other = save_model(tmp_path / "c", create_timm_network(ARCH).eval(), _card())
    assert read_card(other)["fingerprint"] != read_card(a)["fingerprint"]
    (tmp_path / "b" / "model.json").unlink()
    assert read_card(tmp_path / "b")["fingerprint"] == read_card(a)["fingerprint"]  # header-only path agrees
