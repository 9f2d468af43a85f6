"""Decode + preprocess images in DataLoader worker processes, embed them in the main process in batches.

Each distinct path is decoded once and each distinct image content (sha256 of the decoded pixels) is embedded
once; `ImageCache` keeps path -> `ImageResult` for the whole run, which is small (one [D] vector per image).
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from verify.batch import uri
from verify.decision import Probe
from verify.errors import VerifyError
from verify.io import MAX_BYTES, load_image
from verify.verifier import Verifier


@dataclass
class ImageResult:
    """One image after the pipeline.

    Attributes:
        sha256: content hash of the decoded pixels ("" when it could not be decoded).
        embedding: float32 [D], or None when the image failed or was rejected.
        ood_score: the OOD gate's score, when the model has a gate and the image was embedded.
        error: why the image could not be used (missing, corrupt, ...), else None.
        rejected: why the pipeline refused it (blank page, no face, OOD), else None.
        flagged: why the OOD gate refused it when the verifier's gate mode is "flag" (embedded and answered
            anyway), else None.
        elapsed_ms: decode + preprocess + this image's share of its embedding batch.
    """

    sha256: str
    embedding: np.ndarray | None = None
    ood_score: float | None = None
    error: str | None = None
    rejected: str | None = None
    flagged: str | None = None
    elapsed_ms: float = 0.0


@dataclass
class _Decoded:
    path: str
    probe: Probe | None
    error: str | None
    elapsed_ms: float


class DecodeDataset(Dataset):
    """Paths -> decoded, preprocessed crops (runs in DataLoader workers; no torch work here).

    Args:
        paths: image paths, or URIs of a pyarrow filesystem (read into memory, then decoded).
        verifier: whose model preprocesses (and, for signatures, whose blank-page rule applies).
    """

    def __init__(self, paths: Sequence[str], verifier: Verifier) -> None:
        self.paths = list(paths)
        self.verifier = verifier
        channels = int(verifier.model.card["input"].get("channels", 3))
        self.mode = "gray" if channels == 1 else "rgb"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> _Decoded:
        path = self.paths[i]
        t0 = time.perf_counter()
        try:
            source = uri.read_uri(path, MAX_BYTES) if uri.is_remote(path) else path  # s3://, gs://, ...
            image = load_image(source, mode=self.mode, name=path)
            probe = self.verifier.preprocess_probe(image)
        except VerifyError as exc:
            return _Decoded(path, None, _one_line(str(exc)), 1e3 * (time.perf_counter() - t0))
        return _Decoded(path, probe, None, 1e3 * (time.perf_counter() - t0))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _collate(items: list[_Decoded]) -> list[_Decoded]:
    return items


@dataclass
class ImageCache:
    """path -> ImageResult for every image seen in the run, and sha256 -> embedding to embed content once."""

    by_path: dict[str, ImageResult] = field(default_factory=dict)
    by_sha: dict[str, ImageResult] = field(default_factory=dict)
    decoded: int = 0
    embedded: int = 0

    def __contains__(self, path: str) -> bool:
        return path in self.by_path


def iter_embedded(
    paths: Sequence[str], verifier: Verifier, cache: ImageCache, workers: int = 0, batch_size: int = 32
) -> Iterator[int]:
    """Fill `cache` for `paths` (skipping those already there), one batch at a time.

    Yields:
        after each batch, how many images it resolved.
    """
    todo = [p for p in dict.fromkeys(paths) if p not in cache]
    if not todo:
        return
    loader = DataLoader(
        DecodeDataset(todo, verifier),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        multiprocessing_context=_context() if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=False,
        worker_init_fn=functools.partial(_die_with_parent, os.getpid()) if workers > 0 else None,
    )
    for batch in loader:
        _embed_batch(batch, verifier, cache, batch_size)
        yield len(batch)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int, worker_id: int) -> None:
    """DataLoader worker init: the kernel kills this worker when its parent dies, even by SIGKILL (a worker
    blocked on a full result pipe would otherwise live on, holding its memory)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _context() -> Any:
    # fork: workers share the loaded model with the parent instead of unpickling it (Linux default < 3.14).
    # Workers run no torch op and must not call cv2.setNumThreads: in a forked child it joins the parent's
    # pool threads, which do not exist there, and hangs (seen); cv2's own calls are fork-safe.
    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None


def _embed_batch(batch: list[_Decoded], verifier: Verifier, cache: ImageCache, batch_size: int) -> None:
    cache.decoded += len(batch)
    todo: list[tuple[np.ndarray, ImageResult]] = []
    for item in batch:
        if item.probe is None:
            cache.by_path[item.path] = ImageResult("", error=item.error, elapsed_ms=item.elapsed_ms)
            continue
        probe = item.probe
        known = cache.by_sha.get(probe.sha256)
        if known is not None:  # same pixels under another path: embedded once, the result object shared
            cache.by_path[item.path] = known
            continue
        result = ImageResult(probe.sha256, rejected=probe.rejected, elapsed_ms=item.elapsed_ms)
        if probe.rejected is None and probe.crop is not None:
            todo.append((probe.crop, result))
        cache.by_path[item.path] = cache.by_sha[probe.sha256] = result
    if not todo:
        return
    t0 = time.perf_counter()
    emb, scores, reasons = verifier.embed_gated([crop for crop, _ in todo], batch_size=batch_size)
    if scores is not None:
        for (_, result), score, reason in zip(todo, scores, reasons, strict=True):
            result.ood_score = float(score)
            result.rejected, result.flagged = verifier.gate_verdict(reason)
    share = 1e3 * (time.perf_counter() - t0) / len(todo)
    cache.embedded += len(todo)
    for (_, result), e in zip(todo, emb, strict=True):
        result.embedding = None if result.rejected else e
        result.elapsed_ms += share
