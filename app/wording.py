"""Words for the page: no server paths, gate scores with their meaning, counts with the right plural."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

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
