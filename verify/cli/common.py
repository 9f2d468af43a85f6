"""Helpers shared by the CLI subcommands: common flags and output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from verify.decision import GATE_MODES
from verify.jsonutil import json_default
from verify.modality import MODALITY_CHOICES

if TYPE_CHECKING:
    from verify.eval.reliability import Reliability
    from verify.verifier import Verifier


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (the `--json` convention)."""
    sys.stdout.write(json.dumps(obj, default=json_default, sort_keys=False) + "\n")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """`--model` and `--modality`, with the bundled default model of the modality when no model is named."""
    parser.add_argument(
        "--model", default=None, help="model directory (model.json + model.safetensors); default: bundled"
    )
    parser.add_argument(
        "--modality",
        choices=MODALITY_CHOICES,
        default="auto",
        help="what the images show; 'auto' decides from the model or the input (default: auto)",
    )


def threshold_value(text: str) -> float:
    """A --threshold: a finite similarity in [-1, 1] (every model's score is a cosine or a weighted mean of cosines;
    NaN would answer every pair "no match", 5 would too)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a similarity threshold lies between -1 and 1")
    return value


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (e.g. a batch size >= 1, a seed >= 0, an image side)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {span}")
        return value

    return parse


def share_value(text: str) -> float:
    """An argparse type: a share in (0, 1] (e.g. --keep)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r}: a share lies in (0, 1]")
    return value


def add_threshold_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold",
        type=threshold_value,
        default=None,
        help="similarity threshold in [-1, 1] (default: the model card's calibrated one)",
    )


def add_gate_flag(parser: argparse.ArgumentParser) -> None:
    """`--gate-mode reject|flag|off`: what the model's out-of-distribution gate does with an input it refuses."""
    parser.add_argument(
        "--gate-mode",
        choices=GATE_MODES,
        default="reject",
        help="an input the model's OOD gate refuses: 'reject' it (default), 'flag' it for review but answer "
        "anyway (signers whose hand the gate mistakes for print), or 'off' (no gate)",
    )


def load_verifier(args: argparse.Namespace, first_image: Any = None) -> Any:
    """A `Verifier` for `--model`, else the bundled model of `--modality` (auto: guessed from `first_image`)."""
    from verify.models.defaults import resolve_model
    from verify.verifier import Verifier

    path = resolve_model(getattr(args, "model", None), getattr(args, "modality", "auto"), image=first_image)
    return Verifier.from_path(
        path, threshold=getattr(args, "threshold", None), gate_mode=getattr(args, "gate_mode", "reject")
    )


def add_set_flag(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set KEY=VALUE` (repeatable) config overrides, collected in `args.overrides`."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one config key (repeatable), e.g. {example}",
    )


def signature_reliability(verifier: Verifier) -> Reliability | None:
    """The measured error rates of a signature verifier's model at its threshold (None for faces, or a model
    without a held-out report): printed under `match` and `identify` answers as the web UI shows them."""
    from verify.eval.reliability import model_reliability

    if verifier.model.modality != "signature":
        return None
    return model_reliability(verifier.model.directory, verifier.model.card, verifier.threshold)
