"""The batch result as a page a person reviews: a summary in words, then every row with thumbnails of both
images, the decision and the reason, flagged rows first (errors, refusals, answers that disagree with the
CSV's label, scores close to the threshold). The CSV download stays the machine output."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from app.wording import clean_reason, plural, reliability_markdown, scrub_paths
from verify.data.pairs_csv import LABELS

BATCH_HELP = """**Pairs CSV**: a header `reference,questioned[,label][,id]` and one pair per row; image paths are
relative to the top of the zip (e.g. `alice/1.png`). Or `questioned,claimed_identity[,label]` to check claims
against the gallery. With a `label` column (1 same / 0 different) you also get how often the answers agree with it.
The page lists every pair with both images, flagged ones first; the CSV download is the full machine output."""
REVIEW_ROWS = 200  # rows shown on the page (flagged first); the CSV has them all
THUMB_SIDE = 72
BORDERLINE = 0.02  # |score - threshold| under this is flagged as a close call
CSS = """
<style>
.review {border-collapse: collapse; width: 100%; font-size: 0.9em}
.review th, .review td {border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: middle}
.review th {white-space: nowrap}
.review img {max-height: 72px; max-width: 96px; background: #fff; border: 1px solid #eee}
.review tr.flag td {background: #fff4e5}
.review .why {min-width: 12em}
</style>
"""


def _label(value: Any) -> int | None:
    return LABELS.get(str(value).strip().lower())


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


def row_review(row: pd.Series) -> tuple[str, str, bool]:
    """(decision in words, reason, flagged) for one result row."""
    error = str(row.get("error") or "")
    score, threshold = _float(row.get("score")), _float(row.get("threshold"))
    label = _label(row["label"]) if "label" in row.index else None
    if error:
        return "not checked", clean_reason(scrub_paths(error)), True
    decision = str(row.get("decision") or "")
    words = {"match": "match", "no match": "no match"}.get(decision, decision or "?")
    reason = ""
    if score is not None and threshold is not None:
        side = "at or above" if score >= threshold else "below"
        reason = f"similarity {score:.3f} {side} {threshold:.3f}"
    flagged = False
    if str(row.get("ood_flag", "")).lower() == "true":  # answered although the gate refused an image (compare anyway)
        flagged = True
        reason += "; an image did not look like a face or a signature to the model, compared anyway"
    if label is not None and decision in ("match", "no match") and (decision == "match") != bool(label):
        flagged = True
        reason += f"; the CSV says {'same' if label else 'different'}"
    if score is not None and threshold is not None and abs(score - threshold) < BORDERLINE:
        flagged = True
        reason += "; a close call"
    return words, reason.lstrip("; "), flagged


def thumbnail_uri(path: str | Path | None, side: int = THUMB_SIDE) -> str:
    """A small JPEG of an image as a data: URI ("" when it cannot be read)."""
    if not path:
        return ""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return ""
    scale = side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else ""


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">' if uri else f"<small>{html.escape(alt)}</small>"


def batch_review_html(rows: pd.DataFrame, images: list[tuple[str | None, str | None]], columns: list[str]) -> str:
    """The review table: one line per row, flagged first (then in CSV order), at most `REVIEW_ROWS`.

    Args:
        rows: the results as read back from the CSV (strings).
        images: per row, the local paths of its two images (None when the row names an identity instead).
        columns: the input's two image columns (or image and claimed identity), for the headers.
    """
    reviewed = [(i, *row_review(rows.iloc[i])) for i in range(len(rows))]
    reviewed.sort(key=lambda t: (not t[3], t[0]))
    head_a, head_b = [*columns, "reference", "questioned"][:2]
    out = [
        CSS,
        '<table class="review"><thead><tr><th>row</th>'
        f"<th>{html.escape(head_a)}</th><th>{html.escape(head_b)}</th><th>decision</th>"
        '<th class="why">why</th></tr></thead><tbody>',
    ]
    for i, words, reason, flagged in reviewed[:REVIEW_ROWS]:
        row = rows.iloc[i]
        a, b = images[i] if i < len(images) else (None, None)
        names = [str(row.get(c, "")) for c in (head_a, head_b)]
        cells = [_img(thumbnail_uri(a), names[0]), _img(thumbnail_uri(b), names[1])]
        mark = "<b>review:</b> " if flagged else ""
        out.append(
            f'<tr class="{"flag" if flagged else ""}"><td>{html.escape(str(row.get("row", i + 1)))}</td>'
            f"<td>{cells[0]}</td><td>{cells[1]}</td><td>{mark}{html.escape(words)}</td>"
            f'<td class="why">{html.escape(reason)}</td></tr>'
        )
    out.append("</tbody></table>")
    if len(rows) > REVIEW_ROWS:
        out.append(f"<p>The first {REVIEW_ROWS} of {len(rows)} rows; the CSV download has them all.</p>")
    return "\n".join(out)


def batch_markdown(result: dict[str, Any]) -> str:
    """The summary above the review table: counts in words, flagged rows, and (with labels) error rates."""
    s = result["summary"]
    rows: pd.DataFrame = result["rows"]
    flagged = sum(row_review(rows.iloc[i])[2] for i in range(len(rows)))
    lines = [
        f"## {plural(s['rows'], 'pair')} checked: {s['ok']} answered, {s['failed']} not checked",
        f"{plural(flagged, 'row')} to review (marked *review*, shown first) · {s['modality']} model · "
        f"{s['seconds']:.1f} s",
    ]
    lines.append(labelled_summary(rows))
    if s["modality"] == "signature":
        lines.append(reliability_markdown(result.get("reliability")))
    return "\n\n".join(x for x in lines if x)


def labelled_summary(rows: pd.DataFrame) -> str:
    """With a `label` column: how often the answers agree with it, in words."""
    if "label" not in rows.columns or "score" not in rows.columns:
        return "No `label` column, so no accuracy figures (add 1 = same, 0 = different to get them)."
    labels = rows["label"].map(_label)
    decided = rows["decision"].isin(["match", "no match"]) & labels.notna()
    same, diff = decided & (labels == 1), decided & (labels == 0)
    if not same.any() or not diff.any():
        return "The labels need both same (1) and different (0) pairs for accuracy figures."
    missed = int((rows["decision"][same] != "match").sum())
    wrongly = int((rows["decision"][diff] == "match").sum())
    return (
        f"Against the CSV's labels: **{missed} of {int(same.sum())}** same pairs were missed "
        f"({100 * missed / same.sum():.0f}%), **{wrongly} of {int(diff.sum())}** different pairs were "
        f"accepted ({100 * wrongly / diff.sum():.0f}%)."
    )


def batch_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The results for display: scores rounded (the CSV download keeps full precision), no server paths."""
    shown = rows.copy()
    for col in ("score", "p_match", "ood_score", "threshold"):
        if col in shown:
            values = pd.to_numeric(shown[col], errors="coerce").round(4)
            shown[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    if "error" in shown:
        shown["error"] = shown["error"].map(lambda e: clean_reason(scrub_paths(str(e))))
    return shown
