"""`run_embed`: bulk embedding of a folder or a CSV of images into one Parquet file, on the local or the Ray engine.

The file has one row per image: id, path, sha256, fingerprint (of the model), embedding (float32 [D], L2-normalised;
null when the image could not be used), status ("ok", "error" or "rejected"), reason, ood_score. It is the input
of `verify gallery build` (`verify.gallery.bulk`), which refuses rows of another model's fingerprint.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from verify.batch.images import ImageCache, ImageResult, iter_embedded
from verify.errors import ConfigError, DatasetError
from verify.gallery.embeddings_file import EMBED_COLUMNS, write_embeddings
from verify.verifier import Verifier

Engine = Literal["local", "ray"]
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})


@dataclass
class EmbedSummary:
    """What `run_embed` wrote."""

    out: Path
    images: int
    ok: int
    failed: int
    rejected: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "out": str(self.out), "images_per_s": round(self.images_per_s, 2)}


def list_images(source: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The images of a folder (recursively, by extension, sorted; id = path relative to it) or of a CSV with a
    `path` column (and optionally `id`; relative paths start at `images_root`, default the CSV's folder).

    Returns:
        DataFrame with columns id, path (absolute).

    Raises:
        DatasetError: no such folder or CSV, no `path` column, empty paths, duplicate ids, no images.
    """
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        frame = pd.DataFrame(
            {"id": [str(p.relative_to(src)) for p in files], "path": [str(p.absolute()) for p in files]}
        )
    elif src.is_file():
        try:
            raw = pd.read_csv(src, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{src}: not a readable CSV ({str(exc).strip()})") from exc
        names = {str(c).strip().lower(): c for c in raw.columns}
        if "path" not in names:
            raise DatasetError(f"{src}: needs a 'path' column (and optionally 'id'); found {list(raw.columns)}")
        paths = raw[names["path"]].str.strip()
        if (paths == "").any():
            raise DatasetError(f"{src}:{int(np.argmax(paths == '')) + 2}: empty path")
        base = Path(images_root) if images_root is not None else src.parent
        absolute = [str(p if p.is_absolute() else (base / p).absolute()) for p in map(Path, paths)]
        ids = raw[names["id"]].str.strip() if "id" in names else paths
        frame = pd.DataFrame({"id": ids.tolist(), "path": absolute})
    else:
        raise DatasetError(f"{src}: no such folder or CSV of images")
    if frame.empty:
        raise DatasetError(f"{src}: no images found (extensions {sorted(IMAGE_EXTENSIONS)})")
    dup = frame["id"][frame["id"].duplicated()]
    if len(dup):
        raise DatasetError(f"{src}: duplicate id {dup.iloc[0]!r}")
    return frame


def embed_results(
    verifier: Verifier,
    paths: list[str],
    engine: Engine = "local",
    options: Any = None,
    workers: int = 0,
    batch_size: int = 64,
) -> dict[str, ImageResult]:
    """path -> ImageResult for every path, on the local engine (DataLoader workers) or on Ray (`options`)."""
    if engine == "ray":
        from verify.batch.ray_images import RayOptions, iter_image_results

        out: dict[str, ImageResult] = {}
        for results in iter_image_results(paths, verifier, options or RayOptions(batch_size=batch_size)):
            out.update(results)
        return out
    if engine != "local":
        raise ConfigError(f"engine {engine!r}: use 'local' or 'ray'")
    cache = ImageCache()
    for _ in iter_embedded(paths, verifier, cache, workers, batch_size):
        pass
    return cache.by_path


def embeddings_frame(items: pd.DataFrame, results: dict[str, ImageResult], fingerprint: str) -> pd.DataFrame:
    """The output rows (EMBED_COLUMNS) of `items` (id, path) with their results."""
    rows = []
    for ident, path in zip(items["id"], items["path"], strict=True):
        r = results[path]
        status = "error" if r.error else "rejected" if r.rejected else "ok"
        rows.append(
            {
                "id": ident,
                "path": path,
                "sha256": r.sha256,
                "fingerprint": fingerprint,
                "embedding": None if r.embedding is None else np.asarray(r.embedding, np.float32),
                "status": status,
                "reason": r.error or r.rejected or (f"flagged: {r.flagged}" if r.flagged else ""),
                "ood_score": r.ood_score,
            }
        )
    return pd.DataFrame(rows, columns=list(EMBED_COLUMNS))


def run_embed(
    verifier: Verifier,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    engine: Engine = "local",
    images_root: str | os.PathLike[str] | None = None,
    options: Any = None,
    workers: int = 0,
    batch_size: int = 64,
) -> EmbedSummary:
    """Embed every image of `source` (folder or CSV) into the Parquet file `out`.

    Raises:
        VerifyError: a bad source, an unknown engine, Ray not installed or unreachable.
    """
    t0 = time.perf_counter()
    items = list_images(source, images_root)
    paths = list(dict.fromkeys(items["path"]))
    results = embed_results(verifier, paths, engine, options, workers, batch_size)
    frame = embeddings_frame(items, results, verifier.model.fingerprint)
    write_embeddings(frame, out, verifier.model.dim)
    counts = frame["status"].value_counts()
    return EmbedSummary(
        out=Path(out),
        images=len(frame),
        ok=int(counts.get("ok", 0)),
        failed=int(len(frame) - counts.get("ok", 0)),
        rejected=int(counts.get("rejected", 0)),
        seconds=time.perf_counter() - t0,
    )
