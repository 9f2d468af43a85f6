"""The verification pipeline: load -> validate -> preprocess -> OOD gate -> embed -> compare/search -> decision.

One `Verifier` wraps one model with its calibrated threshold, its score calibrator (p(match)) and its
out-of-distribution gate, and caches embeddings by image content hash so an image seen twice is embedded once.
What it returns (`Probe`, `Decision`, `Rejection`) is in `verify.decision`.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from verify.decision import GATE_MODES, MATCH, NO_MATCH, REJECTED, UNKNOWN, Decision, GateMode, Probe, Rejection
from verify.errors import ConfigError, ModelError, NoFaceError, VerifyError
from verify.io import image_sha256, load_image
from verify.models.base import Embedder

if TYPE_CHECKING:
    from verify.ood_gate import GateRefusal, OODGate

_NOT_A = {"face": "not a face", "signature": "not a signature"}
_T = TypeVar("_T")
_R = TypeVar("_R")
_FACE_SEARCH_SIDE = 480  # signature inputs are searched for a face on a copy this long (8-12 ms)


def _has_face(image: np.ndarray) -> bool:
    """Whether dlib's face detector finds a face in a decoded image, on a copy at most `_FACE_SEARCH_SIDE` long
    and not upsampled: faces of 80 px and more there, i.e. a face that fills a sixth of the photo's long side (a
    face photo sent as a signature), in a third of the time the default upsampling takes."""
    from verify.preprocess.face_detect import detect_faces

    return bool(detect_faces(image, max_side=_FACE_SEARCH_SIDE, upsample=0))


class Verifier:
    """A model + its threshold, p(match) calibrator and OOD gate.

    Args:
        model: a loaded `Embedder`.
        threshold: similarity threshold; default: the card's calibrated one.
        gate_mode: what the card's OOD gate (when it has one) does with an input it refuses: "reject" (answer
            "rejected"), "flag" (answer anyway, the input flagged for review) or "off" (the gate is not run).
        cache_size: how many embeddings to keep by image hash.
    """

    def __init__(
        self, model: Embedder, threshold: float | None = None, gate_mode: GateMode = "reject", cache_size: int = 2048
    ) -> None:
        if gate_mode not in GATE_MODES:
            raise ConfigError(f"gate mode must be one of {', '.join(GATE_MODES)}, got {gate_mode!r}")
        self.model = model
        self.gate_mode: GateMode = gate_mode
        cal = model.card.get("calibration") or {}
        chosen = threshold if threshold is not None else model.threshold
        if chosen is None:
            raise ConfigError(
                f"model {model.card.get('name')!r} has no calibrated threshold; pass one (--threshold) "
                "or calibrate it with `verify eval --calibrate`"
            )
        self.threshold: float = float(chosen)
        self.threshold_source = "given" if threshold is not None else str(cal.get("source", "model card"))
        self._calibrator = _load_calibrator(cal.get("calibrator"))
        self.ood: OODGate | None = None
        self.ood_threshold: float | None = None
        self.ood_features = str((model.card.get("ood") or {}).get("features", "embedding"))
        if gate_mode != "off":
            self.ood, self.ood_threshold = _load_ood(model)
            if (
                self.ood is not None
                and self.ood_features == "backbone"
                and not hasattr(model, "embed_crops_with_features")
            ):
                raise ModelError(f"{model.card.get('name')}: its OOD gate needs backbone features this model lacks")
        self._cache: OrderedDict[str, Probe] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_path(cls, path: Path | str, **kwargs: Any) -> Verifier:
        from verify.models.loading import load_model

        return cls(load_model(path), **kwargs)

    # --- stages -------------------------------------------------------------------------------------------
    def probe(self, source: Any, name: str | None = None) -> Probe:
        """Decode, preprocess, gate and embed one input (cached by content hash)."""
        return self.probes([source], names=[name])[0]

    def probes(self, sources: Sequence[Any], names: Sequence[str | None] | None = None) -> list[Probe]:
        """Batched `probe`: new images are decoded and preprocessed concurrently (OpenCV and dlib release the
        GIL), then embedded in one batch."""
        names = list(names) if names is not None else [None] * len(sources)
        mode = "gray" if int(self.model.card["input"].get("channels", 3)) == 1 else "rgb"

        def prepare(item: tuple[Any, str | None]) -> tuple[Probe, bool]:
            t0 = time.perf_counter()
            image = load_image(item[0], mode=mode, name=item[1])
            sha = image_sha256(image)
            cached = self._cache.get(sha)
            if cached is not None:
                return cached, False
            decode_ms = 1e3 * (time.perf_counter() - t0)
            probe = self.preprocess_probe(image, sha256=sha)
            probe.timings["decode_ms"] = decode_ms
            face = self._face_check and probe.rejection is None and _has_face(image)
            return probe, face

        prepared = _map_concurrently(prepare, list(zip(sources, names, strict=True)))
        out = [probe for probe, _ in prepared]
        faces = {id(probe) for probe, face in prepared if face}
        todo: list[Probe] = []
        for probe in out:
            if self._cache.get(probe.sha256) is probe:
                self._cache.move_to_end(probe.sha256)
            elif probe.rejected is None:
                todo.append(probe)
            else:
                self._remember(probe)
        if todo:
            t0 = time.perf_counter()
            emb, scores, reasons = self.embed_gated([p.crop for p in todo if p.crop is not None])
            per = 1e3 * (time.perf_counter() - t0) / len(todo)
            for j, (probe, e) in enumerate(zip(todo, emb, strict=True)):
                probe.embedding = e
                probe.timings["embed_ms"] = per
                if scores is not None:
                    probe.ood_score = float(scores[j])
                    refusal = self._face_refusal(reasons[j], id(probe) in faces)
                    probe.rejection, probe.flag = self._gate_outcome(refusal)
                self._remember(probe)
        return out

    @property
    def _face_check(self) -> bool:
        """Whether signature inputs are searched for a face (a signature model with an outlier-exposure gate)."""
        from verify.ood_gate import OutlierExposureGate

        return self.model.modality == "signature" and isinstance(self.ood, OutlierExposureGate)

    @staticmethod
    def _face_refusal(refusal: GateRefusal | None, face: bool) -> GateRefusal | None:
        """The gate's `refusal` of a signature input, or "it looks like a face photo" when a face detector found
        a face in it, whatever the gate said: a face photo sent as a signature is the mistake users make most,
        the gate's guess of the kind is unreliable on real photos, and a weak gate may even accept one. (No face
        was found in any of 3,498 signature images of the synthetic and real sets.)"""
        if not face:
            return refusal
        from verify.ood_gate import GateRefusal, kind_words

        message = f"{_NOT_A['signature']}: it looks like {kind_words('faces')} (a face was found in it)"
        return GateRefusal(message, looks_like="faces")

    def preprocess_probe(self, image: np.ndarray, sha256: str | None = None) -> Probe:
        """A decoded image -> a `Probe` with its hash (computed unless given), crop and preprocessing verdict
        (not yet embedded)."""
        probe = Probe(sha256=sha256 or image_sha256(image), embedding=None, crop=None)
        self._preprocess(image, probe)
        return probe

    def _preprocess(self, image: np.ndarray, probe: Probe) -> None:
        t0 = time.perf_counter()
        try:
            crop = self.model.preprocess(image)
        except NoFaceError as exc:
            probe.rejection = Rejection("no_face", f"{_NOT_A['face']}: {exc}")
        else:
            probe.crop, probe.info = crop.image, dict(crop.info)
            if self.model.modality == "signature" and crop.info.get("ink_fraction", 1.0) == 0:
                probe.rejection = Rejection("blank_page", f"{_NOT_A['signature']}: the page is blank")
        probe.timings["preprocess_ms"] = 1e3 * (time.perf_counter() - t0)

    def embed_gated(
        self, crops: Sequence[np.ndarray], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray | None, list[GateRefusal | None]]:
        """Embed crops and pass them through the OOD gate in one pass.

        Returns:
            embeddings [N, D], OOD scores [N] (None without a gate), a rejection reason per crop (None = accepted).
        """
        if self.ood is not None and self.ood_features == "backbone":
            emb, feats = self.model.embed_crops_with_features(crops, batch_size=batch_size)  # type: ignore[attr-defined]
            return (emb, *self.ood_check(feats, crops))
        emb = self.model.embed_crops(crops, batch_size=batch_size)
        return (emb, *self.ood_check(emb, crops))

    def ood_check(
        self, features: np.ndarray, crops: Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray | None, list[GateRefusal | None]]:
        """The OOD gate over a batch [N, F] of the features it was fitted on (`ood_features`: backbone features
        or embeddings) and their crops (the outlier-exposure gate reads their ink): scores [N] (None without a
        gate) and a rejection reason per row (None when accepted)."""
        if self.ood is None or self.ood_threshold is None or len(features) == 0:
            return None, [None] * len(features)
        return self.ood.check(np.asarray(features), crops, _NOT_A[self.model.modality])

    def _gate_outcome(self, refusal: GateRefusal | None) -> tuple[Rejection | None, Rejection | None]:
        """(rejection, flag) of an input the gate gave `refusal` (None: accepted): the one place the gate mode
        decides whether a refusal rejects the input or only flags it."""
        if refusal is None:
            return None, None
        verdict = Rejection("out_of_distribution", refusal.message, refusal.looks_like)
        return (None, verdict) if self.gate_mode == "flag" else (verdict, None)

    def gate_verdict(self, refusal: GateRefusal | None) -> tuple[str | None, str | None]:
        """(rejected, flagged): the message of the gate's `refusal` (from `embed_gated`) as a rejection, or with
        gate mode "flag" as a flag on an input that is answered anyway; (None, None) when it was accepted."""
        rejection, flag = self._gate_outcome(refusal)
        return (None if rejection is None else rejection.message), (None if flag is None else flag.message)

    def _remember(self, probe: Probe) -> None:
        self._cache[probe.sha256] = probe
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def probability(self, score: float) -> float | None:
        if self._calibrator is None:
            return None
        return float(np.asarray(self._calibrator.predict_proba(np.array([score], np.float64))).ravel()[0])

    # --- questions ----------------------------------------------------------------------------------------
    def _base(self, probes: Sequence[Probe]) -> Decision:
        timings: dict[str, float] = {}
        for p in probes:
            for k, v in p.timings.items():
                timings[k] = timings.get(k, 0.0) + v
        notes = [str(p.info["note"]) for p in probes if p.info.get("note")]
        named = len(probes) > 1
        flags = [f"input {i + 1}: {p.flagged}" if named else str(p.flagged) for i, p in enumerate(probes) if p.flagged]
        return Decision(
            decision=REJECTED,
            threshold=self.threshold,
            threshold_source=self.threshold_source,
            ood_scores=[p.ood_score for p in probes],
            ood_threshold=self.ood_threshold,
            notes=notes,
            flags=flags,
            refusals=[p.rejection.kind for p in probes if p.rejection is not None],
            timings_ms=timings,
            model=str(self.model.card.get("name", "")),
            crops=[p.crop for p in probes],
        )

    def match(self, a: Any, b: Any, names: Sequence[str | None] = (None, None)) -> Decision:
        """1:1 verification of two inputs."""
        t0 = time.perf_counter()
        pa, pb = self.probes([a, b], names=list(names))
        result = self._base([pa, pb])
        rejected = [f"input {i + 1}: {p.rejected}" for i, p in enumerate((pa, pb)) if p.rejected]
        if rejected:
            result.reason = "; ".join(rejected)
        else:
            assert pa.embedding is not None and pb.embedding is not None
            result.score = float(np.dot(pa.embedding, pb.embedding))
            result.probability = self.probability(result.score)
            result.decision = MATCH if result.score >= self.threshold else NO_MATCH
        result.timings_ms["total_ms"] = 1e3 * (time.perf_counter() - t0)
        return result

    def identify(self, image: Any, gallery: Any, k: int = 5, name: str | None = None) -> Decision:
        """1:N open-set identification: the best identity above the threshold, else "unknown"."""
        t0 = time.perf_counter()
        probe = self.probe(image, name=name)
        result = self._base([probe])
        if probe.rejected:
            result.reason = probe.rejected
        else:
            assert probe.embedding is not None
            t1 = time.perf_counter()
            found = gallery.identify(probe.embedding, threshold=self.threshold, k=k)
            result.timings_ms["search_ms"] = 1e3 * (time.perf_counter() - t1)
            result.candidates = [(str(n), float(s)) for n, s in found.candidates]
            result.score = None if found.score is None else float(found.score)
            result.probability = None if result.score is None else self.probability(result.score)
            result.identity = found.name
            result.decision = MATCH if found.name is not None else UNKNOWN
        result.timings_ms["total_ms"] = 1e3 * (time.perf_counter() - t0)
        return result

    def verify_claim(self, image: Any, gallery: Any, claimed: str, name: str | None = None) -> Decision:
        """1:1 against an enrolled identity's template (max over its samples)."""
        probe = self.probe(image, name=name)
        result = self._base([probe])
        result.identity = claimed
        if probe.rejected:
            result.reason = probe.rejected
            return result
        assert probe.embedding is not None
        threshold = self.threshold
        per_id = getattr(gallery, "identity_threshold", None)
        if callable(per_id) and per_id(claimed) is not None:
            threshold, result.threshold_source = float(per_id(claimed)), f"per-identity threshold of {claimed}"
            result.threshold = threshold
        result.score = float(gallery.verify(probe.embedding, claimed))
        result.probability = self.probability(result.score)
        result.decision = MATCH if result.score >= threshold else NO_MATCH
        return result

    def embed_or_raise(self, source: Any, name: str | None = None) -> Probe:
        """`probe`, raising the typed error when the input is rejected (for enrollment)."""
        probe = self.probe(source, name=name)
        if probe.rejection is not None:
            raise probe.rejection.error(name)
        return probe


def _map_concurrently(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """`[fn(x) for x in items]`, on up to one thread per CPU core when there are several items."""
    workers = min(len(items), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    if workers < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify-preprocess") as pool:
        return list(pool.map(fn, items))


def _load_calibrator(section: dict[str, Any] | None) -> Any:
    if not section:
        return None
    from verify.eval.calibration import ScoreCalibrator

    return ScoreCalibrator.from_dict(section)


def _load_ood(model: Embedder) -> tuple[OODGate | None, float | None]:
    section = model.card.get("ood") or {}
    if not section.get("file"):
        return None, None
    if model.directory is None:
        return None, None
    from verify.ood_gate import load_gate

    path = Path(model.directory) / str(section["file"])
    if not path.is_file():
        raise VerifyError(f"{path}: the OOD scorer named in the model card is missing")
    gate = load_gate(path, section)
    return gate, gate.threshold
