"""One meaning of `--modality auto`: `verify.models.defaults.resolve_modality` / `resolve_model`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from verify.errors import ConfigError
from verify.models.defaults import default_model_path, resolve_modality, resolve_model


def test_explicit_modality_wins_over_every_evidence() -> None:
    assert resolve_modality("Face", protocol="cedar", available=["signature"]) == "face"
    assert resolve_modality("signature", image=np.zeros((8, 8, 3), np.uint8)) == "signature"


def test_unknown_modality_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="face, signature or auto"):
        resolve_modality("voice")


@pytest.mark.parametrize(("protocol", "expected"), [("cedar", "signature"), ("GPDS", "signature"), ("lfw", "face")])
def test_auto_follows_the_protocol_first(protocol: str, expected: str) -> None:
    assert resolve_modality("auto", protocol=protocol, available=["face", "signature"]) == expected


def test_auto_takes_the_only_available_modality() -> None:
    assert resolve_modality(None, available=["signature"], default="face") == "signature"
    assert resolve_modality("auto", available=["face"]) == "face"


def test_auto_without_evidence_is_the_callers_default() -> None:
    assert resolve_modality("auto", available=["face", "signature"]) == "signature"
    assert resolve_modality("auto", available=["face", "signature"], default="face") == "face"


def test_auto_guesses_from_an_image_without_a_face() -> None:
    blank = np.full((64, 64, 3), 255, np.uint8)
    assert resolve_modality("auto", image=blank, available=["face", "signature"], default="face") == "signature"


def test_resolve_model_returns_a_named_model_as_given(tmp_path: Path) -> None:
    assert resolve_model(tmp_path, "face") == tmp_path
    assert resolve_model(None, "auto", protocol="cedar") == default_model_path("signature")
    assert resolve_model(None, "face") == default_model_path("face")
