"""The config layer refuses values it would have to change: no silent truncation or type juggling."""

from __future__ import annotations

import pytest

from training.config import cast_value, load_config
from training.distill import create_distill_config
from verify.errors import ConfigError


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs=2.7", "epochs must be an integer, got 2.7"),
        ("p=3.9", "p must be an integer, got 3.9"),
        ("lr=fast", "lr must be a float, got 'fast'"),
        ("lr=.nan", "lr must be a float"),
        ("augment=1", "augment must be true or false, got 1"),
        ("loss_params=3", "loss_params must be a mapping"),
        ("backbone=[1, 2]", "backbone must be a string"),
    ],
)
def test_wrong_types_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_lossless_values_are_cast() -> None:
    config = load_config(overrides=["epochs=3.0", "p='6'", "lr=1e-3", "weight_decay=0", "name=123"])
    assert (config.epochs, config.p, config.lr, config.weight_decay, config.name) == (3, 6, 0.001, 0.0, "123")
    assert isinstance(config.epochs, int) and isinstance(config.weight_decay, float)
    assert load_config(overrides=["pretrained_file=null"]).pretrained_file is None


def test_cast_value_kinds() -> None:
    assert cast_value("x", "int | None", None) is None
    assert cast_value("x", "int | None", "4") == 4
    with pytest.raises(ConfigError, match="x must be an integer"):
        cast_value("x", "int", True)


def test_distill_config_uses_the_same_caster() -> None:
    with pytest.raises(ConfigError, match="temperature must be a float"):
        create_distill_config({"temperature": "hot"})
    assert create_distill_config({"temperature": 4}).temperature == 4.0
