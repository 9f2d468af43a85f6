"""ROC-based verification metrics on similarity scores (larger = more alike): ROC, DET, AUC, EER, TAR@FAR,
accuracy and LFW-style k-fold accuracy.

Plain functions on numpy arrays. ``genuine`` holds scores of same-identity pairs, ``impostor`` of
different-identity pairs; a pair is accepted when ``score >= threshold``. ROC points come from
`sklearn.metrics.roc_curve`; EER interpolation, FAR-targeted thresholds and k-fold accuracy are written here.
Import these through `verify.eval.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

NOT_ENOUGH_IMPOSTORS = "not enough impostor pairs"


def _scores(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(genuine, dtype=np.float64).ravel()
    i = np.asarray(impostor, dtype=np.float64).ravel()
    if g.size == 0 or i.size == 0:
        raise ValueError(f"need genuine and impostor scores, got {g.size} genuine and {i.size} impostor")
    if not (np.isfinite(g).all() and np.isfinite(i).all()):
        raise ValueError("scores must be finite (found NaN or inf)")
    return g, i


def _labelled(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    g, i = _scores(genuine, impostor)
    labels = np.concatenate([np.ones(g.size, np.int8), np.zeros(i.size, np.int8)])
    return labels, np.concatenate([g, i])


def roc(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve, every threshold kept.

    Returns:
        (far, tar, thresholds), each [T], thresholds decreasing; thresholds[0] is +inf (accept nothing).
    """
    from sklearn.metrics import roc_curve  # here: loading a model imports this module, and needs no ROC

    labels, scores = _labelled(genuine, impostor)
    far, tar, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    return far, tar, thresholds


def det(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET curve: (far, frr, thresholds), each [T], as `roc` with frr = 1 - tar."""
    far, tar, thresholds = roc(genuine, impostor)
    return far, 1.0 - tar, thresholds


def auc(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """Area under the ROC curve: P(genuine score > impostor score), ties counting half."""
    from sklearn.metrics import roc_auc_score

    labels, scores = _labelled(genuine, impostor)
    return float(roc_auc_score(labels, scores))


def eer(genuine: ArrayLike, impostor: ArrayLike) -> tuple[float, float]:
    """Equal error rate, linearly interpolated between the ROC points where FAR and FRR cross.

    Returns:
        (eer, threshold): the rate where FAR == FRR and the similarity threshold interpolated there.
    """
    return _eer_from_roc(*roc(genuine, impostor))


def _eer_from_roc(far: np.ndarray, tar: np.ndarray, thr: np.ndarray) -> tuple[float, float]:
    diff = far - (1.0 - tar)  # FAR - FRR: non-decreasing from -1 (threshold +inf) to +1 (lowest threshold)
    k = int(np.argmax(diff >= 0))  # >= 1: the first point (threshold +inf) has diff -1
    if diff[k] == 0:
        return float(far[k]), float(thr[k])
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    rate = far[k - 1] + t * (far[k] - far[k - 1])
    hi = thr[k - 1] if np.isfinite(thr[k - 1]) else thr[k]
    return float(rate), float(hi + t * (thr[k] - hi))


def has_enough_impostors(n_impostor: int, far: float) -> bool:
    """True when ``n_impostor`` pairs can measure a FAR of ``far`` (at least ~1/far pairs)."""
    return n_impostor >= math.ceil(1.0 / far - 1e-9)


def just_above(score: float) -> float:
    """The smallest float32 value above ``score``: a threshold that rejects ``score`` in float32 and float64.

    (numpy compares a float32 score array with a Python float in float32, so a float64 step would vanish.)
    """
    return float(np.nextafter(np.float32(score), np.float32(np.inf)))


def _threshold_at_far(g: np.ndarray, i: np.ndarray, far: float) -> tuple[float, float, float]:
    """Lowest threshold whose FAR <= far. Returns (tar, threshold, achieved_far)."""
    return _tar_from_roc(*roc(g, i), far)


def _tar_from_roc(fars: np.ndarray, tars: np.ndarray, thr: np.ndarray, far: float) -> tuple[float, float, float]:
    k = int(np.searchsorted(fars, far, side="right")) - 1  # last ROC point with FAR <= far
    if k <= 0 or not np.isfinite(thr[k]):  # the top score is an impostor's: accept nothing
        return 0.0, just_above(thr[1]), 0.0
    return float(tars[k]), float(thr[k]), float(fars[k])


def roc_summary(
    genuine: ArrayLike, impostor: ArrayLike, fars: Sequence[float] = (1e-2, 1e-3), *, strict: bool = True
) -> dict[str, float | None]:
    """EER (and its threshold), AUC and TAR at each FAR from one ROC computation: what a bootstrap needs.

    Returns:
        {"eer", "eer_threshold", "auc", "tar@far=<far>" for each far (None as in `tar_at_far`)}; equal to
        `eer`, `auc` and `tar_at_far` called one by one.
    """
    g, i = _scores(genuine, impostor)
    far, tar, thr = roc(g, i)
    e, e_thr = _eer_from_roc(far, tar, thr)
    out: dict[str, float | None] = {
        "eer": e,
        "eer_threshold": e_thr,
        "auc": float(np.sum(np.diff(far) * (tar[1:] + tar[:-1])) / 2),
    }
    for target in fars:
        ok = not strict or has_enough_impostors(i.size, target)
        out[f"tar@far={target:g}"] = _tar_from_roc(far, tar, thr, target)[0] if ok else None
    return out


def tar_at_far(
    genuine: ArrayLike, impostor: ArrayLike, far: float, *, strict: bool = True
) -> tuple[float | None, float | None]:
    """True accept rate at the lowest threshold whose false accept rate is <= ``far``.

    Args:
        genuine: genuine scores [G].
        impostor: impostor scores [I].
        far: target false accept rate in (0, 1).
        strict: when True and there are fewer than ~1/far impostor pairs (`NOT_ENOUGH_IMPOSTORS`: the FAR
            cannot be measured), return (None, None) instead of a meaningless number.

    Returns:
        (tar, threshold), or (None, None) as described above.
    """
    if not 0 < far < 1:
        raise ValueError(f"far must be in (0, 1), got {far}")
    g, i = _scores(genuine, impostor)
    if strict and not has_enough_impostors(i.size, far):
        return None, None
    tar, threshold, _ = _threshold_at_far(g, i, far)
    return tar, threshold


def frr_at_far(
    genuine: ArrayLike, impostor: ArrayLike, far: float, *, strict: bool = True
) -> tuple[float | None, float | None]:
    """False reject rate (1 - TAR) at the `tar_at_far` threshold; (None, None) as `tar_at_far`."""
    tar, threshold = tar_at_far(genuine, impostor, far, strict=strict)
    return (None, None) if tar is None else (1.0 - tar, threshold)


def accuracy_at(genuine: ArrayLike, impostor: ArrayLike, threshold: float) -> float:
    """Fraction of pairs decided correctly when accepting ``score >= threshold``."""
    g, i = _scores(genuine, impostor)
    return float((np.sum(g >= threshold) + np.sum(i < threshold)) / (g.size + i.size))


def best_accuracy_threshold(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Threshold maximising accuracy on (scores [N], labels [N] 1 = genuine). Returns (threshold, accuracy).

    Candidates are midpoints between consecutive distinct scores plus one below and one above all;
    the lowest best candidate wins ties.
    """
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    g, i = np.sort(s[y]), np.sort(s[~y])
    u = np.unique(s)
    cand = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1.0]])
    correct = (g.size - np.searchsorted(g, cand, side="left")) + np.searchsorted(i, cand, side="left")
    k = int(np.argmax(correct))
    return float(cand[k]), float(correct[k] / s.size)


