"""The project's one JSON encoder for reports, model cards and `--json` output."""

from __future__ import annotations

import json
from typing import Any


def json_default(obj: Any) -> Any:
    """`json.dumps(default=...)` for the values the project writes: objects with ``to_dict`` (cards, results),
    numpy / torch scalars and arrays (``tolist``), and paths (as strings)."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return str(obj.__fspath__())
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` with `json_default`."""
    return json.dumps(obj, default=json_default, **kwargs)
