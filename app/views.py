"""Turn the service's plain results into what the page shows: Markdown text, tables, captioned thumbnails.

No Gradio here: these are plain functions over dicts, so the wording is testable without a browser. Every
answer leads with the decision in plain words, then the score with a one-line meaning, then (signatures) how
far the model in use can be trusted, as measured on its test writers.
"""

from __future__ import annotations

import re
from typing import Any

import cv2
import numpy as np
import pandas as pd

from app.batch_view import BATCH_HELP, batch_markdown, batch_review_html, batch_table  # noqa: F401  (re-exported)
from app.wording import COMPARE_ANYWAY, ENROLL_ANYWAY, clean_reason, pct, plural, reliability_markdown, scrub_paths

_HEADLINES = {
    ("face", "match"): "## Match: same person",
    ("face", "no match"): "## No match: different people",
    ("signature", "match"): "## Match: the signatures are by the same hand",
    ("signature", "no match"): "## No match: not the reference's hand (a forgery, or another writer)",
    ("face", "unknown"): "## Unknown: nobody in the gallery matches",
    ("signature", "unknown"): "## Unknown: no enrolled writer matches",
}
ERROR_HEAD = "## Not checked"
READY = "Upload two images (or pick an example below) and press **Verify**."
READY_ENROLL = (
    "Each image is checked before it is enrolled (faces: found, large, sharp, frontal; signatures: ink on the page)."
)
READY_IDENTIFY = "Upload an image (or pick an example below) and press **Identify**: the gallery is searched for it."
SCORE_MEANING = "cosine similarity: 1 = identical, larger = more alike"


