"""Images -> embeddings on Ray Data: decoding, preprocessing, embedding and the OOD gate in an actor pool.

Each actor loads the model once (`EmbedActor.__init__`) and reuses the local engine's `DecodeDataset` item by
item. On a CPU cluster one actor does all of it for its block of images (`DecodeEmbedActor`), so a crop never
travels between processes; with GPUs, decoding and preprocessing are CPU tasks (one `Verifier` per worker
process) feeding GPU actors that only embed. Results come back to the caller in input order as `ImageResult`s,
the local engine's type.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from verify.batch.images import DecodeDataset, ImageResult
from verify.decision import GateMode
from verify.errors import ConfigError, VerifyError
from verify.verifier import Verifier

RAY_MISSING = 'Ray is not installed; install the distributed extra: pip install "siamese-verify[distributed]"'
_VERIFIERS: dict[tuple[str, float, GateMode], Verifier] = {}  # one per worker process and model


@dataclass(frozen=True)
class RayOptions:
    """Where and how the Ray stages run.

    Attributes:
        address: a running cluster ("auto", "ray://host:10001", "host:6379"); None starts a local one (or uses
            RAY_ADDRESS when set).
        num_cpus: CPUs of a local cluster started here (default: all of this machine's).
        actors: embedding actors (default: one per GPU when the cluster has GPUs, else one per CPU).
        batch_size: images per embedding batch.
        block_rows: images per Ray Data block (the unit of scheduling and of streaming results back).
        partition_rows: rows per output partition (the unit of resume).
        progress: Ray Data's progress bars on stderr.
    """

    address: str | None = None
    num_cpus: int | None = None
    actors: int | None = None
    batch_size: int = 64
    block_rows: int = 512
    partition_rows: int = 10_000
    progress: bool = False

    def __post_init__(self) -> None:
        if min(self.batch_size, self.block_rows, self.partition_rows) < 1 or (self.actors or 1) < 1:
            raise ConfigError(
                f"need batch size, block rows, partition rows and actors >= 1; got {self.batch_size}, "
                f"{self.block_rows}, {self.partition_rows}, {self.actors}"
            )


def connect(options: RayOptions) -> Any:
    """The `ray` module, connected to `options.address` (or a new local cluster); reuses an open connection."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    if not ray.is_initialized():
        address = options.address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": options.progress}
        if address is None:
            kwargs["num_cpus"] = options.num_cpus
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot connect to the Ray cluster at {address!r}: {str(exc).splitlines()[0]}") from exc
    _quiet(options.progress)
    return ray


def _quiet(progress: bool) -> None:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True  # results stream back in input order: partitions finish in order
    ctx.enable_progress_bars = progress
    if not progress:
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def _verifier(model: str, threshold: float, gate_mode: GateMode) -> Verifier:
    key = (model, threshold, gate_mode)
    if key not in _VERIFIERS:
        _VERIFIERS[key] = Verifier.from_path(model, threshold=threshold, gate_mode=gate_mode)
    return _VERIFIERS[key]


def decode_batch(
    batch: dict[str, np.ndarray], model: str, threshold: float, gate_mode: GateMode
) -> dict[str, np.ndarray]:
    """Paths -> crops: one Ray Data task per block (`path` [B] -> `crop` [B, ...] + status columns)."""
    verifier = _verifier(model, threshold, gate_mode)
    items = DecodeDataset([str(p) for p in batch["path"]], verifier)
    decoded = [items[i] for i in range(len(items))]
    height, width = int(verifier.model.card["input"]["height"]), int(verifier.model.card["input"]["width"])
    channels = int(verifier.model.card["input"].get("channels", 3))
    blank = np.zeros((height, width) if channels == 1 else (height, width, 3), np.uint8)
    crops = [d.probe.crop if d.probe is not None and d.probe.crop is not None else blank for d in decoded]
    return {
        "path": np.array([d.path for d in decoded], dtype=object),
        "sha256": np.array([d.probe.sha256 if d.probe else "" for d in decoded], dtype=object),
        "crop": _stack(crops),
        "error": np.array([d.error or "" for d in decoded], dtype=object),
        "rejected": np.array([(d.probe.rejected or "") if d.probe else "" for d in decoded], dtype=object),
        "elapsed_ms": np.array([d.elapsed_ms for d in decoded], dtype=np.float64),
    }


def _stack(crops: list[np.ndarray]) -> np.ndarray:
    if len({c.shape for c in crops}) <= 1:
        return np.stack(crops) if crops else np.zeros((0, 1), np.uint8)
    out = np.empty(len(crops), dtype=object)
    out[:] = crops
    return out


class EmbedActor:
    """Embeds crops and applies the OOD gate; the model is loaded once per actor.

    Args:
        model: model directory, readable on every node.
        threshold: the job's similarity threshold (only so the verifier builds; scoring is done by the caller).
        gate_mode: the job's gate mode (`Verifier`'s `gate_mode`).
        batch_size: images per forward pass.
        threads: torch threads of this actor.
    """

    def __init__(self, model: str, threshold: float, gate_mode: GateMode, batch_size: int, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.verifier = _verifier(model, threshold, gate_mode)
        self.batch_size = batch_size
        self.dim = self.verifier.model.dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["path"])
        rejected = np.array([str(r) for r in batch["rejected"]], dtype=object)
        todo = [i for i in range(n) if not batch["error"][i] and not rejected[i]]
        emb = np.zeros((n, self.dim), np.float32)
        ood = np.full(n, np.nan)
        flagged = np.full(n, "", dtype=object)
        elapsed = np.asarray(batch["elapsed_ms"], dtype=np.float64).copy()
        if todo:
            t0 = time.perf_counter()
            e, scores, reasons = self.verifier.embed_gated([batch["crop"][i] for i in todo], self.batch_size)
            share = 1e3 * (time.perf_counter() - t0) / len(todo)
            for j, i in enumerate(todo):
                emb[i], elapsed[i] = e[j], elapsed[i] + share
                if scores is not None:
                    refused, flag = self.verifier.gate_verdict(reasons[j])
                    ood[i], rejected[i], flagged[i] = float(scores[j]), refused or "", flag or ""
        has = np.zeros(n, bool)
        has[todo] = [not rejected[i] for i in todo]
        return {
            "path": batch["path"],
            "sha256": batch["sha256"],
            "embedding": emb,
            "has_embedding": has,
            "ood_score": ood,
            "error": batch["error"],
            "rejected": rejected,
            "flagged": flagged,
            "elapsed_ms": elapsed,
        }


class DecodeEmbedActor(EmbedActor):
    """Decode + preprocess + embed + OOD gate in one actor (CPU clusters): a crop never leaves its process."""

    def __init__(self, model: str, threshold: float, gate_mode: GateMode, batch_size: int, threads: int = 1) -> None:
        super().__init__(model, threshold, gate_mode, batch_size, threads)
        self.args = (model, threshold, gate_mode)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return super().__call__(decode_batch(batch, *self.args))


def plan(n: int, gpus: int, cpus: int, options: RayOptions) -> tuple[int, int]:
    """(actors, blocks) for `n` images: one actor per GPU (else per CPU) unless `options.actors`, never more
    actors than blocks; blocks of at most `options.block_rows` images and at least 4 per actor, so the last
    blocks of a job keep every actor busy."""
    actors = options.actors or (gpus if gpus else cpus)
    blocks = max(1, min(n, max(math.ceil(n / options.block_rows), 4 * actors), 10_000))
    return min(actors, blocks), blocks


def embedding_dataset(ray: Any, paths: Sequence[str], verifier: Verifier, options: RayOptions) -> Any:
    """The lazy Ray Dataset of `paths` -> EmbedActor output columns (one row per path, input order).

    Without GPUs, one actor pool decodes, preprocesses and embeds (`DecodeEmbedActor`); with GPUs, decoding and
    preprocessing are CPU tasks and the GPU actors only embed.
    """
    import ray.data

    model = verifier.model.directory
    if model is None:
        raise ConfigError("the Ray engine needs a model loaded from a directory (every actor loads it)")
    args = {"model": str(model), "threshold": float(verifier.threshold), "gate_mode": verifier.gate_mode}
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    actors, blocks = plan(len(paths), gpus, cpus, options)
    per = math.ceil(len(paths) / blocks) if paths else 1
    frames = [pd.DataFrame({"path": list(paths[i : i + per])}) for i in range(0, max(len(paths), 1), per)]
    ds = ray.data.from_pandas(frames)
    pool = {"compute": ray.data.ActorPoolStrategy(size=actors), "batch_format": "numpy", "batch_size": None}
    kwargs = {**args, "batch_size": options.batch_size}
    if not gpus:
        return ds.map_batches(DecodeEmbedActor, fn_constructor_kwargs=kwargs, num_cpus=1, **pool)
    ds = ds.map_batches(decode_batch, fn_kwargs=args, batch_format="numpy", batch_size=None, num_cpus=1)
    return ds.map_batches(EmbedActor, fn_constructor_kwargs=kwargs, num_cpus=0, num_gpus=1, **pool)


def iter_image_results(
    paths: Sequence[str], verifier: Verifier, options: RayOptions
) -> Iterator[list[tuple[str, ImageResult]]]:
    """Embed `paths` on the cluster; yields (path, result) lists in input order, a block at a time."""
    if not paths:
        return
    ray = connect(options)
    ds = embedding_dataset(ray, paths, verifier, options)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
            yield list(_results(batch))
    except ray.exceptions.RayError as exc:
        raise VerifyError(f"the Ray job failed: {_cause(exc)}") from exc


def _cause(exc: BaseException) -> str:
    """The last `SomeError: message` line of a Ray error (the worker's own exception), else its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return (causes or lines or [type(exc).__name__])[-1 if causes else 0]


def _results(batch: dict[str, np.ndarray]) -> Iterator[tuple[str, ImageResult]]:
    for i, path in enumerate(batch["path"]):
        ood = float(batch["ood_score"][i])
        yield (
            str(path),
            ImageResult(
                sha256=str(batch["sha256"][i]),
                embedding=np.asarray(batch["embedding"][i], np.float32) if batch["has_embedding"][i] else None,
                ood_score=None if math.isnan(ood) else ood,
                error=str(batch["error"][i]) or None,
                rejected=str(batch["rejected"][i]) or None,
                flagged=str(batch["flagged"][i]) or None,
                elapsed_ms=float(batch["elapsed_ms"][i]),
            ),
        )
