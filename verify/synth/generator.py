"""Generator v2: synthetic *name* signatures, their genuine repetitions, skilled and simple forgeries.

A writer is a person's name, a layout (full name, initial + surname, ...) and a `HandStyle`; everything follows
from (seed, writer id), so any writer can be drawn at any time, in any process, without the others::

    gen = NameSignatureGenerator(seed=0)
    image = gen.render(writer_id=17, kind="genuine", index=3)   # uint8 RGB [H, W, 3]

Kinds: "genuine" (a repetition by the writer), "skilled" (a forger who has seen the signature copies it:
slower, shakier, blunt ends, pen lifts, misjudged proportions), "simple" (a forger who knows only the name
writes it in their own hand).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from verify.errors import ConfigError
from verify.synth.compose import compose
from verify.synth.glyphs import PRINT_FONTS
from verify.synth.hand import HandStyle, perturb_hand, sample_hand
from verify.synth.motion import GENUINE, execute, forger_manner
from verify.synth.names import Layout, PersonName, sample_layout, sample_name, signed_words
from verify.synth.scan import ScanConfig, create_profile, render_scan
from verify.synth.writer import Trace

Kind = Literal["genuine", "skilled", "simple"]
KINDS: tuple[Kind, ...] = ("genuine", "skilled", "simple")
_WRITER, _GENUINE, _SKILLED, _SIMPLE, _FORGER, _SCAN, _SESSION, _CAPS = range(8)
_TAG = 2  # marks v2 seeds apart from v1's (seed, writer, purpose, index) sequences
_WRITER_CACHE = 256  # writers kept drawn per generator


@dataclass(frozen=True)
class SynthWriter:
    """One synthetic writer: who they are and how they sign."""

    writer_id: int
    name: PersonName
    layout: Layout
    words: tuple[str, ...]  # what they sign, e.g. ("A.", "Koene")
    hand: HandStyle


@dataclass(frozen=True)
class _Forger:
    hand: HandStyle  # the forger's own hand
    seen: HandStyle  # the forger's reading of the genuine signature's geometry (misjudged proportions)


class NameSignatureGenerator:
    """Deterministic, stateless source of synthetic name signatures (generator v2).

    Args:
        seed: dataset seed; (seed, writer id, kind, index) fixes every image.
        scan: framing (tight crops or a fixed canvas) and scan randomisation.
        forgers_per_writer: skilled (and simple) forgeries of one writer come from this many forgers in turn.
        all_caps_share: share of print-hand writers who sign their name all in capitals ("KAFAEL QUINN"). Drawn
            from its own random stream, so 0 (the default, as v2 was made) leaves every writer as it was, and a
            larger share changes only the writers it picks.
    """

    def __init__(
        self, seed: int = 0, scan: ScanConfig | None = None, forgers_per_writer: int = 3, all_caps_share: float = 0.0
    ) -> None:
        if forgers_per_writer < 1:
            raise ConfigError(f"forgers_per_writer must be >= 1, got {forgers_per_writer}")
        if not 0.0 <= all_caps_share <= 1.0:
            raise ConfigError(f"all_caps_share must be in [0, 1], got {all_caps_share}")
        self.all_caps_share = float(all_caps_share)
        self.seed = int(seed)
        self.scan = scan or ScanConfig()
        self.forgers_per_writer = forgers_per_writer
        self._writers: dict[int, SynthWriter] = {}  # recently drawn writers (a few renders each, in a row)

    def _rng(self, writer_id: int, purpose: int, index: int = 0) -> np.random.Generator:
        if writer_id < 0 or index < 0:
            raise ConfigError(f"writer id and index must be >= 0, got writer {writer_id}, index {index}")
        return np.random.default_rng(np.random.SeedSequence([self.seed, _TAG, writer_id, purpose, index]))

    def writer(self, writer_id: int) -> SynthWriter:
        """The writer with this id (name, layout, hand)."""
        cached = self._writers.get(writer_id)
        if cached is None:
            if len(self._writers) >= _WRITER_CACHE:
                self._writers.clear()
            cached = self._writers[writer_id] = self._draw_writer(writer_id)
        return cached

    def _draw_writer(self, writer_id: int) -> SynthWriter:
        rng = self._rng(writer_id, _WRITER)
        name, layout = sample_name(rng), sample_layout(rng)
        hand = sample_hand(rng)
        words = tuple(signed_words(name, layout, dots=bool(rng.random() < 0.5)))
        if (
            layout == "initials" and hand.flourish == "none"
        ):  # bare initials are rare: a flourish makes them a signature
            hand = replace(hand, flourish=("paraph", "underline", "tail", "loop")[int(rng.integers(4))])
        if hand.font in PRINT_FONTS and self._rng(writer_id, _CAPS).random() < self.all_caps_share:
            words, hand = tuple(w.upper() for w in words), replace(hand, caps_font=hand.font, caps_scale=1.0)
        return SynthWriter(writer_id=writer_id, name=name, layout=layout, words=words, hand=hand)

    def _forger(self, writer: SynthWriter, k: int) -> _Forger:
        rng = self._rng(writer.writer_id, _FORGER, k)
        own = sample_hand(rng)
        seen = perturb_hand(writer.hand, rng, amount=5.0)
        seen = replace(
            seen,
            deform=writer.hand.deform * float(rng.uniform(0.4, 0.9)),  # the writer's quirks, partly smoothed out
            pressure=own.pressure,
            pressure_wave=own.pressure_wave,
            taper=own.taper,
            pen_mm=own.pen_mm if rng.random() < 0.5 else writer.hand.pen_mm * float(np.exp(rng.normal(0.0, 0.15))),
            blue_ink=bool(rng.random() < 0.5),
        )
        return _Forger(hand=own, seen=seen)

    def traces(self, writer_id: int, kind: Kind, index: int) -> tuple[list[Trace], HandStyle]:
        """Pen-down traces of one sample (x-height units, y up) and the hand that wrote it."""
        writer = self.writer(writer_id)
        if kind == "genuine":
            rng = self._rng(writer_id, _GENUINE, index)
            hand = perturb_hand(writer.hand, rng)
            return execute(compose(list(writer.words), hand, rng), hand, GENUINE, rng), hand
        forger = self._forger(writer, index % self.forgers_per_writer)
        if kind == "skilled":
            rng = self._rng(writer_id, _SKILLED, index)
            manner = forger_manner(self._rng(writer_id, _FORGER, 1000 + index % self.forgers_per_writer))
            hand = perturb_hand(forger.seen, rng, amount=1.5)
            return execute(compose(list(writer.words), hand, rng, jitter=0.12), hand, manner, rng), hand
        if kind == "simple":
            rng = self._rng(writer_id, _SIMPLE, index)
            layout = sample_layout(self._rng(writer_id, _FORGER, 2000 + index % self.forgers_per_writer))
            words = signed_words(writer.name, layout, dots=bool(rng.random() < 0.5))
            hand = perturb_hand(forger.hand, rng)
            return execute(compose(words, hand, rng), hand, GENUINE, rng), hand
        raise ConfigError(f"unknown signature kind {kind!r}; use one of {', '.join(KINDS)}")

    def render(self, writer_id: int, kind: Kind = "genuine", index: int = 0) -> np.ndarray:
        """One scanned sample: uint8 RGB [H, W, 3] (ink on paper); H, W fixed only when `scan.canvas` is set."""
        traces, hand = self.traces(writer_id, kind, index)
        rng = self._rng(writer_id, _SCAN, index * len(KINDS) + KINDS.index(kind))
        if rng.random() < self.scan.session_share:
            profile = create_profile(self.scan, self.writer(writer_id).hand.blue_ink, self._rng(writer_id, _SESSION))
        else:
            profile = create_profile(self.scan, hand.blue_ink, rng)
        return render_scan(traces, hand.pen_mm, hand.xheight_mm, profile, self.scan, rng)

    def writer_samples(
        self, writer_id: int, genuine: int, skilled: int = 0, simple: int = 0, start: int = 0
    ) -> dict[Kind, list[np.ndarray]]:
        """`genuine` + `skilled` + `simple` images of one writer, indices from `start`."""
        counts: dict[Kind, int] = {"genuine": genuine, "skilled": skilled, "simple": simple}
        return {k: [self.render(writer_id, k, start + i) for i in range(n)] for k, n in counts.items()}

    def pk_batch(
        self, writer_ids: list[int], genuine: int, skilled: int = 0, simple: int = 0, start: int = 0
    ) -> list[tuple[np.ndarray, int, Kind]]:
        """A P x K batch: for each writer, `genuine` repetitions, then `skilled` and `simple` forgeries of them.

        Returns:
            (image, writer id the sample claims to be, kind) triples, writer by writer.
        """
        out: list[tuple[np.ndarray, int, Kind]] = []
        for w in writer_ids:
            for kind, images in self.writer_samples(w, genuine, skilled, simple, start).items():
                out.extend((img, w, kind) for img in images)
        return out
