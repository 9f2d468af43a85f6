"""Verification metrics on similarity scores (larger = more alike): one import for all of them.

Plain functions on numpy arrays. ``genuine`` holds scores of same-identity pairs, ``impostor`` of
different-identity pairs; a pair is accepted when ``score >= threshold``. ROC points come from
`sklearn.metrics.roc_curve`; what scikit-learn lacks is written in the modules re-exported here:

- `verify.eval.roc`: ROC, DET, AUC, EER interpolation, TAR/FRR at a FAR, accuracy, LFW-style k-fold accuracy;
- `verify.eval.signature`: signature FRR / FAR (skilled, random), global and per-writer EER;
- `verify.eval.openset`: open-set identification rates (FPIR, FNIR, rank-1, FNIR at FPIR);
- `verify.eval.bootstrap`: confidence intervals resampling identities.
"""

from __future__ import annotations

from verify.eval.bootstrap import bootstrap_ci, bootstrap_cis
from verify.eval.openset import fnir_at_fpir, open_set_identification, top1_from_similarities
from verify.eval.roc import (  # noqa: F401 - _scores, _threshold_at_far: for verify.eval.calibration
    NOT_ENOUGH_IMPOSTORS,
    _scores,
    _threshold_at_far,
    accuracy_at,
    auc,
    best_accuracy_threshold,
    det,
    eer,
    frr_at_far,
    has_enough_impostors,
    just_above,
    kfold_accuracy,
    roc,
    roc_summary,
    tar_at_far,
)
from verify.eval.signature import signature_eer, signature_errors

__all__ = [
    "NOT_ENOUGH_IMPOSTORS",
    "accuracy_at",
    "auc",
    "best_accuracy_threshold",
    "bootstrap_ci",
    "bootstrap_cis",
    "det",
    "eer",
    "fnir_at_fpir",
    "frr_at_far",
    "has_enough_impostors",
    "just_above",
    "kfold_accuracy",
    "open_set_identification",
    "roc",
    "roc_summary",
    "signature_eer",
    "signature_errors",
    "tar_at_far",
    "top1_from_similarities",
]
