"""The pipeline behind `verify eval`: dataset -> pairs -> embeddings (each image once) -> metrics + threshold.

Identities (writers) are split into a calibration part and a test part, disjoint and seeded (pairs are built by
`verify.eval.pairs`, whose names are re-exported here): the threshold is chosen on calibration identities
and every reported number comes from test identities.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from verify.errors import DatasetError, VerifyError
from verify.eval import metrics
from verify.eval.calibration import (
    OperatingPoint,
    ScoreCalibrator,
    calibration_section,
    choose_threshold,
    fingerprint_split,
)
from verify.eval.pairs import (  # noqa: F401 - re-exported: callers import them from here
    PAIR_COLUMNS,
    listed_pairs,
    load_eval_data,
    prepare_pairs,
    sample_pairs,
    score_table,
)
from verify.models.base import Embedder


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
    paths, table, info = prepare_pairs(data, calibration_fraction, seed, **pair_options)
    start = time.perf_counter()
    emb, failures = embed_images(model, paths, batch_size=batch_size, progress=progress)
    embed_s = time.perf_counter() - start
    bad = table["a"].isin(failures) | table["b"].isin(failures)
    table = score_table(table[~bad], emb)
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
