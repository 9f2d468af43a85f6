"""The pipeline behind `verify eval`: dataset -> pairs -> embeddings (each image once) -> metrics + threshold.

Identities (writers) are split into a calibration part and a test part, disjoint and seeded: the threshold is
chosen on calibration identities and every reported number comes from test identities. Signature datasets give
three pair kinds: genuine (two genuine signatures of one writer), skilled (a genuine signature vs a skilled
forgery of it) and random (genuine vs genuine of another writer of the same part, subsampled). Face folders
give genuine and impostor pairs; LFW and CSV pair lists are used as listed.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from verify import metrics
from verify.calibration import (
    OperatingPoint,
    ScoreCalibrator,
    calibration_section,
    choose_threshold,
    fingerprint_split,
)
from verify.errors import DatasetError, VerifyError
from verify.models.base import Embedder

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


def embed_images(
    model: Embedder, paths: Sequence[Path], *, batch_size: int = 32, progress: bool = True
) -> tuple[np.ndarray, dict[int, str]]:
    """Embed each image once: same path once, same bytes under two paths once. Batched, with a progress bar.

    Returns:
        (embeddings [N, D] float32, NaN rows for images that failed; {index: error message}).
    """
    from verify.io import image_sha256, load_image, read_bytes

    emb = np.full((len(paths), model.dim), np.nan, np.float32)
    failures: dict[int, str] = {}
    first_of: dict[str, int] = {}
    alias: dict[int, int] = {}
    todo: list[int] = []
    crops: list[np.ndarray] = []
    with tqdm(total=len(paths), desc="embedding", unit="img", disable=not progress) as bar:
        for k, path in enumerate(paths):
            try:
                data = read_bytes(path)
                digest = image_sha256(data)
                if digest in first_of:
                    alias[k] = first_of[digest]
                    bar.update(1)
                    continue
                first_of[digest] = k
                crops.append(model.preprocess(load_image(data, mode="rgb", name=str(path))).image)
                todo.append(k)
            except VerifyError as exc:
                failures[k] = str(exc)
                bar.update(1)
            if len(crops) >= batch_size:
                emb[todo] = model.embed_crops(crops, batch_size=batch_size)
                bar.update(len(crops))
                todo, crops = [], []
        if crops:
            emb[todo] = model.embed_crops(crops, batch_size=batch_size)
            bar.update(len(crops))
    for k, j in alias.items():
        emb[k] = emb[j]
        if j in failures:
            failures[k] = failures[j]
    return emb, failures


def _scores_by_identity(table: pd.DataFrame, kind: str) -> dict[str, np.ndarray]:
    part = table[table["kind"] == kind]
    return {str(k): g["score"].to_numpy() for k, g in part.groupby("identity", sort=True)}


def _concat(by_id: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate(list(by_id.values())) if by_id else np.zeros(0)


def metric_block(
    genuine_by_id: dict[str, np.ndarray],
    impostor_by_id: dict[str, np.ndarray],
    threshold: float,
    fars: Sequence[float] = (1e-2, 1e-3),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """EER, AUC, TAR@FAR and the rates at ``threshold``, each with an identity-bootstrap 95% CI.

    Returns:
        metric name -> {"value", and where it applies "ci95" [low, high], "threshold", "note"}.
    """
    g, i = _concat(genuine_by_id), _concat(impostor_by_id)

    def summary(g_: np.ndarray, i_: np.ndarray) -> dict[str, float | None]:
        return {
            **metrics.roc_summary(g_, i_, fars),
            "far@threshold": float(np.mean(i_ >= threshold)),
            "frr@threshold": float(np.mean(g_ < threshold)),
            "accuracy@threshold": metrics.accuracy_at(g_, i_, threshold),
        }

    point = summary(g, i)
    cis = metrics.bootstrap_cis(genuine_by_id, impostor_by_id, summary, n=n_bootstrap, seed=seed)
    out: dict[str, dict[str, Any]] = {}
    for name, value in point.items():
        if name == "eer_threshold":
            continue
        entry: dict[str, Any] = {"value": value, "ci95": list(cis.get(name, (None, None))) if n_bootstrap > 0 else None}
        if name.startswith("tar@far="):
            far = float(name.split("=")[1])
            entry["threshold"] = metrics.tar_at_far(g, i, far)[1]
            if value is None:
                entry.update(ci95=None, note=f"{metrics.NOT_ENOUGH_IMPOSTORS}: {i.size} < {1 / far:.0f}")
        out[name] = entry
    out["eer"]["threshold"] = point["eer_threshold"]
    return out


def _threshold_impostors(pairs: pd.DataFrame) -> str:
    """The impostor kind a threshold is set against: skilled forgeries when there are any (the harder case)."""
    kinds = set(pairs["kind"])
    return next((k for k in ("skilled", "random", "impostor") if k in kinds), "impostor")


def _operating_point(
    cal: pd.DataFrame, model: Embedder, test: pd.DataFrame, target_far: float | str, split_fp: str
) -> tuple[float, dict[str, Any], OperatingPoint | None]:
    """The threshold: chosen on the calibration part, else the card's, else the test set's EER (flagged)."""
    impostor = _threshold_impostors(cal)
    g = cal.loc[cal["kind"] == "genuine", "score"].to_numpy()
    i = cal.loc[cal["kind"] == impostor, "score"].to_numpy()
    if g.size and i.size:
        n_ids = cal["identity"].nunique()
        source = f"chosen on {n_ids} calibration identities ({impostor} pairs), disjoint from the test identities"
        op = choose_threshold(g, i, target_far, split_fingerprint=split_fp, source=source)
        return op.threshold, {"value": op.threshold, "chosen_on": "calibration", **op.to_dict()}, op
    if model.threshold is not None:
        source = str((model.card.get("calibration") or {}).get("source", "model card"))
        return model.threshold, {"value": model.threshold, "chosen_on": "card", "source": source}, None
    kind = _threshold_impostors(test)
    _, thr = metrics.eer(test.loc[test["kind"] == "genuine", "score"], test.loc[test["kind"] == kind, "score"])
    note = "EER threshold of the test pairs themselves: no calibration part and no card threshold (optimistic)"
    return thr, {"value": thr, "chosen_on": "test", "source": note}, None


def _prepare(data: Any, calibration_fraction: float, seed: int, **kw: Any) -> tuple[list[Path], pd.DataFrame, dict]:
    """Any evaluation set -> (paths, pairs table, data/split info)."""
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


def _signature_section(test: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """FRR / FAR_skilled / FAR_random at the threshold; EER with global and per-writer thresholds."""
    score = {k: test.loc[test["kind"] == k, "score"].to_numpy() for k in ("genuine", "skilled", "random")}
    out: dict[str, Any] = {"errors_at_threshold": metrics.signature_errors(**score, threshold=threshold)}
    genuine = _scores_by_identity(test, "genuine")
    for kind in ("skilled", "random"):
        forged = _scores_by_identity(test, kind)
        if any(w in genuine for w in forged):
            out[f"writers_{kind}"] = metrics.signature_eer(genuine, forged)
    return out


def evaluate(
    model: Embedder,
    data: Any,
    *,
    batch_size: int = 32,
    seed: int = 0,
    calibration_fraction: float = 0.5,
    target_far: float | str = 1e-2,
    fars: Sequence[float] = (1e-2, 1e-3),
    calibrator: str | None = "platt",
    n_bootstrap: int = 1000,
    progress: bool = True,
    **pair_options: Any,
) -> dict[str, Any]:
    """Evaluate a model on a dataset: each distinct image embedded once, threshold chosen on calibration data.

    Args:
        model: the embedder (scores are dot products of its L2-normalised embeddings).
        data: list of `Sample` (signature dataset or identity folders), `LfwPairs`, or a pairs DataFrame
            (`read_pairs_csv`); see `load_eval_data`.
        batch_size: embedding batch size.
        seed: seeds the calibration/test split, pair subsampling and the bootstrap.
        calibration_fraction: share of identities (or LFW folds, or CSV reference images) for calibration.
        target_far: the threshold's target on the calibration part: a FAR, or "eer".
        fars: FAR levels for TAR@FAR.
        calibrator: "platt", "isotonic" or None: the score -> p(match) model fitted on the calibration part.
        n_bootstrap: identity-bootstrap replicates for the 95% CIs (0: none).
        progress: show a tqdm progress bar on stderr.
        **pair_options: `max_pairs_per_identity`, `impostors_per_identity` for sample datasets.

    Returns:
        JSON-ready results (model, data, split, sizes, threshold, metrics per impostor kind, signature / kfold
        sections, calibration section, timing) plus "scores": {kind: test-part scores [P]} for plots.
    """
    paths, table, info = _prepare(data, calibration_fraction, seed, **pair_options)
    start = time.perf_counter()
    emb, failures = embed_images(model, paths, batch_size=batch_size, progress=progress)
    embed_s = time.perf_counter() - start
    bad = table["a"].isin(failures) | table["b"].isin(failures)
    table = table[~bad].copy()
    emb64 = emb.astype(np.float64)  # float64 scores: thresholds compare exactly, whatever the model's dtype
    table["score"] = np.einsum("nd,nd->n", emb64[table["a"].to_numpy()], emb64[table["b"].to_numpy()])
    cal, test = table[table["split"] == "calibration"], table[table["split"] == "test"]
    kinds = [k for k in ("impostor", "skilled", "random") if (test["kind"] == k).any()]
    n_genuine = int((test["kind"] == "genuine").sum())
    if n_genuine == 0 or not kinds:
        raise DatasetError(
            f"the test part has {n_genuine} genuine and {len(test) - n_genuine} impostor pairs after dropping "
            f"{int(bad.sum())} pairs with failed images; both kinds are needed (more identities or images?)"
        )
    split_fp = fingerprint_split(cal["identity"].unique())
    threshold, thr_info, op = _operating_point(cal, model, test, target_far, split_fp)
    genuine = _scores_by_identity(test, "genuine")
    results: dict[str, Any] = {
        "model": {k: model.card.get(k) for k in ("name", "modality", "fingerprint")},
        "data": {**info, "images": len(paths), "failed_images": len(failures), "pairs_dropped": int(bad.sum())},
        "failures": {str(paths[k]): msg for k, msg in sorted(failures.items())},
        "sizes": {k: int((test["kind"] == k).sum()) for k in ("genuine", *kinds)},
        "calibration_sizes": {k: int(n) for k, n in cal["kind"].value_counts().sort_index().items()},
        "threshold": thr_info,
        "metrics": {
            k: metric_block(genuine, _scores_by_identity(test, k), threshold, fars, n_bootstrap, seed) for k in kinds
        },
    }
    if info["kind"] == "signatures":
        results["signature"] = _signature_section(test, threshold)
    if (table["fold"] >= 0).any() and table["fold"].nunique() >= 2:
        mean, std, thresholds = metrics.kfold_accuracy(table["score"], table["kind"] == "genuine", table["fold"])
        results["kfold"] = {"accuracy": mean, "std": std, "folds": len(thresholds), "thresholds": thresholds}
    if op is not None:
        results["calibration"] = calibration_section(op, _fit_calibrator(cal, calibrator))
    n_embedded = len(paths) - len(failures)
    results["timing"] = {"embed_s": embed_s, "images_per_s": n_embedded / embed_s if embed_s > 0 else None}
    results["scores"] = {k: test.loc[test["kind"] == k, "score"].to_numpy() for k in ("genuine", *kinds)}
    return results


def _fit_calibrator(cal: pd.DataFrame, method: str | None) -> ScoreCalibrator | None:
    """Fit p(match) on the calibration pairs the threshold was chosen on (genuine vs the same impostor kind)."""
    if method is None:
        return None
    genuine = cal.loc[cal["kind"] == "genuine", "score"]
    return ScoreCalibrator(method).fit(genuine, cal.loc[cal["kind"] == _threshold_impostors(cal), "score"])