def kfold_accuracy(
    scores: ArrayLike, labels: ArrayLike, folds: int | ArrayLike = 10
) -> tuple[float, float, list[float]]:
    """LFW-protocol accuracy: per fold, the threshold is chosen on the other folds only.

    Args:
        scores: pair scores [N].
        labels: [N], 1 / True for genuine pairs.
        folds: fold index of each pair [N], or a number k of contiguous equal blocks (the order of LFW's
            pairs.txt, which lists its 10 folds one after the other).

    Returns:
        (mean accuracy, std of the fold accuracies, the threshold used on each fold [k]).
    """
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.size != y.size or s.size == 0:
        raise ValueError(f"scores ({s.size}) and labels ({y.size}) must be non-empty and of equal length")
    if isinstance(folds, (int, np.integer)):
        fold_ids = np.arange(s.size) * int(folds) // s.size
    else:
        fold_ids = np.asarray(folds).ravel()
    if fold_ids.size != s.size:
        raise ValueError(f"folds has {fold_ids.size} entries for {s.size} scores")
    accs, thresholds = [], []
    for f in np.unique(fold_ids):
        test = fold_ids == f
        if test.all():
            raise ValueError("k-fold accuracy needs at least two folds")
        t, _ = best_accuracy_threshold(s[~test], y[~test])
        accs.append(float(np.mean((s[test] >= t) == y[test])))
        thresholds.append(t)
    return float(np.mean(accs)), float(np.std(accs)), thresholds


def _rate(x: np.ndarray, accept: bool, threshold: float) -> float | None:
    if x.size == 0:
        return None
    return float(np.mean(x >= threshold) if accept else np.mean(x < threshold))
