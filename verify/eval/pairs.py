"""Evaluation sets and their pairs, as `verify.eval.run.evaluate` uses them (names re-exported there).

Identities (writers) are split into a calibration part and a test part, disjoint and seeded. Signature datasets
give three pair kinds: genuine (two genuine signatures of one writer), skilled (a genuine signature vs a skilled
forgery of it) and random (genuine vs genuine of another writer of the same part, subsampled). Face folders
give genuine and impostor pairs; LFW and CSV pair lists are used as listed, split by fold or by group.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from verify.errors import DatasetError

PAIR_COLUMNS = ["a", "b", "kind", "identity", "split", "fold"]


def load_eval_data(
    protocol: str,
    data_dir: str | os.PathLike[str] | None = None,
    pairs: str | os.PathLike[str] | None = None,
    images: str | os.PathLike[str] | None = None,
) -> Any:
    """Read an evaluation set: a list of `Sample`s, `LfwPairs` or a pairs DataFrame, as `evaluate` takes.

    Args:
        protocol: cedar | gpds | mcyt | bhsig | manifest | folders (with ``data_dir``), lfw (with ``pairs`` and
            ``images``) or csv (with ``pairs``).
    """
    if protocol == "lfw":
        from verify.data.lfw import read_lfw_pairs

        if pairs is None or images is None:
            raise DatasetError("the lfw protocol needs a pairs.txt file and the images folder")
        return read_lfw_pairs(pairs, images)
    if protocol == "csv":
        from verify.data.pairs_csv import read_pairs_csv

        if pairs is None:
            raise DatasetError("the csv protocol needs a pairs CSV (path_a,path_b,label)")
        return read_pairs_csv(pairs, images)
    if data_dir is None:
        raise DatasetError(f"the {protocol} protocol needs a dataset folder")
    if protocol == "folders":
        from verify.data.folders import load_identity_folders

        return load_identity_folders(data_dir)
    from verify.data.signatures import load_signature_dataset

    return load_signature_dataset(data_dir, protocol)


def _split(keys: Sequence[str], fraction: float, seed: int, minimum: int) -> dict[str, list[str]]:
    """Seeded disjoint calibration/test parts of the distinct keys; all test when too few keys."""
    from verify.data.splits import split_identities

    distinct = sorted(set(keys))
    if fraction <= 0 or len(distinct) < minimum:
        return {"calibration": [], "test": distinct}
    return split_identities(distinct, {"calibration": fraction, "test": 1 - fraction}, seed)


def _within(idx: Sequence[int], cap: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    pairs = list(itertools.combinations(idx, 2))
    if len(pairs) > cap:
        pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), cap, replace=False))]
    return pairs


def _across(own: Sequence[int], others: Sequence[int], n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    total = len(own) * len(others)
    picks = range(total) if total <= n else sorted(rng.choice(total, n, replace=False))
    return [(own[k // len(others)], others[k % len(others)]) for k in picks]


def _identity_pairs(
    samples: Sequence[Any], index: dict[Path, int], split: str, cap: int, n_impostor: int | None, seed: int
) -> list[tuple[int, int, str, str, str, int]]:
    """Pairs of one split part: genuine, skilled (if forgeries exist) and impostor/random pairs."""
    rng = np.random.default_rng(seed)
    genuine: dict[str, list[int]] = {}
    forged: dict[str, list[int]] = {}
    for s in samples:
        (forged if s.kind != "genuine" else genuine).setdefault(s.identity, []).append(index[Path(s.path)])
    other_kind = "random" if forged else "impostor"
    names = sorted(genuine)
    flat = np.array([k for name in names for k in genuine[name]], dtype=np.int64)
    owner = np.repeat(np.arange(len(names)), [len(genuine[name]) for name in names])
    rows, seen = [], set()
    for j, ident in enumerate(names):
        own = genuine[ident]
        gen = _within(own, cap, rng)
        rows += [(a, b, "genuine", ident, split, -1) for a, b in gen]
        rows += [(a, b, "skilled", ident, split, -1) for a, b in _across(own, forged.get(ident, []), cap, rng)]
        others = flat[owner != j].tolist()
        for a, b in _across(own, others, n_impostor or max(len(gen), 50), rng):
            if (b, a) not in seen:
                seen.add((a, b))
                rows.append((a, b, other_kind, ident, split, -1))
    return rows


def sample_pairs(
    samples: Sequence[Any],
    *,
    calibration_fraction: float = 0.5,
    seed: int = 0,
    max_pairs_per_identity: int = 300,
    impostors_per_identity: int | None = None,
) -> tuple[list[Path], pd.DataFrame, dict[str, Any]]:
    """Split identities into calibration/test parts and build the pairs of each part.

    Args:
        samples: `Sample`s (path, identity, kind "genuine" | "skilled").
        calibration_fraction: share of identities used to choose the threshold; 0 keeps all for testing.
        seed: seeds the split and the subsampling.
        max_pairs_per_identity: cap on genuine and on skilled pairs per identity (subsampled above it).
        impostors_per_identity: impostor/random pairs per identity (default: its genuine pair count, >= 50).

    Returns:
        (distinct image paths [N], pairs table with columns `PAIR_COLUMNS` (a, b index the paths), split info).
    """
    from verify.data.splits import split_fingerprint

    if not samples:
        raise DatasetError("the evaluation set is empty")
    paths = sorted({Path(s.path) for s in samples})
    index = {p: k for k, p in enumerate(paths)}
    identities = sorted({s.identity for s in samples if s.kind == "genuine"})
    parts = _split(identities, calibration_fraction, seed, minimum=4)
    rows = []
    for k, (name, ids) in enumerate(parts.items()):
        members = set(ids)
        part = [s for s in samples if s.identity in members]
        rows += _identity_pairs(part, index, name, max_pairs_per_identity, impostors_per_identity, seed + k)
    info = {
        "by": "identity",
        "seed": seed,
        "calibration_identities": len(parts["calibration"]),
        "test_identities": len(parts["test"]),
        "fingerprint": split_fingerprint(parts)[:16],
    }
    return paths, pd.DataFrame(rows, columns=PAIR_COLUMNS), info


def score_table(table: pd.DataFrame, emb: np.ndarray) -> pd.DataFrame:
    """A copy of a pairs table with a "score" column: the dot product of rows `a` and `b` of `emb` [N, D].

    Scores are computed in float64 (thresholds then compare exactly, whatever the model's dtype); for
    L2-normalised embeddings they are cosine similarities.
    """
    emb64 = np.asarray(emb, dtype=np.float64)
    out = table.copy()
    out["score"] = np.einsum("nd,nd->n", emb64[out["a"].to_numpy()], emb64[out["b"].to_numpy()])
    return out


def scored_sample_pairs(
    samples: Sequence[Any], emb: np.ndarray, *, seed: int = 0, calibration_fraction: float = 0.0, **pair_options: Any
) -> pd.DataFrame:
    """The pairs `verify eval` draws from `samples` (`sample_pairs`), scored with embeddings already computed.

    Training validation uses this, so its EER is that of `verify eval --calibration-fraction 0` on the same images.

    Args:
        samples: `Sample`s [N] (path, identity, kind).
        emb: [N, D] the embedding of each sample, in the order of `samples`.
        seed, calibration_fraction, **pair_options: as `sample_pairs`.

    Returns:
        The pairs table (columns `PAIR_COLUMNS` + "score").
    """
    if len(samples) != len(emb):
        raise DatasetError(f"{len(samples)} samples but {len(emb)} embeddings; give one embedding per sample")
    paths, table, _ = sample_pairs(samples, calibration_fraction=calibration_fraction, seed=seed, **pair_options)
    index = {p: k for k, p in enumerate(paths)}
    by_path = np.zeros((len(paths), np.shape(emb)[1]), np.float64)
    by_path[[index[Path(s.path)] for s in samples]] = emb
    return score_table(table, by_path)


def listed_pairs(
    path_a: Sequence[Path],
    path_b: Sequence[Path],
    same: Sequence[bool],
    groups: Sequence[str],
    folds: Sequence[int] | None = None,
    *,
    calibration_fraction: float = 0.5,
    seed: int = 0,
) -> tuple[list[Path], pd.DataFrame, dict[str, Any]]:
    """Pairs given as a list (LFW, CSV): split by fold when there are >= 2 folds, else by group.

    Args:
        path_a, path_b: the two images of each pair [P].
        same: [P] True for same-identity pairs.
        groups: [P] the identity each pair is attributed to (bootstrap and split unit): e.g. its first image's
            person.
        folds: [P] fold index (LFW), or None.
    """
    fold = np.asarray(folds if folds is not None else [-1] * len(path_a))
    use_folds = len(set(fold.tolist())) >= 2
    keys = [str(f) for f in fold] if use_folds else [str(g) for g in groups]
    parts = _split(keys, calibration_fraction, seed, minimum=2)
    part_of = {k: name for name, ks in parts.items() for k in ks}
    paths = sorted({Path(p) for p in [*path_a, *path_b]})
    index = {p: k for k, p in enumerate(paths)}
    table = pd.DataFrame(
        {
            "a": [index[Path(p)] for p in path_a],
            "b": [index[Path(p)] for p in path_b],
            "kind": ["genuine" if s else "impostor" for s in same],
            "identity": [str(g) for g in groups],
            "split": [part_of[k] for k in keys],
            "fold": fold.astype(int),
        }
    )
    info = {"by": "fold" if use_folds else "group", "seed": seed, "calibration_groups": len(parts["calibration"])}
    info["test_groups"] = len(parts["test"])
    return paths, table, info


def prepare_pairs(
    data: Any, calibration_fraction: float, seed: int, **kw: Any
) -> tuple[list[Path], pd.DataFrame, dict]:
    """Any evaluation set (as `load_eval_data` returns) -> (distinct image paths [N], pairs table with columns
    `PAIR_COLUMNS`, data/split info)."""
    if hasattr(data, "pairs") and hasattr(data, "n_folds"):  # LfwPairs
        ok = [p for p in data.pairs if not p.missing]
        if not ok:
            raise DatasetError(f"none of the {len(data.pairs)} LFW pairs has both images on disk")
        paths, table, info = listed_pairs(
            [p.path_a for p in ok], [p.path_b for p in ok], [p.same for p in ok],
            [p.path_a.parent.name for p in ok], [p.fold for p in ok],
            calibration_fraction=calibration_fraction, seed=seed,
        )  # fmt: skip
        info.update(kind="lfw", pairs_missing_images=len(data.pairs) - len(ok), missing=[str(m) for m in data.missing])
        return paths, table, info
    if isinstance(data, pd.DataFrame):
        labelled = data[data["label"].notna()] if "label" in data else data.iloc[:0]
        if labelled.empty:
            raise DatasetError("the pairs CSV has no labelled rows: add a label column (1 same, 0 different)")
        paths, table, info = listed_pairs(
            list(labelled["path_a"]), list(labelled["path_b"]), list(labelled["label"].astype(int) == 1),
            [str(p) for p in labelled["path_a"]], None, calibration_fraction=calibration_fraction, seed=seed,
        )  # fmt: skip
        info.update(kind="pairs_csv", unlabelled_pairs=int(len(data) - len(labelled)))
        return paths, table, info
    samples = list(data)
    paths, table, info = sample_pairs(samples, calibration_fraction=calibration_fraction, seed=seed, **kw)
    info["kind"] = "signatures" if any(s.kind != "genuine" for s in samples) else "identities"
    return paths, table, info
