"""Identity-disjoint splits (writer-independent protocol): seeded, order-independent, saved as JSON.

Identities are ordered by sha256(seed, identity) and cut by the fractions, so the split does not depend on the
order of the input, and adding one identity moves at most a few others across a boundary.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from verify.data.sample import Sample
from verify.errors import ConfigError, DatasetError
from verify.fsutil import atomic_write_json

DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def split_identities(
    identities: Iterable[str], fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[str]]:
    """Partition identities into disjoint named parts.

    Args:
        identities: identity names (duplicates are fine: each identity goes to exactly one part).
        fractions: part name -> fraction, non-negative, summing to 1 (default train .7 / val .15 / test .15).
        seed: a different seed gives a different split; the same seed always the same one.

    Returns:
        part name -> sorted identities. Counts follow the fractions by largest remainder; every part with a
        positive fraction gets at least one identity when there are enough identities.
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    values = np.array(list(fractions.values()), dtype=float)
    if not fractions or (values < 0).any() or abs(values.sum() - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    ids = sorted(set(map(str, identities)), key=lambda s: hashlib.sha256(f"{seed}\0{s}".encode()).hexdigest())
    counts = _counts(len(ids), values)
    out, start = {}, 0
    for name, n in zip(fractions, counts, strict=True):
        out[name] = sorted(ids[start : start + n])
        start += n
    return out


def _counts(n: int, fractions: np.ndarray) -> list[int]:
    raw = fractions * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    for i in np.flatnonzero((fractions > 0) & (counts == 0)):  # borrow from the largest part
        j = int(np.argmax(counts))
        if counts[j] > 1:
            counts[j] -= 1
            counts[i] += 1
    return counts.tolist()


def split_fingerprint(split: Mapping[str, Sequence[str]]) -> str:
    """sha256 hex of the split with every part sorted (names and contents)."""
    canonical = json.dumps({k: sorted(map(str, v)) for k, v in sorted(split.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def split_samples(samples: Sequence[Sample], split: Mapping[str, Sequence[str]]) -> dict[str, list[Sample]]:
    """Group samples by the part their identity is in; identities in no part are left out."""
    part_of = {ident: name for name, ids in split.items() for ident in ids}
    out: dict[str, list[Sample]] = {name: [] for name in split}
    for s in samples:
        if s.identity in part_of:
            out[part_of[s.identity]].append(s)
    return out


def save_split(split: Mapping[str, Sequence[str]], path: str | os.PathLike[str]) -> str:
    """Write the split as JSON (atomically) with its fingerprint; returns the fingerprint."""
    _check_disjoint(split, str(path))
    fp = split_fingerprint(split)
    doc = {"version": 1, "fingerprint": fp, "splits": {k: sorted(map(str, v)) for k, v in split.items()}}
    atomic_write_json(path, doc, indent=1)
    return fp


def load_split(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a split saved by `save_split`, checking its layout, disjointness and fingerprint."""
    src = Path(path)
    try:
        doc = json.loads(src.read_text())
        split = {str(k): [str(x) for x in v] for k, v in doc["splits"].items()}
        stored = doc["fingerprint"]
    except FileNotFoundError:
        raise DatasetError(f"{src}: no such split file") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{src}: not a split file ({type(exc).__name__}: {exc})") from exc
    _check_disjoint(split, str(src))
    if split_fingerprint(split) != stored:
        raise DatasetError(f"{src}: contents do not match the stored fingerprint (edited by hand?)")
    return split


def _check_disjoint(split: Mapping[str, Sequence[str]], where: str) -> None:
    seen: dict[str, str] = {}
    for name, ids in split.items():
        for ident in ids:
            if ident in seen and seen[ident] != name:
                raise DatasetError(f"{where}: identity {ident!r} is in both {seen[ident]!r} and {name!r}")
            seen[ident] = name
