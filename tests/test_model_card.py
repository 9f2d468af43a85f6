"""`ModelCard`: typed, validated and versioned, with the item access of plain-dict cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verify.errors import ModelError
from verify.models.card import read_card, write_card
from verify.models.defaults import assets_dir
from verify.models.model_card import CARD_VERSION, ModelCard, card_to_dict

BUNDLED = sorted(p.parent for p in (assets_dir() / "models").glob("*/model.json"))


def _minimal(**over: object) -> dict:
    card = {
        "format": "siamese-verify/model-card",
        "version": 1,
        "name": "tiny",
        "modality": "signature",
        "architecture": {"kind": "timm", "backbone": "resnet18", "dim": 8},
        "input": {"height": 32, "width": 64, "channels": 1, "mean": [0.5], "std": [0.5]},
        "preprocessing": {"kind": "signature"},
        "calibration": {"threshold": 0.25},
        "fingerprint": "0123456789abcdef",
    }
    card.update(over)
    return card


@pytest.mark.parametrize("directory", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_cards_read_and_write_back_unchanged(directory: Path, tmp_path: Path) -> None:
    on_disk = json.loads((directory / "model.json").read_text())
    card = read_card(directory)
    assert isinstance(card, ModelCard)
    assert card.to_dict() == on_disk
    assert list(card.to_dict()) == list(on_disk)  # key order kept
    write_card(tmp_path, card)
    assert json.loads((tmp_path / "model.json").read_text()) == on_disk


def test_typed_fields_and_dict_style_access_agree() -> None:
    card = ModelCard.from_dict(_minimal())
    assert card.input_size == (32, 64) and card.channels == 1 and card.dim == 8
    assert card.threshold == 0.25 and card.fingerprint == "0123456789abcdef"
    # the access an external tool uses on `load_model(...).card`
    assert card["input"].get("channels", 3) == 1
    assert card["modality"] == "signature" and "calibration" in card and "ood" not in card
    assert card.get("ood") is None


def test_item_assignment_changes_the_card() -> None:
    card = ModelCard.from_dict(_minimal())
    card["calibration"]["threshold"] = 0.5
    card["ood"] = {"file": "ood.safetensors"}
    assert card.threshold == 0.5 and card.to_dict()["ood"] == {"file": "ood.safetensors"}
    with pytest.raises(ModelError, match="modality"):
        card["modality"] = "voice"


def test_an_unversioned_card_is_upgraded() -> None:
    old = _minimal()
    del old["version"]
    del old["input"]["mean"], old["input"]["std"]
    card = ModelCard.from_dict(old)
    assert card.version == CARD_VERSION
    assert card["input"]["mean"] == [0.5] and card["input"]["std"] == [0.5]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "not a siamese-verify model card"),
        ({"version": CARD_VERSION + 1}, "newer than this code supports"),
        ({"modality": "voice"}, "modality must be"),
        ({"input": {"height": "32", "width": 64, "channels": 1}}, r"input\.height must be a positive integer"),
        ({"input": {"height": 32, "width": 0, "channels": 1}}, r"input\.width must be a positive integer"),
        ({"architecture": [1, 2]}, "architecture must be an object"),
    ],
)
def test_invalid_cards_are_refused_with_the_field_named(change: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        ModelCard.from_dict(_minimal(**change), source="model.json")


def test_a_missing_required_section_is_named() -> None:
    card = _minimal()
    del card["architecture"]
    with pytest.raises(ModelError, match="no 'architecture'"):
        ModelCard.from_dict(card)


def test_card_to_dict_takes_both_kinds() -> None:
    plain = _minimal()
    assert card_to_dict(plain) == plain and card_to_dict(ModelCard.from_dict(plain)) == plain
