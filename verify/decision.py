"""What the verification pipeline returns: a `Probe` per input, a `Decision` per question, a typed `Rejection`.

`verify.verifier.Verifier` produces them; the batch jobs, the CLI and the web app read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from verify.errors import NoFaceError, OutOfDistributionError, VerifyError

DecisionKind = Literal["match", "no match", "unknown", "rejected"]
MATCH: DecisionKind = "match"
NO_MATCH: DecisionKind = "no match"
UNKNOWN: DecisionKind = "unknown"
REJECTED: DecisionKind = "rejected"

RejectionKind = Literal["no_face", "blank_page", "out_of_distribution"]

# What the OOD gate's refusal does: "reject" answers "rejected" (the default); "flag" answers the question anyway
# and flags the input for review (signers whose hand the gate mistakes for print); "off" does not run the gate.
# A blank page and an image without a face are refused in every mode: there is nothing to compare.
GateMode = Literal["reject", "flag", "off"]
GATE_MODES: tuple[GateMode, ...] = ("reject", "flag", "off")


@dataclass(frozen=True)
class Rejection:
    """Why the pipeline refused an input: a kind to branch on and the message shown to users."""

    kind: RejectionKind
    message: str
    looks_like: str | None = None  # out_of_distribution: the kind of non-signature the gate took it for, if named

    def error(self, name: str | None = None) -> VerifyError:
        """The typed error for this rejection (`NoFaceError` or `OutOfDistributionError`)."""
        cls = NoFaceError if self.kind == "no_face" else OutOfDistributionError
        return cls(f"{name or 'input'}: {self.message}")

    def __str__(self) -> str:
        return self.message


@dataclass
class Probe:
    """One input after the pipeline: its embedding, the crop that was compared, gate and timing facts."""

    sha256: str
    embedding: np.ndarray | None
    crop: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)
    ood_score: float | None = None
    rejection: Rejection | None = None  # set when the gate (or face detection) refused it
    flag: Rejection | None = None  # the gate's refusal, with gate mode "flag": the input is answered anyway
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> str | None:
        """The rejection's message, or None when the input was accepted."""
        return None if self.rejection is None else self.rejection.message

    @property
    def flagged(self) -> str | None:
        """The gate's refusal message when the gate only flags (gate mode "flag"), else None."""
        return None if self.flag is None else self.flag.message


@dataclass
class Decision:
    """The answer: match / no match / unknown / rejected, with everything a user needs to trust it."""

    decision: DecisionKind
    score: float | None = None
    probability: float | None = None
    threshold: float | None = None
    threshold_source: str = ""
    identity: str | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    ood_scores: list[float | None] = field(default_factory=list)
    ood_threshold: float | None = None
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # inputs the gate refused but gate mode "flag" answered
    refusals: list[RejectionKind] = field(default_factory=list)  # what refused the inputs of a "rejected" answer
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: str = ""
    crops: list[np.ndarray | None] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("crops")
        out["candidates"] = [{"identity": n, "score": s} for n, s in self.candidates]
        return out
