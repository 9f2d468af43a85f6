"""Batch verification of a pairs (or claims) CSV: cached embeddings, DataLoader decoding, resumable output,
sharding by a stable row hash, and a report when labels are given."""

from __future__ import annotations

from verify.batch.images import ImageCache
from verify.batch.reader import RESULT_COLUMNS, BatchInput, read_batch_input
from verify.batch.runner import BatchConfig, BatchSummary, run_batch
from verify.batch.shard import MergeSummary, Shard, merge_parts, parse_shard, shard_of

__all__ = [
    "RESULT_COLUMNS",
    "BatchConfig",
    "BatchInput",
    "BatchSummary",
    "ImageCache",
    "MergeSummary",
    "Shard",
    "merge_parts",
    "parse_shard",
    "read_batch_input",
    "run_batch",
    "shard_of",
]
