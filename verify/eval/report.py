"""Evaluation report files: report.json, report.md, roc.png, det.png, scores.png.

Figures use matplotlib's object API on the Agg canvas (no pyplot, no global backend switch), so this is safe to
call from a server. Every file is written atomically (temporary file + os.replace).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

from verify.eval import metrics
from verify.fsutil import atomic_write_bytes
from verify.jsonutil import json_default

REPORT_FILES = ("report.json", "report.md", "roc.png", "det.png", "scores.png")
_COLOURS = {"genuine": "tab:green", "impostor": "tab:red", "skilled": "tab:red", "random": "tab:blue"}
_LABELS = {"impostor": "impostor", "skilled": "skilled forgery", "random": "random forgery"}


def _save(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def _impostor_sets(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(scores[k]) for k in ("impostor", "skilled", "random") if len(scores.get(k, [])) > 0}


def plot_roc(scores: Mapping[str, Any], path: Path, threshold: float | None = None) -> None:
    """ROC (TAR against FAR on a log axis), one curve per impostor kind, the threshold marked."""
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    g = np.asarray(scores["genuine"])
    for kind, i in _impostor_sets(scores).items():
        far, tar, _ = metrics.roc(g, i)
        floor = 0.5 / i.size  # log axis: show FAR = 0 at half a pair
        ax.plot(np.maximum(far, floor), tar, color=_COLOURS[kind], label=f"{_LABELS[kind]} (n={i.size})")
        if threshold is not None:
            ax.plot(max(float(np.mean(i >= threshold)), floor), np.mean(g >= threshold), "o", color=_COLOURS[kind])
    ax.set_xscale("log")
    ax.set(xlabel="false accept rate (FAR)", ylabel="true accept rate (TAR)", ylim=(0, 1.01), title="ROC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_det(scores: Mapping[str, Any], path: Path, threshold: float | None = None) -> None:
    """DET curve: FRR against FAR on normal-deviate scales, one curve per impostor kind."""
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    g = np.asarray(scores["genuine"])
    lim = 1e-4
    for kind, i in _impostor_sets(scores).items():
        far, frr, _ = metrics.det(g, i)
        x, y = norm.ppf(np.clip(far, lim, 1 - lim)), norm.ppf(np.clip(frr, lim, 1 - lim))
        ax.plot(x, y, color=_COLOURS[kind], label=_LABELS[kind])
        if threshold is not None:
            pt = np.clip([np.mean(i >= threshold), np.mean(g < threshold)], lim, 1 - lim)
            ax.plot(*norm.ppf(pt), "o", color=_COLOURS[kind])
    ticks = np.array([1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8, 0.95])
    labels = [f"{100 * t:g}%" for t in ticks]
    ax.set_xticks(norm.ppf(ticks), labels)
    ax.set_yticks(norm.ppf(ticks), labels)
    ax.set_xlim(norm.ppf(lim), norm.ppf(0.99))
    ax.set_ylim(norm.ppf(lim), norm.ppf(0.99))
    ax.plot(ax.get_xlim(), ax.get_xlim(), ":", color="grey", lw=0.8)  # EER line
    ax.set(xlabel="false accept rate (normal deviate scale)", ylabel="false reject rate", title="DET")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_scores(scores: Mapping[str, Any], path: Path, threshold: float | None = None) -> None:
    """Histograms of genuine / impostor / skilled / random similarity scores, threshold drawn."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    sets = {"genuine": np.asarray(scores["genuine"]), **_impostor_sets(scores)}
    allv = np.concatenate(list(sets.values()))
    lo, hi = float(allv.min()), float(allv.max())
    pad = max(0.0, 1e-3 - (hi - lo)) / 2  # near-identical scores still get bins of a usable width
    bins = np.linspace(lo - pad, hi + pad, 41)
    for kind, s in sets.items():
        label = f"{_LABELS.get(kind, kind)} (n={s.size})"
        ax.hist(s, bins=list(bins), density=True, histtype="stepfilled", alpha=0.3, color=_COLOURS[kind])
        ax.hist(s, bins=list(bins), density=True, histtype="step", lw=1.5, color=_COLOURS[kind], label=label)
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="cosine similarity", ylabel="density", title="Score distributions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _fmt(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a" + (f" ({entry['note']})" if entry and entry.get("note") else "")
    text = f"{entry['value']:.4f}"
    ci = entry.get("ci95")
    if ci and ci[0] is not None:
        text += f" [{ci[0]:.4f}, {ci[1]:.4f}]"
    return text


