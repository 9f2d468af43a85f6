"""Names to sign, and the layout a writer signs them in (full name, initial + surname, initials, ...).

The name list (`names.json`, shipped with the package) holds given and family names of varied origins in plain
ASCII spellings, so that every letter has a Hershey glyph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

Layout = Literal["full", "initial_surname", "surname", "initials", "given_initial"]
LAYOUTS: tuple[Layout, ...] = ("full", "initial_surname", "surname", "initials", "given_initial")
_LAYOUT_P = (0.3, 0.3, 0.2, 0.1, 0.1)
_NAMES = Path(__file__).with_name("names.json")


@dataclass(frozen=True)
class PersonName:
    """A given name and a family name (either may contain spaces, e.g. "van der Berg")."""

    given: str
    family: str


@lru_cache(maxsize=1)
def name_lists() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(given names, family names) from the shipped list."""
    data = json.loads(_NAMES.read_text(encoding="utf-8"))
    return tuple(data["given"]), tuple(data["family"])


def sample_name(rng: np.random.Generator) -> PersonName:
    """A random person: one given name (sometimes two) and one family name."""
    given, family = name_lists()
    first = str(given[rng.integers(len(given))])
    if rng.random() < 0.12:
        first += " " + str(given[rng.integers(len(given))])
    return PersonName(given=first, family=str(family[rng.integers(len(family))]))


def sample_layout(rng: np.random.Generator) -> Layout:
    """How a writer lays out their signature, with rough frequencies of Western signatures."""
    return LAYOUTS[int(rng.choice(len(LAYOUTS), p=_LAYOUT_P))]


def _initial(part: str, dot: bool) -> str:
    return part[0].upper() + ("." if dot else "")


def signed_words(name: PersonName, layout: Layout, dots: bool) -> list[str]:
    """The words a writer signs, e.g. ["A.", "Koene"], ["Thomas", "Koehuijsen"], ["JB"].

    Args:
        name: the person.
        layout: which parts are written out and which as initials.
        dots: write a full stop after each initial.
    """
    family_words = name.family.split()
    given_words = name.given.split()
    if layout == "full":
        return [given_words[0], *family_words]
    if layout == "initial_surname":
        return ["".join(_initial(g, dots) for g in given_words), *family_words]
    if layout == "surname":
        return family_words
    if layout == "initials":
        return ["".join(_initial(p, dots) for p in [*given_words, family_words[-1]])]
    return [given_words[0], _initial(family_words[-1], dots)]  # given_initial