def enlarge(image: np.ndarray | None, min_side: int = 150) -> np.ndarray | None:
    """Scale a small crop up (nearest neighbour: the pixels the model saw) so the page shows it legibly."""
    if image is None or max(image.shape[:2]) >= min_side:
        return image
    factor = int(np.ceil(min_side / max(image.shape[:2])))
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def overlay(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Two signatures (dark ink on white, same size) overlaid in two colours: A blue, B red, both: dark.

    Returns:
        RGB uint8 [H, W, 3], or None when either crop is missing.
    """
    if a is None or b is None:
        return None
    ga, gb = (x if x.ndim == 2 else cv2.cvtColor(np.asarray(x), cv2.COLOR_RGB2GRAY) for x in (a, b))
    if ga.shape != gb.shape:
        gb = cv2.resize(gb, (ga.shape[1], ga.shape[0]), interpolation=cv2.INTER_AREA)
    ink_a, ink_b = 1.0 - ga.astype(np.float32) / 255.0, 1.0 - gb.astype(np.float32) / 255.0
    # White page; A's ink takes away red and green (blue remains), B's ink takes away green and blue (red).
    red = 1.0 - ink_a
    green = 1.0 - np.maximum(ink_a, ink_b)
    blue = 1.0 - ink_b
    return (np.stack([red, green, blue], axis=-1) * 255).clip(0, 255).astype(np.uint8)


def error_markdown(message: str, head: str = ERROR_HEAD) -> str:
    """What the result box shows when the input could not be checked: the reason, no stale answer."""
    return f"{head}\n\n{scrub_paths(message)}"


def score_line(result: dict[str, Any], score: float | None = None) -> str:
    """'Similarity 0.935 (cosine ...); a match from 0.919 up, chosen on ...'."""
    score = result.get("score") if score is None else score
    threshold = result.get("threshold")
    source = str(result.get("threshold_source") or "").split("(")[0].split(":")[0].split(". ")[0].strip()
    line = f"**Similarity {score:.3f}** ({SCORE_MEANING})" if score is not None else ""
    if threshold is not None:
        line += f"; it counts as a match from **{threshold:.3f}** up" + (f" ({source})" if source else "")
    return line + "."


def probability_line(result: dict[str, Any]) -> str:
    p = result.get("probability")
    if p is None:
        return ""
    return (
        f"Estimated chance that they match: **{pct(p)}** (the model's score turned into a probability on its "
        "calibration data; it says how sure the model is, not how often it is right)."
    )


def verify_markdown(result: dict[str, Any], reliability: dict[str, Any] | None = None) -> str:
    """The Verify tab's answer: decision in words, similarity and its meaning, reliability, notes."""
    modality = result.get("modality", "face")
    decision = result["decision"]
    if decision == "rejected":
        lines = [f"## Could not compare: {clean_reason(result.get('reason') or 'the input could not be used')}"]
        lines += _way_out(result, "verify")
    else:
        lines = [_HEADLINES.get((modality, decision), f"## {decision}")]
        if result.get("score") is not None:
            lines.append(score_line(result))
        if prob := probability_line(result):
            lines.append(prob)
        if modality == "signature":
            lines.append(reliability_markdown(reliability))
    lines += _flag_lines(result)
    lines += [f"- note: {scrub_paths(n)}" for n in result.get("notes") or []]
    lines.append(f"<small>{modality} model `{result.get('model', '')}`</small>")
    return "\n\n".join(lines)


def identify_markdown(result: dict[str, Any], reliability: dict[str, Any] | None = None) -> str:
    """The Identify tab's answer: who it is (or 'unknown'), the best score and its meaning."""
    modality = result.get("modality", "face")
    decision = result["decision"]
    if decision == "match":
        who = "Signed by" if modality == "signature" else "Identified"
        lines = [f"## {who}: {result['identity']}"]
    elif decision == "rejected":
        lines = [f"## Could not search: {clean_reason(result.get('reason') or 'the input could not be used')}"]
        lines += _way_out(result, "identify")
    else:
        lines = [_HEADLINES.get((modality, decision), f"## {decision}")]
    best = result.get("candidates") or []
    if best:
        top = best[0]
        side = "a match" if top["score"] >= (result.get("threshold") or 0.0) else "below the match level"
        lines.append(f"Closest: **{top['identity']}**, {side}. " + score_line(result, top["score"]))
    elif decision == "unknown":
        lines.append("The gallery is empty: enroll someone first (Enroll tab).")
    if modality == "signature" and decision != "rejected":
        lines.append(reliability_markdown(reliability))
    lines += _flag_lines(result)
    lines += [f"- note: {scrub_paths(n)}" for n in result.get("notes") or []]
    return "\n\n".join(lines)


def _way_out(result: dict[str, Any], action: str) -> list[str]:
    """For an answer refused only by the OOD gate (not a blank page, not a missing face): how to get one anyway."""
    if set(result.get("refusals") or ["-"]) != {"out_of_distribution"}:
        return []
    lines = [
        "If it is one (some hands, such as block capitals, look like print to the model), tick "
        f"*{COMPARE_ANYWAY.split(' (')[0]}* and {action} again."
    ]
    if result.get("modality") == "signature":  # the modality an example set stays set for the next upload
        lines.append(
            "If it is a face photo, check that *What the images show* is *auto* or *face*, not *signature* (a "
            "signature example sets it)."
        )
    return lines


def _flag_lines(result: dict[str, Any]) -> list[str]:
    """The inputs the gate refused but that were compared anyway, as asked."""
    return [f"- **flagged**: {clean_reason(f)}; compared anyway, as asked" for f in result.get("flags") or []]


def candidates_table(result: dict[str, Any]) -> pd.DataFrame:
    """Rank, identity, similarity, match (yes/no)."""
    rows = [
        {
            "rank": i + 1,
            "identity": c["identity"],
            "similarity": f"{c['score']:.3f}",
            "match": "yes" if c["above_threshold"] else "no",
        }
        for i, c in enumerate(result.get("candidates") or [])
    ]
    return pd.DataFrame(rows, columns=["rank", "identity", "similarity", "match"])


def candidate_thumbnails(result: dict[str, Any]) -> list[tuple[np.ndarray, str]]:
    """Every reference of the closest identities with its own score (an examiner compares them all)."""
    out = []
    for c in result.get("candidates") or []:
        refs = c.get("references") or []
        if refs:
            out += [(r["thumbnail"], f"{c['identity']} #{r['sample_id']}: {r['score']:.3f}") for r in refs]
        elif c.get("thumbnail") is not None:
            out.append((c["thumbnail"], f"{c['identity']}: {c['score']:.3f}"))
    return [(img, cap) for img, cap in out if img is not None]


def enroll_markdown(report: dict[str, Any]) -> str:
    n, total = report["enrolled"], len(report["samples"])
    statuses = [s["status"] for s in report["samples"]]
    if n:
        head = f"## {n} of {plural(total, 'image')} enrolled as **{report['name']}** ({report['modality']})"
    elif statuses and all(s == "skipped" for s in statuses):
        head = f"## Nothing new: {'this image is' if total == 1 else 'these images are'} already enrolled"
    else:
        head = f"## Nothing enrolled for **{report['name']}**"
    lines = [head]
    refused = [s for s in report["samples"] if s["status"] == "refused"]
    reasons = [str(s.get("reason") or "") for s in refused]
    if any(_is_quality(r) for r in reasons) and report["modality"] == "face":
        lines.append("Refused for image quality: try clearer, frontal, well-lit photos where the face is large.")
    lines += _enroll_gate_lines(report, refused)
    lines += [f"- warning: {scrub_paths(w)}" for w in report.get("warnings") or []]
    if report["modality"] == "face" and any(s.get("quality") for s in report["samples"]):
        lines.append(f"<small>{QUALITY_LIMITS}</small>")
    return "\n\n".join(lines)


def _enroll_gate_lines(report: dict[str, Any], refused: list[dict[str, Any]]) -> list[str]:
    """The way out for images only the OOD gate refused, and a count of those enrolled anyway (flagged)."""
    what = "a face" if report["modality"] == "face" else "a signature"
    hands = " (some hands, such as block capitals, look like print to the model)" if what == "a signature" else ""
    lines = []
    gated = sum(1 for s in refused if s.get("refused_by") == "out_of_distribution")
    if gated:
        which = "it is" if gated == 1 else "they are"
        lines.append(f"If {which} {what}{hands}, tick *{ENROLL_ANYWAY.split(' (')[0]}* and enroll again.")
    flagged = sum(1 for s in report["samples"] if s.get("flagged"))
    if flagged:
        was = "was" if flagged == 1 else "were"
        lines.append(
            f"{plural(flagged, 'image')} did not look like {what} to the model and {was} enrolled anyway, as asked."
        )
    return lines


def _is_quality(reason: str) -> bool:
    return any(w in reason for w in ("blur", "small", "turned", "tilt", "roll", "yaw", "face_size", "frontal"))


_QUALITY = {
    "face_size": "face {v:.0f} px",
    "blur": "sharpness {v:.0f}",
    "roll_deg": "tilt {v:.0f}°",
    "yaw_ratio": "turn {v:.2f}",
}
QUALITY_LIMITS = (
    "Faces are accepted when at least 60 px wide, sharp (sharpness 40 or more), tilted at most 30° and turned at "
    "most 0.35 (0 = facing the camera)."
)


def quality_words(quality: dict[str, float]) -> str:
    """'face 90 px, sharpness 81, tilt 12°, turn 0.05' (the limits: `QUALITY_LIMITS`)."""
    return ", ".join(_QUALITY[k].format(v=abs(v)) if k in _QUALITY else f"{k} {v:.2f}" for k, v in quality.items())


def enroll_table(report: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for s in report["samples"]:
        why = clean_reason(scrub_paths(s["reason"])) if s["reason"] else quality_words(s.get("quality") or {})
        rows.append({"image": s["source"], "result": s["status"], "why / quality": why or "ok"})
    return pd.DataFrame(rows, columns=["image", "result", "why / quality"])


def sample_thumbnails(samples: list[dict[str, Any]]) -> list[tuple[np.ndarray, str]]:
    return [(s["thumbnail"], f"#{s['sample_id']}") for s in samples if s.get("thumbnail") is not None]


def sample_choices(samples: list[dict[str, Any]]) -> list[str]:
    return [f"#{s['sample_id']} {s['source']}".strip() for s in samples]


def identities_table(identities: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"identity": i["name"], "samples": i["samples"], "enrolled": i["created"][:16]} for i in identities]
    return pd.DataFrame(rows, columns=["identity", "samples", "enrolled"])


def stats_markdown(stats: dict[str, Any]) -> str:
    model = stats["model"]
    if not model.get("installed"):
        return f"### {model['message']}"
    gallery = stats.get("gallery") or {}
    lines = [
        f"### {plural(gallery.get('identities', 0), 'identity', 'identities')}, "
        f"{plural(gallery.get('samples', 0), 'sample')}",
        f"- model `{model['name']}` ({model['modality']}), {model['dim']}-d embeddings, "
        f"fingerprint `{model['fingerprint']}`",
        f"- a match from similarity **{model['threshold']:.3f}** up ({_short(model.get('threshold_source'))})",
        f"- chance of a match shown: {'yes' if model['p_match'] else 'no'} · "
        f"refuses what is not a {model['modality']}: {'yes' if model['ood_gate'] else 'no'}",
    ]
    if model["modality"] == "signature":
        lines.append("- " + reliability_markdown(model.get("reliability")))
    return "\n".join(lines)


def _short(source: Any) -> str:
    return re.split(r"[(:]|\. ", str(source or "model card"))[0].strip() or "model card"
