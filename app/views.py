"""Turn the service's plain results into what the page shows: Markdown text, tables, captioned thumbnails.

No Gradio here: these are plain functions over dicts, so the wording is testable without a browser.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pandas as pd

_HEADLINES = {
    "match": "## Match: same person",
    "no match": "## No match: different people",
    "unknown": "## Unknown: nobody in the gallery matches",
    "rejected": "## Rejected: the input could not be used",
}


def enlarge(image: np.ndarray | None, min_side: int = 150) -> np.ndarray | None:
    """Scale a small crop up (nearest neighbour: the pixels the model saw) so the page shows it legibly."""
    if image is None or max(image.shape[:2]) >= min_side:
        return image
    factor = int(np.ceil(min_side / max(image.shape[:2])))
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _notes(result: dict[str, Any]) -> list[str]:
    lines = []
    if result.get("reason"):
        lines.append(f"**Why:** {result['reason']}")
    lines += [f"- note: {n}" for n in result.get("notes") or []]
    return lines


def threshold_line(result: dict[str, Any]) -> str:
    """'threshold 0.908 (source)' with the source shortened to its first sentence."""
    source = str(result.get("threshold_source") or "")
    short = source.split("(")[0].split(". ")[0].strip() or "model card"
    return f"threshold {_number(result.get('threshold'))} — {short}"


def verify_markdown(result: dict[str, Any]) -> str:
    """The Verify tab's answer: decision, similarity vs threshold, p(match), notes."""
    lines = [_HEADLINES.get(result["decision"], f"## {result['decision']}")]
    if result.get("score") is not None:
        detail = f"**Similarity {_number(result['score'])}** (cosine; {threshold_line(result)})"
        if result.get("probability") is not None:
            detail += f" · **p(match) {_number(result['probability'], 2)}**"
        lines.append(detail)
    lines.append(f"Modality: {result.get('modality', '?')} · model: `{result.get('model', '')}`")
    return "\n\n".join(lines + _notes(result))


def identify_markdown(result: dict[str, Any]) -> str:
    """The Identify tab's answer: who it is (or 'unknown'), the best score vs the threshold."""
    decision = result["decision"]
    if decision == "match":
        lines = [f"## Identified: {result['identity']}"]
    else:
        lines = [_HEADLINES.get(decision, f"## {decision}")]
    best = result.get("candidates") or []
    if best:
        top = best[0]
        side = "at or above" if top["score"] >= (result.get("threshold") or 0.0) else "below"
        lines.append(
            f"Closest: **{top['identity']}**, similarity {_number(top['score'])}, {side} the {threshold_line(result)}"
        )
    elif decision == "unknown":
        lines.append("The gallery is empty: enroll someone first (Enroll tab).")
    return "\n\n".join(lines + _notes(result))


def candidates_table(result: dict[str, Any]) -> pd.DataFrame:
    """Rank, identity, similarity, above threshold."""
    rows = [
        {
            "rank": i + 1,
            "identity": c["identity"],
            "similarity": round(c["score"], 4),
            "above threshold": c["above_threshold"],
        }
        for i, c in enumerate(result.get("candidates") or [])
    ]
    return pd.DataFrame(rows, columns=["rank", "identity", "similarity", "above threshold"])


def candidate_thumbnails(result: dict[str, Any]) -> list[tuple[np.ndarray, str]]:
    return [
        (c["thumbnail"], f"{c['identity']} · {c['score']:.3f}")
        for c in result.get("candidates") or []
        if c.get("thumbnail") is not None
    ]


def enroll_markdown(report: dict[str, Any]) -> str:
    n, total = report["enrolled"], len(report["samples"])
    head = f"## {n} of {total} image(s) enrolled as **{report['name']}** ({report['modality']})"
    lines = [head]
    if not n:
        lines.append("Nothing was enrolled: see the reasons below, then try clearer, frontal, well-lit images.")
    lines += [f"- warning: {w}" for w in report.get("warnings") or []]
    return "\n\n".join(lines)


def enroll_table(report: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for s in report["samples"]:
        quality = ", ".join(f"{k} {v:.1f}" for k, v in (s.get("quality") or {}).items())
        rows.append({"image": s["source"], "status": s["status"], "why / quality": s["reason"] or quality})
    return pd.DataFrame(rows, columns=["image", "status", "why / quality"])


def sample_thumbnails(samples: list[dict[str, Any]]) -> list[tuple[np.ndarray, str]]:
    return [(s["thumbnail"], f"#{s['sample_id']} {s['source']}") for s in samples if s.get("thumbnail") is not None]


def sample_choices(samples: list[dict[str, Any]]) -> list[str]:
    return [f"#{s['sample_id']} {s['source']}".strip() for s in samples]


def identities_table(identities: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"identity": i["name"], "samples": i["samples"], "enrolled": i["created"][:19]} for i in identities]
    return pd.DataFrame(rows, columns=["identity", "samples", "enrolled"])


def stats_markdown(stats: dict[str, Any]) -> str:
    model = stats["model"]
    if not model.get("installed"):
        return f"### {model['message']}"
    gallery = stats.get("gallery") or {}
    return "\n".join(
        [
            f"### Model: `{model['name']}` ({model['modality']})",
            f"- fingerprint `{model['fingerprint']}`, {model['dim']}-d embeddings",
            f"- {threshold_line(model)}",
            f"- p(match) calibrated: {'yes' if model['p_match'] else 'no'} · "
            f"out-of-distribution gate: {'yes' if model['ood_gate'] else 'no'}",
            f"### Gallery: {gallery.get('identities', 0)} identities, {gallery.get('samples', 0)} samples",
            f"- index `{gallery.get('active_index_type', '?')}` · folder `{gallery.get('directory', '')}`",
        ]
    )


def batch_markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [
        f"## {s['rows']} rows: {s['ok']} scored, {s['failed']} with an error ({s['rejected']} rejected)",
        f"{s['modality']} model · {s['seconds']:.1f} s · {s['rows_per_s']:.1f} rows/s",
    ]
    if not result.get("report"):
        lines.append("No report: it needs a `label` column with both same (1) and different (0) pairs.")
    return "\n\n".join(lines)


BATCH_HELP = """**Pairs CSV**: a header `reference,questioned[,label][,id]` and one pair per row; image paths are
relative to the top of the zip (e.g. `alice/1.png`). Or `questioned,claimed_identity[,label]` to check claims
against the gallery. With a `label` column (1 same / 0 different) you also get a report (EER, ROC)."""


def batch_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The results for display: scores rounded (the CSV download keeps full precision)."""
    shown = rows.copy()
    for col in ("score", "p_match", "ood_score"):
        if col in shown:
            values = pd.to_numeric(shown[col], errors="coerce").round(4)
            shown[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    return shown
