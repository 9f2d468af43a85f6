"""Open-set identification metrics of top-1 search results (ISO/IEC 19795-1 terms): FPIR, FNIR, rank-1, and
FNIR at FPIR targets.

Import these through `verify.eval.metrics` or from here.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from verify.eval.roc import _rate, has_enough_impostors, just_above


def top1_from_similarities(
    similarities: ArrayLike, gallery_labels: ArrayLike, probe_labels: ArrayLike
) -> dict[str, np.ndarray]:
    """Split searches into mated (probe identity enrolled) and non-mated, keeping each top-1 result.

    Args:
        similarities: probe x gallery scores [Q, G].
        gallery_labels: identity of each gallery entry [G].
        probe_labels: true identity of each probe [Q].

    Returns:
        {"mated_scores" [M], "mated_correct" [M] bool (top-1 is the probe's identity),
        "nonmated_scores" [Q-M]}.
    """
    sim = np.asarray(similarities, np.float64)
    gal = np.asarray(gallery_labels)
    probes = np.asarray(probe_labels)
    best = np.argmax(sim, axis=1)
    top = sim[np.arange(sim.shape[0]), best]
    mated = np.isin(probes, gal)
    return {
        "mated_scores": top[mated],
        "mated_correct": gal[best][mated] == probes[mated],
        "nonmated_scores": top[~mated],
    }


def open_set_identification(
    mated_scores: ArrayLike, mated_correct: ArrayLike, nonmated_scores: ArrayLike, threshold: float
) -> dict[str, float | None]:
    """Open-set identification rates of top-1 search results at one threshold (ISO/IEC 19795-1 terms).

    Args:
        mated_scores: top-1 score of each search whose identity is enrolled [M].
        mated_correct: [M] bool, the top-1 candidate is the right identity.
        nonmated_scores: top-1 score of each search whose identity is not enrolled [N].
        threshold: candidates with ``score >= threshold`` are returned.

    Returns:
        {"FPIR": non-mated searches returning a candidate, "FNIR": mated searches not returning the right
        identity, "rank1": closed-set top-1 accuracy of mated searches (no threshold)}; None for an empty set.
    """
    ms = np.asarray(mated_scores, np.float64).ravel()
    mc = np.asarray(mated_correct, bool).ravel()
    ns = np.asarray(nonmated_scores, np.float64).ravel()
    hit = mc & (ms >= threshold)
    return {
        "FPIR": _rate(ns, True, threshold),
        "FNIR": float(1.0 - hit.mean()) if ms.size else None,
        "rank1": float(mc.mean()) if ms.size else None,
    }


def fnir_at_fpir(
    mated_scores: ArrayLike,
    mated_correct: ArrayLike,
    nonmated_scores: ArrayLike,
    fpir_targets: tuple[float, ...] = (1e-1, 1e-2, 1e-3),
) -> dict[float, dict[str, float | None]]:
    """FNIR at the lowest threshold whose FPIR <= each target.

    Returns:
        target -> {"fnir", "threshold", "fpir"}; all None when there are fewer than ~1/target non-mated
        searches (`NOT_ENOUGH_IMPOSTORS`).
    """
    ns = np.sort(np.asarray(nonmated_scores, np.float64).ravel())[::-1]
    out: dict[float, dict[str, float | None]] = {}
    for target in fpir_targets:
        if ns.size == 0 or not has_enough_impostors(ns.size, target):
            out[target] = {"fnir": None, "threshold": None, "fpir": None}
            continue
        allowed = math.floor(target * ns.size + 1e-9)  # non-mated hits we may accept
        threshold = just_above(ns[allowed])
        rates = open_set_identification(mated_scores, mated_correct, ns, threshold)
        out[target] = {"fnir": rates["FNIR"], "threshold": threshold, "fpir": rates["FPIR"]}
    return out