def markdown_summary(results: Mapping[str, Any]) -> str:
    """A readable report.md: model, data, threshold and its origin, a metrics table per impostor kind."""
    model, data, thr = results.get("model", {}), results.get("data", {}), results.get("threshold", {})
    lines = [
        "# Evaluation report",
        "",
        f"- model: {model.get('name')} ({model.get('modality')}, fingerprint {model.get('fingerprint')})",
        f"- data: {data.get('kind')}, {data.get('images')} images, {data.get('failed_images', 0)} failed",
        f"- test pairs: {', '.join(f'{k} {v}' for k, v in results.get('sizes', {}).items())}",
        f"- threshold: {_fmt(thr)} ({thr.get('chosen_on')}: {thr.get('source')})",
        "",
    ]
    lines += [f"> {note}\n" for note in results.get("notes", [])]
    blocks = results.get("metrics", {})
    if blocks:
        kinds = list(blocks)
        lines += [f"| metric | {' | '.join(_LABELS.get(k, k) for k in kinds)} |", "|---" * (len(kinds) + 1) + "|"]
        names = dict.fromkeys(name for k in kinds for name in blocks[k])
        lines += [f"| {n} | {' | '.join(_fmt(blocks[k].get(n)) for k in kinds)} |" for n in names]
        has_ci = any(isinstance(v, dict) and v.get("ci95") for k in kinds for v in blocks[k].values())
        note = "Brackets: 95% bootstrap interval over identities (resampled with replacement)."
        lines += ["", note, ""] if has_ci else [""]
    sig = results.get("signature")
    if sig:
        err = sig["errors_at_threshold"]
        lines += ["## Signatures", "", "| FRR | FAR skilled | FAR random |", "|---|---|---|"]
        lines.append("| " + " | ".join(_fmt({"value": err[k]}) for k in ("FRR", "FAR_skilled", "FAR_random")) + " |")
        for kind in ("skilled", "random"):
            w = sig.get(f"writers_{kind}")
            if w:
                lines.append(
                    f"\n{kind} forgeries, {w['n_writers']} writers: EER {w['eer_global']:.4f} (global threshold), "
                    f"{w['eer_per_writer']:.4f} (per-writer thresholds); mean per-writer AUC {w['auc_per_writer']:.4f}"
                )
        lines.append("")
    if "kfold" in results:
        kf = results["kfold"]
        lines += [f"k-fold accuracy: {kf['accuracy']:.4f} ± {kf['std']:.4f} over {kf['folds']} folds", ""]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | os.PathLike[str], results: Mapping[str, Any], scores: Mapping[str, Any]) -> None:
    """Write `REPORT_FILES` into ``out_dir`` (created).

    Args:
        out_dir: the report folder.
        results: `verify.eval.run.evaluate` output (its "scores" key, if any, is not written to JSON).
        scores: kind -> test scores [P]; "genuine" plus any of "impostor", "skilled", "random".
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in results.items() if k != "scores"}
    body["score_set_sizes"] = {k: len(v) for k, v in scores.items()}
    atomic_write_bytes(out / "report.json", (json.dumps(body, indent=2, default=json_default) + "\n").encode())
    atomic_write_bytes(out / "report.md", markdown_summary(results).encode())
    threshold = (results.get("threshold") or {}).get("value")
    plot_roc(scores, out / "roc.png", threshold)
    plot_det(scores, out / "det.png", threshold)
    plot_scores(scores, out / "scores.png", threshold)
