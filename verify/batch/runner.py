"""`run_batch`: score every row of a pairs/claims CSV, streaming results to a resumable journal."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from verify.batch import uri
from verify.batch.images import ImageCache, ImageResult, iter_embedded
from verify.batch.output import ResultJournal
from verify.batch.reader import RESULT_COLUMNS, BatchInput, check_gallery_use, read_batch_input, source_path
from verify.batch.shard import Shard
from verify.decision import MATCH, NO_MATCH, REJECTED
from verify.errors import ConfigError, VerifyError
from verify.verifier import Verifier

CHUNK_SLEEP_ENV = "VERIFY_BATCH_CHUNK_SLEEP"  # test hook: seconds to sleep after each durable chunk


@dataclass(frozen=True)
class BatchConfig:
    """One batch job.

    Attributes:
        pairs: the input CSV or Parquet file: a path or a pyarrow filesystem URI (`file:///...`, `s3://...`).
        out: the results CSV.
        images_root: relative image paths resolve here, a path or a URI (default: the input's folder).
        resume: take up an interrupted run (or a finished one) instead of refusing its journal.
        workers: DataLoader worker processes decoding + preprocessing (0: in the main process).
        batch_size: images per embedding batch.
        shard: the part of the rows this job does.
        chunk_rows: rows per durable write to the journal.
        gallery: gallery directory, for claims CSVs (questioned,claimed_identity).
        allow_outside_root: accept image paths outside `images_root` (`../`, absolute paths elsewhere); by
            default such a row gets an error.
    """

    pairs: Path | str
    out: Path
    images_root: Path | str | None = None
    resume: bool = False
    workers: int = 0
    batch_size: int = 32
    shard: Shard = field(default_factory=Shard)
    chunk_rows: int = 256
    gallery: Path | None = None
    allow_outside_root: bool = False

    def __post_init__(self) -> None:
        if self.workers < 0 or self.batch_size < 1 or self.chunk_rows < 1:
            raise ConfigError(
                f"need workers >= 0, batch size >= 1, chunk rows >= 1; got {self.workers}, {self.batch_size}, "
                f"{self.chunk_rows}"
            )
        local = uri.as_local(str(self.pairs))
        if local is not None and Path(self.out).resolve() == Path(local).resolve():
            raise ConfigError(f"--out {self.out} is the input file; choose another path")


@dataclass
class BatchSummary:
    """What a run did. ok / failed / rejected / flagged count the whole output file; `failed` = rows with an error
    (missing, corrupt or rejected input, unknown identity), `rejected` = of those, refused by the pipeline;
    `flagged` = rows answered although the OOD gate refused an image of theirs (gate mode "flag")."""

    out: Path
    rows: int  # rows of this shard
    resumed: int  # of which were already in the output before this run
    processed: int
    ok: int
    failed: int
    rejected: int
    images_decoded: int
    images_embedded: int
    seconds: float
    report: Path | None = None
    flagged: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["out"], out["report"] = str(self.out), None if self.report is None else str(self.report)
        out["rows_per_s"] = round(self.rows_per_s, 2)
        return out


def run_batch(
    verifier: Verifier,
    config: BatchConfig,
    gallery: Any = None,
    progress: bool = True,
    cache: ImageCache | None = None,
) -> BatchSummary:
    """Score every row of `config.pairs` in `config.shard` and write `config.out` (+ a report with labels).

    Args:
        verifier: the model, threshold, calibrator and OOD gate to use.
        config: the job.
        gallery: an open gallery with `verify(embedding [D], claimed) -> float`, for claims CSVs.
        progress: show a tqdm bar (rows/s) on stderr.
        cache: embeddings of images already seen (path -> result), kept across runs by the caller; filled in.

    Raises:
        VerifyError: a bad input CSV, a claims CSV without a gallery, a journal from other settings.
    """
    t0 = time.perf_counter()
    data = read_batch_input(config.pairs, config.images_root, allow_outside_root=config.allow_outside_root)
    check_gallery_use(data, gallery is not None, config.pairs)
    columns = [*data.frame.columns, *RESULT_COLUMNS]
    meta = _meta(verifier, config, data)
    journal = ResultJournal(Path(config.out), columns, data.key, meta)
    done = journal.open(config.resume)
    todo = [i for i, k in enumerate(data.keys) if config.shard.holds(k) and k not in done]
    in_shard = sum(config.shard.holds(k) for k in data.keys)
    summary = BatchSummary(Path(config.out), in_shard, in_shard - len(todo), 0, 0, 0, 0, 0, 0, 0.0)
    cache = ImageCache() if cache is None else cache
    decoded, embedded = cache.decoded, cache.embedded
    from tqdm import tqdm

    with tqdm(total=len(todo), unit="row", desc="batch", disable=not progress, file=sys.stderr) as bar:
        for chunk in _chunks(todo, data, verifier, cache, gallery, config):
            journal.append(chunk)
            summary.processed += len(chunk)
            bar.update(len(chunk))
            _test_sleep()
    rows = journal.finish()
    _count_final(summary, rows)
    summary.images_decoded, summary.images_embedded = cache.decoded - decoded, cache.embedded - embedded
    summary.seconds = time.perf_counter() - t0
    if data.labels is not None and config.shard.count == 1:
        from verify.batch.report import write_batch_report

        summary.report = write_batch_report(rows, Path(config.out), verifier)
    return summary


def _meta(verifier: Verifier, config: BatchConfig, data: BatchInput) -> dict[str, Any]:
    """The run's signature: a resume (of a journal or of a finished output) must match it exactly."""
    src = source_path(config.pairs)
    root = config.images_root if config.images_root is not None else src.parent if isinstance(src, Path) else None
    return {
        "input": str(src.resolve()) if isinstance(src, Path) else src,
        "input_sha256": _file_sha256(src),
        "images_root": _where(root) if root is not None else uri.parent(str(src)),
        "allow_outside_root": config.allow_outside_root,
        "rows": len(data.frame),
        "model": verifier.model.fingerprint,
        "threshold": float(verifier.threshold),  # type: ignore[arg-type]
        "gate_mode": verifier.gate_mode,
        "shard": str(config.shard),
        "gallery": None if config.gallery is None else str(Path(config.gallery).resolve()),
    }


def _where(path: Path | str) -> str:
    """A local path resolved (a `file://` URI as its path), a remote URI as it is."""
    text = str(path)
    local = uri.as_local(text)
    return text if local is None else str(Path(local).resolve())


def _file_sha256(path: Path | str) -> str:
    if not isinstance(path, Path):
        return hashlib.sha256(uri.read_uri(path)).hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chunks(
    todo: list[int], data: BatchInput, verifier: Verifier, cache: ImageCache, gallery: Any, config: BatchConfig
) -> Iterator[pd.DataFrame]:
    """Rows as they become ready (all their images embedded), in input order, `chunk_rows` at a time."""
    paths = [p for i in todo for p in data.images(i)]
    ready, charged = 0, set[str]()
    index: list[int] = []
    rows: list[dict[str, Any]] = []
    for _ in _with_tail(iter_embedded(paths, verifier, cache, config.workers, config.batch_size)):
        while ready < len(todo) and all(p in cache for p in data.images(todo[ready])):
            index.append(todo[ready])
            rows.append(_score_row(todo[ready], data, verifier, cache, gallery, charged))
            ready += 1
            if len(rows) >= config.chunk_rows:
                yield _frame(data, index, rows)
                index, rows = [], []
    if rows:
        yield _frame(data, index, rows)


def _with_tail(it: Iterator[int]) -> Iterator[int]:
    """The batches, then one more step (so rows whose images were all cached already are emitted)."""
    yield from it
    yield 0


def _frame(data: BatchInput, index: list[int], results: list[dict[str, Any]]) -> pd.DataFrame:
    left = data.frame.iloc[index].reset_index(drop=True)
    return pd.concat([left, pd.DataFrame(results, columns=list(RESULT_COLUMNS))], axis=1)


def _score_row(
    i: int, data: BatchInput, verifier: Verifier, cache: ImageCache, gallery: Any, charged: set[str]
) -> dict[str, Any]:
    t0 = time.perf_counter()
    if data.errors and data.errors[i]:  # a malformed row or a path outside the images folder: not scored
        return {
            **dict.fromkeys(RESULT_COLUMNS),
            "decision": "error",
            "threshold": float(verifier.threshold),  # type: ignore[arg-type]
            "ood_flag": False,
            "error": data.errors[i],
            "elapsed_ms": 0.0,
        }
    paths = data.images(i)
    images = [cache.by_path[p] for p in paths]
    elapsed = sum(r.elapsed_ms for p, r in zip(paths, images, strict=True) if p not in charged)
    charged.update(paths)
    ood = [r.ood_score for r in images if r.ood_score is not None]
    row: dict[str, Any] = {
        "score": None,
        "p_match": None,
        "decision": REJECTED,
        "threshold": float(verifier.threshold),  # type: ignore[arg-type]
        # the row's gate score: its least signature-like image, only once every image of the row was read
        "ood_score": min(ood) if ood and len(ood) == len(images) else None,
        "ood_flag": any(r.rejected or r.flagged for r in images),
        "error": _problems(data, images),
    }
    if not row["error"]:
        try:
            row.update(_compare(i, data, verifier, images, gallery))
        except VerifyError as exc:
            row["error"] = " ".join(str(exc).split())
            row["decision"] = "error"
    elif any(r.error for r in images):
        row["decision"] = "error"
    row["elapsed_ms"] = round(elapsed + 1e3 * (time.perf_counter() - t0), 3)
    return row


def _problems(data: BatchInput, images: list[ImageResult]) -> str:
    names = ["reference", "questioned"] if data.mode == "pairs" else ["questioned"]
    found = [f"{n}: {r.error or r.rejected}" for n, r in zip(names, images, strict=True) if r.error or r.rejected]
    return "; ".join(found)


def _compare(i: int, data: BatchInput, verifier: Verifier, images: list[ImageResult], gallery: Any) -> dict[str, Any]:
    threshold = float(verifier.threshold)  # type: ignore[arg-type]
    if data.mode == "pairs":
        a, b = images[0].embedding, images[1].embedding
        score = float(a @ b)  # type: ignore[operator]
    else:
        claimed = data.claimed[i]  # type: ignore[index]
        score = float(gallery.verify(images[0].embedding, claimed))
        per_id = getattr(gallery, "identity_threshold", None)
        if callable(per_id) and per_id(claimed) is not None:
            threshold = float(per_id(claimed))
    return {
        "score": score,
        "p_match": verifier.probability(score),
        "decision": MATCH if score >= threshold else NO_MATCH,
        "threshold": threshold,
    }


def _count_final(summary: BatchSummary, rows: pd.DataFrame) -> None:
    """ok / failed / rejected / flagged over the whole output (rows of earlier interrupted runs included)."""
    failed = int((rows["error"] != "").sum())
    summary.failed, summary.ok = failed, len(rows) - failed
    summary.rejected = int((rows["decision"] == REJECTED).sum())
    flag = rows["ood_flag"].astype(str).str.lower() == "true"  # bool, or text when read back from a CSV
    summary.flagged = int((flag & (rows["error"] == "")).sum())


def _test_sleep() -> None:
    delay = os.environ.get(CHUNK_SLEEP_ENV)
    if delay:
        time.sleep(float(delay))
