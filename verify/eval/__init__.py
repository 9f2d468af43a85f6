"""Evaluation: metrics on similarity scores, calibration, evaluation sets and pairs, the evaluation run, reports.

- `roc`: ROC, DET, AUC, EER, TAR/FRR at a FAR, accuracy, LFW-style k-fold accuracy;
- `signature`: signature FRR / FAR (skilled, random), global and per-writer EER;
- `multiref`: signature score sets (single-reference protocol, R references aggregated, per-writer z-norm);
- `openset`: open-set identification rates (FPIR, FNIR, rank-1, FNIR at FPIR);
- `bootstrap`: confidence intervals resampling identities;
- `metrics`: all of the above in one import;
- `calibration`: thresholds and score calibrators for model cards;
- `pairs`: evaluation sets and the pairs drawn from them;
- `run`: embed an evaluation set with a model and measure it;
- `report`: JSON, markdown and plots of an evaluation.
"""
