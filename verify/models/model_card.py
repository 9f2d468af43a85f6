"""`ModelCard`: the typed, validated, versioned model card (`model.json`).

The card holds everything needed to rebuild and use a model: architecture, input size and normalisation,
preprocessing, and optional sections (training, data, metrics, calibration, ood, weights, fingerprint, ...).
`ModelCard.from_dict` validates a card read from disk and upgrades older versions; `to_dict` gives the JSON
object back, keys in their original order, so reading and writing a card changes nothing.

Item access (``card["input"]["height"]``, ``card.get("calibration")``, ``card["ood"] = ...``) still works: a
card is a `MutableMapping` over its JSON keys, and the sections it returns are the card's own dicts, so code
and tools written against plain-dict cards keep working.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from verify.errors import ModelError
from verify.modality import MODALITIES, Modality

CARD_FORMAT = "siamese-verify/model-card"
CARD_VERSION = 1  # cards without a version (0) are read as version 1 with the defaults filled in

# The typed fields, in the order they are written; every other top-level key is an optional section.
_FIELDS = ("format", "version", "name", "modality", "architecture", "input", "preprocessing")


@dataclass(eq=False)
class ModelCard(MutableMapping[str, Any]):
    """A model card.

    Attributes:
        name: the model's name (shown in the UI, reports and galleries).
        modality: "face" or "signature".
        architecture: how to rebuild the network (``kind``, ``backbone``, ``dim``, ...).
        input: the network input: ``height``, ``width``, ``channels``, ``mean``, ``std``.
        preprocessing: how an image becomes a crop (``kind``: resize, face, signature, ...); None: resize.
        format: always `CARD_FORMAT`.
        version: the card version it was written with (`CARD_VERSION` after `from_dict`).
        sections: every other top-level key (training, data, metrics, calibration, ood, weights, fingerprint,
            export, provenance, ...), in file order.
    """

    name: str
    modality: Modality
    architecture: dict[str, Any]
    input: dict[str, Any]
    preprocessing: dict[str, Any] | None = None
    format: str = CARD_FORMAT
    version: int = CARD_VERSION
    sections: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # --- reading and writing -----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "model card") -> ModelCard:
        """A validated card from its JSON object (a deep copy); older versions are upgraded.

        Raises:
            ModelError: naming `source` and the field at fault.
        """
        if isinstance(data, ModelCard):
            return copy.deepcopy(data)
        if not isinstance(data, Mapping):
            raise ModelError(f"{source}: a model card is a JSON object, not {type(data).__name__}")
        plain: dict[str, Any] = copy.deepcopy(dict(data))
        if plain.get("format") != CARD_FORMAT:
            raise ModelError(f"{source}: not a siamese-verify model card (format={plain.get('format')!r})")
        try:
            version = int(plain.get("version", 0))
        except (TypeError, ValueError):
            raise ModelError(f"{source}: card version {plain.get('version')!r} is not a number") from None
        if version > CARD_VERSION:
            raise ModelError(f"{source}: card version {version} is newer than this code supports ({CARD_VERSION})")
        plain = _upgrade(plain, version)
        for key in ("name", "modality", "architecture", "input"):
            if key not in plain:
                raise ModelError(f"{source}: the card has no {key!r}")
        sections = {k: v for k, v in plain.items() if k not in _FIELDS}
        try:
            return cls(
                name=str(plain["name"]),
                modality=plain["modality"],
                architecture=plain["architecture"],
                input=plain["input"],
                preprocessing=plain.get("preprocessing"),
                format=CARD_FORMAT,
                version=CARD_VERSION,
                sections=sections,
            )
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None

    @classmethod
    def coerce(cls, card: Mapping[str, Any]) -> ModelCard:
        """`card` itself when it is a `ModelCard` (no copy), else `from_dict(card)`."""
        return card if isinstance(card, ModelCard) else cls.from_dict(card)

    def to_dict(self) -> dict[str, Any]:
        """The card as a plain JSON object (a deep copy), keys in the order they were read."""
        return copy.deepcopy(dict(self.items()))

    def validate(self) -> None:
        """Check the typed fields; raises `ModelError` naming the bad one."""
        if self.modality not in MODALITIES:
            raise ModelError(f"modality must be 'face' or 'signature', got {self.modality!r}")
        if not isinstance(self.architecture, dict):
            raise ModelError("the card's architecture must be an object")
        if not isinstance(self.input, dict):
            raise ModelError("the card's input must be an object")
        for key in ("height", "width", "channels"):
            value = self.input.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"the card's input.{key} must be a positive integer, got {value!r}")
        if self.preprocessing is not None and not isinstance(self.preprocessing, dict):
            raise ModelError("the card's preprocessing must be an object")

    # --- typed access ------------------------------------------------------------------------------------

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return int(self.input["height"]), int(self.input["width"])

    @property
    def channels(self) -> int:
        return int(self.input["channels"])

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.architecture["dim"])

    @property
    def fingerprint(self) -> str | None:
        value = self.sections.get("fingerprint")
        return None if value is None else str(value)

    @property
    def threshold(self) -> float | None:
        """The calibrated similarity threshold, if any."""
        value = (self.sections.get("calibration") or {}).get("threshold")
        return None if value is None else float(value)

    # --- the mapping over JSON keys (compatibility with plain-dict cards) --------------------------------

    def __getitem__(self, key: str) -> Any:
        if key in _FIELDS:
            value = getattr(self, key)
            if value is None:
                raise KeyError(key)
            return value
        return self.sections[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in ("format", "version"):
            raise ModelError(f"a card's {key!r} is set when it is read, not by hand")
        if key in _FIELDS:
            setattr(self, key, value)
            self.validate()
        else:
            self.sections[key] = value

    def __delitem__(self, key: str) -> None:
        if key == "preprocessing" and self.preprocessing is not None:
            self.preprocessing = None
        elif key in _FIELDS:
            raise ModelError(f"a card's {key!r} cannot be removed")
        else:
            del self.sections[key]

    def __iter__(self) -> Iterator[str]:
        yield from (k for k in _FIELDS if getattr(self, k) is not None)
        yield from self.sections

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"ModelCard(name={self.name!r}, modality={self.modality!r}, sections={list(self.sections)})"


def _upgrade(data: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring a card of an older version to `CARD_VERSION`."""
    if version < 1:  # version 0 (no "version" key): the normalisation defaulted to 0.5 / 0.5
        section = data.get("input")
        if isinstance(section, dict) and isinstance(section.get("channels"), int):
            section.setdefault("mean", [0.5] * section["channels"])
            section.setdefault("std", [0.5] * section["channels"])
    data["version"] = CARD_VERSION
    return data


def card_to_dict(card: Mapping[str, Any]) -> dict[str, Any]:
    """A plain JSON object for a `ModelCard` or a plain-dict card."""
    return card.to_dict() if isinstance(card, ModelCard) else copy.deepcopy(dict(card))
