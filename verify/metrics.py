"""Verification metrics on similarity scores (larger = more alike): one import for all of them.

Plain functions on numpy arrays. ``genuine`` holds scores of same-identity pairs, ``impostor`` of
different-identity pairs; a pair is accepted when ``score >= threshold``. ROC points come from
`sklearn.metrics.roc_curve`; what scikit-learn lacks is written in the modules re-exported here:

- `verify.metrics_roc`: ROC, DET, AUC, EER interpolation, TAR/FRR at a FAR, accuracy, LFW-style k-fold accuracy;
- `verify.metrics_signature`: signature FRR / FAR (skilled, random), global and per-writer EER;
- `verify.metrics_openset`: open-set identification rates (FPIR, FNIR, rank-1, FNIR at FPIR);
- `verify.bootstrap`: confidence intervals resampling identities.
"""

from __future__ import annotations

from verify.bootstrap import bootstrap_ci, bootstrap_cis
from verify.metrics_openset import fnir_at_fpir, open_set_identification, top1_from_similarities
from verify.metrics_roc import (  # noqa: F401 - _scores, _threshold_at_far: for verify.calibration
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
from verify.metrics_signature import signature_eer, signature_errors

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
