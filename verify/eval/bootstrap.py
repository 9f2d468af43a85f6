"""Percentile bootstrap confidence intervals for verification metrics, resampling identities (not pairs).

Import these through `verify.eval.metrics` or from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def _sorted_with_owner(by_identity: Mapping[str, ArrayLike], ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All scores sorted [N] and the index in ``ids`` of the identity owning each [N]."""
    parts = [np.asarray(by_identity.get(k, ()), np.float64).ravel() for k in ids]
    scores = np.concatenate(parts) if parts else np.zeros(0)
    owner = np.repeat(np.arange(len(ids)), [p.size for p in parts])
    order = np.argsort(scores, kind="stable")
    return scores[order], owner[order]


def bootstrap_ci(
    genuine_by_identity: Mapping[str, ArrayLike],
    impostor_by_identity: Mapping[str, ArrayLike],
    metric_fn: Callable[[np.ndarray, np.ndarray], Any],
    n: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap confidence interval, resampling IDENTITIES (not pairs) with replacement.

    Pairs of one identity are correlated, so resampling pairs gives intervals that are too narrow.

    Args:
        genuine_by_identity: identity -> its genuine scores.
        impostor_by_identity: identity -> impostor scores attributed to it (e.g. pairs where it is the
            reference); identities may appear in one mapping only.
        metric_fn: ``fn(genuine [G], impostor [I]) -> value``; a tuple result uses its first item
            (so `eer` and `tar_at_far` fit as they are); None or NaN results are skipped.
        n: number of bootstrap replicates.
        alpha: 1 - confidence level.
        seed: random seed.

    Returns:
        (low, high), or (None, None) when no replicate gives a value.
    """

    def one(g: np.ndarray, i: np.ndarray) -> dict[str, Any]:
        value = metric_fn(g, i)
        return {"value": value[0] if isinstance(value, tuple) else value}

    return bootstrap_cis(genuine_by_identity, impostor_by_identity, one, n=n, alpha=alpha, seed=seed)["value"]


def bootstrap_cis(
    genuine_by_identity: Mapping[str, ArrayLike],
    impostor_by_identity: Mapping[str, ArrayLike],
    metrics_fn: Callable[[np.ndarray, np.ndarray], Mapping[str, Any]],
    n: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, tuple[float | None, float | None]]:
    """`bootstrap_ci` for several metrics computed together (e.g. `roc_summary`), on the same replicates.

    Returns:
        metric name -> (low, high); (None, None) for a metric no replicate gave a value for.
    """
    ids = sorted(set(genuine_by_identity) | set(impostor_by_identity))
    g_sorted, g_owner = _sorted_with_owner(genuine_by_identity, ids)
    i_sorted, i_owner = _sorted_with_owner(impostor_by_identity, ids)
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(n if ids else 0):
        counts = np.bincount(rng.integers(0, len(ids), size=len(ids)), minlength=len(ids))
        # repeating a sorted array keeps it sorted, so the metric's own sort is cheap
        g, i = np.repeat(g_sorted, counts[g_owner]), np.repeat(i_sorted, counts[i_owner])
        if g.size == 0 or i.size == 0:
            continue
        for name, value in metrics_fn(g, i).items():
            values.setdefault(name, [])
            if value is not None and np.isfinite(value):
                values[name].append(float(value))
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, vals in values.items():
        low, high = np.quantile(vals, [alpha / 2, 1 - alpha / 2]) if vals else (None, None)
        out[name] = (None if low is None else float(low), None if high is None else float(high))
    return out
