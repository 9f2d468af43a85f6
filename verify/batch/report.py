"""The report of a labelled batch run: `<stem>.report.md` and ROC / DET / score plots beside the results CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from verify.eval import metrics
from verify.fsutil import atomic_write_text
from verify.verifier import Verifier


def labelled_scores(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(genuine [G], impostor [I]) scores of the rows that have a score and a label 1 / 0."""
    from verify.data.pairs_csv import LABELS

    label_col = next((c for c in rows.columns if str(c).strip().lower() == "label"), None)
    if label_col is None:
        return np.zeros(0), np.zeros(0)
    labels = rows[label_col].map(lambda v: LABELS.get(str(v).strip().lower()))
    scores = pd.to_numeric(rows["score"], errors="coerce")
    ok = scores.notna() & labels.notna()
    return scores[ok & (labels == 1)].to_numpy(float), scores[ok & (labels == 0)].to_numpy(float)


def write_batch_report(rows: pd.DataFrame, out_csv: Path, verifier: Verifier) -> Path | None:
    """Write `<stem>.report.md`, `<stem>.roc.png`, `<stem>.det.png`, `<stem>.scores.png` next to `out_csv`.

    Args:
        rows: the results (strings, as read back from the CSV).
        out_csv: the results CSV.
        verifier: the model and threshold used.

    Returns:
        the report path, or None when there are not both genuine and impostor scored pairs.
    """
    from verify.eval.report import markdown_summary, plot_det, plot_roc, plot_scores

    genuine, impostor = labelled_scores(rows)
    if genuine.size == 0 or impostor.size == 0:
        return None
    threshold = float(verifier.threshold)  # type: ignore[arg-type]
    results = _results(rows, verifier, genuine, impostor, threshold)
    stem = out_csv.with_suffix("")
    path = stem.with_name(stem.name + ".report.md")
    atomic_write_text(path, markdown_summary(results))
    scores = {"genuine": genuine, "impostor": impostor}
    for name, plot in (("roc", plot_roc), ("det", plot_det), ("scores", plot_scores)):
        plot(scores, stem.with_name(f"{stem.name}.{name}.png"), threshold)
    return path


def _results(
    rows: pd.DataFrame, verifier: Verifier, genuine: np.ndarray, impostor: np.ndarray, threshold: float
) -> dict[str, Any]:
    card = verifier.model.card
    rate, eer_threshold = metrics.eer(genuine, impostor)
    failed = int((rows["error"] != "").sum())
    block = {
        "AUC": {"value": metrics.auc(genuine, impostor)},
        "EER": {"value": rate},
        "EER threshold": {"value": eer_threshold},
        "accuracy at threshold": {"value": metrics.accuracy_at(genuine, impostor, threshold)},
        "FAR at threshold": {"value": float(np.mean(impostor >= threshold))},
        "FRR at threshold": {"value": float(np.mean(genuine < threshold))},
    }
    return {
        "notes": _reading_notes(genuine.size, impostor.size),
        "model": {"name": card.get("name"), "modality": card.get("modality"), "fingerprint": card.get("fingerprint")},
        "data": {"kind": "batch pairs", "images": _distinct_images(rows), "failed_images": f"{failed} row(s)"},
        "sizes": {"genuine": int(genuine.size), "impostor": int(impostor.size), "failed rows": failed},
        "threshold": {"value": threshold, "chosen_on": "model card", "source": verifier.threshold_source},
        "metrics": {"impostor": block},
    }


FEW_PAIRS = 30  # fewer labelled pairs of a kind than this: the rates are a sanity check, not error rates
GLOSSARY = (
    "How to read it: FRR = share of same-person (label 1) pairs called no match; FAR = share of different-person "
    "(label 0) pairs called a match; EER = the rate at which the two are equal when the threshold is moved; AUC = "
    "the chance that a same-person pair scores above a different-person pair (1 = always)."
)


def _reading_notes(genuine: int, impostor: int) -> list[str]:
    """The glossary, and a warning when the labelled pairs are too few for the rates to mean much."""
    notes = [GLOSSARY]
    if min(genuine, impostor) < FEW_PAIRS:
        step = 1 / min(genuine, impostor)
        notes.insert(
            0,
            f"Only {genuine} same-person and {impostor} different-person labelled pairs: one pair more or less "
            f"moves a rate by up to {step:.0%}. Read these figures as a check on this batch, not as the model's "
            f"error rates (label at least {FEW_PAIRS} pairs of each kind for that).",
        )
    return notes


def _distinct_images(rows: pd.DataFrame) -> int | str:
    """How many distinct image paths the rows name (reference and questioned columns), or "not counted" when
    the input named them otherwise."""
    cols = [c for c in rows.columns if c.strip().lower() in ("reference", "questioned", "path_a", "path_b")]
    return int(pd.unique(rows[cols].to_numpy().ravel()).size) if cols else "not counted"
