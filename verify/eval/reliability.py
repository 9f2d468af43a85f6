"""How far a signature model's answers can be trusted: the error rates measured on its held-out test writers at
its calibrated threshold, read at run time from the model's report (`<model>/report/report.json`, else the
card's `metrics.heldout_test`), so a new model brings its own figures. The web UI shows them in words under
every signature answer and `verify match` / `identify` print them on one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Above this rate of genuine signatures turned away or skilled forgeries accepted, an answer is a hint for a
# person to check, not a decision.
WEAK_RATE = 0.1


@dataclass(frozen=True)
class Reliability:
    """Error rates of a signature model on its held-out test writers.

    frr: genuine signatures rejected; far_skilled: skilled forgeries accepted; far_random: other writers'
    signatures accepted; writers: test writers; synthetic: measured on synthetic signatures; threshold: the
    one the rates were measured at; applies: whether that is the threshold in use.
    """

    frr: float
    far_skilled: float | None
    far_random: float | None
    writers: int | None
    synthetic: bool
    threshold: float | None
    applies: bool

    @property
    def weak(self) -> bool:
        """Whether an answer should be checked by a person rather than decide alone."""
        return max(self.frr, self.far_skilled or 0.0) > WEAK_RATE

    def line(self) -> str:
        """The rates in one plain line, for the command line."""
        data = f"{self.writers} test writers" if self.writers else "its test writers"
        if self.synthetic:
            data += " (synthetic signatures, not real ones)"
        when = "at this threshold" if self.applies else "at its calibrated threshold (not the one in use)"
        accepted = [f"{_pct(self.far_skilled)} of skilled forgeries"] if self.far_skilled is not None else []
        if self.far_random is not None:
            accepted.append(f"{_pct(self.far_random)} of other writers' signatures")
        rates = f"turned away {_pct(self.frr)} of genuine signatures"
        if accepted:
            rates += f" and accepted {' and '.join(accepted)}"
        verdict = "; not reliable enough to decide alone: have a person compare the signatures" if self.weak else ""
        return f"measured on {data}, {when} the model {rates}{verdict}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.1f}%"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def model_reliability(model_dir: Path | None, card: Mapping[str, Any], threshold: float | None) -> Reliability | None:
    """The measured error rates of the model in `model_dir` with `card`, used at `threshold`; None when the model
    has no measured error rates (a face model, or a signature model without a held-out report)."""
    metrics = card.get("metrics") or {}
    report_name = str(metrics.get("report") or "report/report.md")
    report = None
    if model_dir is not None:
        report = _read_json((Path(model_dir) / report_name).with_suffix(".json")) or _read_json(
            Path(model_dir) / "report" / "report.json"
        )
    source = report or metrics.get("heldout_test") or {}
    errors = (source.get("signature") or {}).get("errors_at_threshold") or source.get("errors_at_threshold") or {}
    if not errors or errors.get("FRR") is None:
        return None
    data = source.get("data") or {}
    provenance = str((card.get("provenance") or {}).get("data", ""))
    measured_at = (source.get("threshold") or {}).get("value")
    return Reliability(
        frr=float(errors["FRR"]),
        far_skilled=None if errors.get("FAR_skilled") is None else float(errors["FAR_skilled"]),
        far_random=None if errors.get("FAR_random") is None else float(errors["FAR_random"]),
        writers=data.get("test_identities"),
        synthetic="synthetic" in provenance.lower() or "synth" in str(data.get("root", "")).lower(),
        threshold=measured_at,
        applies=measured_at is None or threshold is None or abs(float(measured_at) - float(threshold)) < 1e-6,
    )
