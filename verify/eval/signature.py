"""Signature verification metrics: FRR and FAR on skilled and random forgeries at one threshold, and the EER
with a global threshold and with one threshold per writer.

Import these through `verify.eval.metrics` or from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from verify.eval.roc import _rate, auc, eer


def signature_errors(
    genuine: ArrayLike, skilled: ArrayLike, random: ArrayLike, threshold: float
) -> dict[str, float | None]:
    """Signature error rates at one threshold: FRR on genuine, FAR on skilled and on random forgeries.

    Returns:
        {"FRR", "FAR_skilled", "FAR_random"}; a rate is None when its score set is empty.
    """
    g, s, r = (np.asarray(x, np.float64).ravel() for x in (genuine, skilled, random))
    return {
        "FRR": _rate(g, False, threshold),
        "FAR_skilled": _rate(s, True, threshold),
        "FAR_random": _rate(r, True, threshold),
    }


def signature_eer(
    genuine_by_writer: Mapping[str, ArrayLike], impostor_by_writer: Mapping[str, ArrayLike]
) -> dict[str, Any]:
    """Signature EER with one global threshold and with a threshold per writer, plus per-writer AUC.

    Args:
        genuine_by_writer: writer -> genuine-genuine scores of that writer.
        impostor_by_writer: writer -> forgery scores against that writer (skilled or random: call once each).

    Returns:
        {"eer_global", "threshold_global", "eer_per_writer" (mean of per-writer EERs), "auc_per_writer"
        (mean per-writer AUC), "n_writers" (writers with both sets), "per_writer": {writer: {"eer",
        "threshold", "auc"}}}.
    """
    writers = sorted(w for w in genuine_by_writer if len(np.ravel(genuine_by_writer[w])) > 0)
    writers = [w for w in writers if len(np.ravel(impostor_by_writer.get(w, []))) > 0]
    if not writers:
        raise ValueError("no writer has both genuine and impostor scores")
    per_writer = {}
    for w in writers:
        e, t = eer(genuine_by_writer[w], impostor_by_writer[w])
        per_writer[w] = {"eer": e, "threshold": t, "auc": auc(genuine_by_writer[w], impostor_by_writer[w])}
    g = np.concatenate([np.ravel(genuine_by_writer[w]) for w in writers])
    i = np.concatenate([np.ravel(impostor_by_writer[w]) for w in writers])
    e_global, t_global = eer(g, i)
    return {
        "eer_global": e_global,
        "threshold_global": t_global,
        "eer_per_writer": float(np.mean([v["eer"] for v in per_writer.values()])),
        "auc_per_writer": float(np.mean([v["auc"] for v in per_writer.values()])),
        "n_writers": len(writers),
        "per_writer": per_writer,
    }
