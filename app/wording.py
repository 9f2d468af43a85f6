"""Words for the page: no server paths, gate scores with their meaning, counts with the right plural."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from verify.eval.reliability import WEAK_RATE

# The checkbox of the Verify, Identify and Batch tabs that answers what the OOD gate refuses (gate mode "flag").
COMPARE_ANYWAY = "Compare even if an image does not look like a face or a signature (the answer says so)"
ENROLL_ANYWAY = "Enroll even if an image does not look like a face or a signature (the report says so)"

# An absolute POSIX path of two or more parts (not part of a URL); group 1 is its last part.
_ABS_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"(),;:\[\]]+/)+([^\s/'\"(),;:\[\]]+)")
_OOD = re.compile(r"not an? (face|signature) \(OOD score (-?[\d.]+(?:e[+-]?\d+)?) < (-?[\d.]+(?:e[+-]?\d+)?)\)")


def scrub_paths(text: str, roots: Iterable[str | Path] = ()) -> str:
    """`text` with server paths removed: paths under `roots` become relative to them, any other absolute path
    becomes its file name ("/tmp/verify-app-x/job/pairs.csv: ..." -> "pairs.csv: ...")."""
    text = str(text)
    for root in roots:
        for form in {str(root), str(Path(root).resolve())}:
            text = text.replace(form.rstrip("/") + "/", "")
    return _ABS_PATH.sub(r"\1", text)


def clean_reason(reason: str) -> str:
    """A refusal in words: the OOD gate's score comparison says what the score means."""

    def words(m: re.Match[str]) -> str:
        what, score, limit = m.group(1), float(m.group(2)), float(m.group(3))
        return (
            f"it does not look like a {what} to the model (typicality score {score:.0f}; "
            f"the {what}s it was built on score above {limit:.0f})"
        )

    return _OOD.sub(words, str(reason))


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 identity', '2 identities'."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def pct(x: float | None) -> str:
    """0.3 -> '30%'."""
    return "n/a" if x is None else f"{100 * x:.0f}%"


def reliability_markdown(rel: dict[str, Any] | None) -> str:
    """How far a signature model can be trusted, in words, from its measured error rates."""
    if not rel:
        return (
            "**How far to trust this:** this signature model has no measured error rates; "
            "treat the answer as a hint only."
        )
    data = f"{rel['writers']} test writers" if rel.get("writers") else "its test writers"
    if rel.get("synthetic"):
        data += " (synthetic signatures, not real ones)"
    rates = [f"turned away **{pct(rel['frr'])}** of genuine signatures"]
    if rel.get("far_skilled") is not None:
        rates.append(f"accepted **{pct(rel['far_skilled'])}** of skilled forgeries")
    if rel.get("far_random") is not None:
        rates.append(f"**{pct(rel['far_random'])}** of other writers' signatures")
    weak = max(rel["frr"], rel.get("far_skilled") or 0.0) > WEAK_RATE
    verdict = (
        " It is **not reliable enough to decide alone**: use it to sort cases, and have a person compare the "
        "signatures below."
        if weak
        else ""
    )
    when = "at this threshold" if rel.get("applies", True) else "at its calibrated threshold (not the one in use)"
    return f"**How far to trust this:** measured on {data}, {when} the model {', '.join(rates)}.{verdict}"


def name_inputs(warning: str, sources: list[str]) -> str:
    """The gallery's warnings count inputs from 0 ("input 1: ...", "new sample 0 of ..."): name the files."""

    def name(m: re.Match[str]) -> str:
        i = int(m.group(2))
        return sources[i] if 0 <= i < len(sources) else f"image {i + 1}"

    warning = re.sub(
        r"image already enrolled as input (\d+) of this call",
        lambda m: f"the same image as {sources[int(m.group(1))] if int(m.group(1)) < len(sources) else 'another'}",
        warning,
    )
    return re.sub(r"\b(input|new sample) (\d+)(?: of '[^']*')?", name, warning)


def reembed_refusal(modality: str, exc: Exception) -> Exception:
    """The gallery's re-embed refusal (which tells a command-line user what to run) in words for the page: the
    same error type, which samples were refused, and what the person running the app can do."""
    listed = scrub_paths(clean_reason(str(exc).split("; nothing was re-embedded", 1)[0]))
    return type(exc)(
        f"the {modality} gallery was enrolled with another model, and the model in use refuses some of its samples "
        f"({listed}), so the gallery was left as it was. Ask whoever runs this app to remove those samples or to "
        "start it with a new gallery folder."
    )
