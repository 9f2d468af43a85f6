"""Bulk gallery build from an embeddings file: index type by size, one pass, fingerprints checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from verify.errors import DatasetError, ModelMismatchError
from verify.gallery import FaissGallery
from verify.gallery.bulk import build_gallery, choose_index_type
from verify.gallery.embeddings_file import EMBED_COLUMNS, read_embeddings, write_embeddings

DIM = 16


def _embeddings(rng: np.random.Generator, n_ids: int, per_id: int, noise: float = 0.05) -> tuple[np.ndarray, list]:
    centres = rng.normal(size=(n_ids, DIM))
    x = np.repeat(centres, per_id, axis=0) + noise * rng.normal(size=(n_ids * per_id, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), [f"person{i}" for i in range(n_ids) for _ in range(per_id)]


def _write(path: Path, x: np.ndarray, fingerprint: str | list[str] = "fp1", status: list[str] | None = None) -> Path:
    n = len(x)
    status = status or ["ok"] * n
    frame = pd.DataFrame(
        {
            "id": [f"img{i}" for i in range(n)],
            "path": [f"/data/img{i}.png" for i in range(n)],
            "sha256": [f"{i:064x}" for i in range(n)],
            "fingerprint": fingerprint if isinstance(fingerprint, list) else [fingerprint] * n,
            "embedding": [None if s != "ok" else e for s, e in zip(status, x, strict=True)],
            "status": status,
            "reason": ["" if s == "ok" else "bad" for s in status],
            "ood_score": [None] * n,
        },
        columns=list(EMBED_COLUMNS),
    )
    return write_embeddings(frame, path, DIM)


def _labels(path: Path, names: list[str], skip: int = 0) -> Path:
    pd.DataFrame({"id": [f"img{i}" for i in range(skip, len(names))], "identity": names[skip:]}).to_csv(
        path, index=False
    )
    return path


def test_index_type_grows_with_size() -> None:
    assert choose_index_type(99_999, 128) == "Flat"
    assert choose_index_type(100_000, 128) == "IVF1264,Flat"
    assert choose_index_type(9_999_999, 128) == "IVF12649,Flat"
    assert choose_index_type(10_000_000, 128) == "IVF12649,PQ32"
    assert choose_index_type(10_000_000, 64) == "IVF12649,PQ16"


def test_embeddings_file_round_trip_keeps_nulls(tmp_path: Path, rng: np.random.Generator) -> None:
    x, _ = _embeddings(rng, 2, 3)
    path = _write(tmp_path / "e.parquet", x, status=["ok", "error", "ok", "ok", "rejected", "ok"])
    rows, matrix = read_embeddings(path)
    assert list(rows.columns) == [c for c in EMBED_COLUMNS if c != "embedding"] and matrix.dtype == np.float32
    assert np.array_equal(matrix[[0, 2, 3, 5]], x[[0, 2, 3, 5]]) and not matrix[[1, 4]].any()


def test_build_fills_gallery_in_one_pass_and_matches_brute_force(tmp_path: Path, rng: np.random.Generator) -> None:
    x, names = _embeddings(rng, 40, 25)  # 1,000 samples: a trained IVF index when asked for one
    status = ["ok"] * len(x)
    status[3] = "rejected"
    emb = _write(tmp_path / "e.parquet", x, status=status)
    labels = _labels(tmp_path / "labels.csv", names, skip=2)  # the first two rows have no label
    summary = build_gallery(tmp_path / "g", emb, labels, fingerprint="fp1", index_type="IVF16,Flat")
    assert (summary.added, summary.identities) == (997, 40)
    assert (summary.skipped_unlabelled, summary.skipped_unusable, summary.skipped_duplicate) == (2, 1, 0)
    with FaissGallery.open(tmp_path / "g", fingerprint="fp1") as gallery:
        stats = gallery.stats()
        assert (stats["samples"], stats["index_ntotal"], stats["active_index_type"]) == (997, 997, "IVF16,Flat")
        queries = x[::50] + 0.01 * rng.normal(size=x[::50].shape).astype(np.float32)
        for q, want in zip(queries, names[::50], strict=True):
            assert gallery.identify(q, threshold=0.5).name == want  # brute force: the nearest centre's person
    again = build_gallery(tmp_path / "g", emb, labels, fingerprint="fp1")
    assert (again.added, again.skipped_duplicate) == (0, 997)  # same images: nothing enrolled twice


def test_small_gallery_is_flat(tmp_path: Path, rng: np.random.Generator) -> None:
    x, names = _embeddings(rng, 3, 4)
    summary = build_gallery(tmp_path / "g", _write(tmp_path / "e.parquet", x), _labels(tmp_path / "l.csv", names))
    assert summary.index_type == "Flat" and summary.added == 12


def test_other_model_fingerprints_are_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    x, names = _embeddings(rng, 2, 3)
    labels = _labels(tmp_path / "l.csv", names)
    mixed = _write(tmp_path / "mixed.parquet", x, fingerprint=["fp1"] * 5 + ["fp2"])
    with pytest.raises(ModelMismatchError, match="2 models"):
        build_gallery(tmp_path / "g", mixed, labels)
    other = _write(tmp_path / "other.parquet", x, fingerprint="fp2")
    with pytest.raises(ModelMismatchError, match="model in use is fp1"):
        build_gallery(tmp_path / "g", other, labels, fingerprint="fp1")
    build_gallery(tmp_path / "g", _write(tmp_path / "ok.parquet", x), labels)
    with pytest.raises(ModelMismatchError):  # the gallery holds fp1 embeddings
        build_gallery(tmp_path / "g", other, labels)
    with FaissGallery.open(tmp_path / "g") as gallery:
        assert gallery.stats()["samples"] == 6  # untouched by the refused builds
    pd.DataFrame({"id": ["nope"], "identity": ["x"]}).to_csv(tmp_path / "none.csv", index=False)
    with pytest.raises(DatasetError, match="no label matches"):
        build_gallery(tmp_path / "g2", other, tmp_path / "none.csv")


def test_flagged_rows_counted_or_left_out_unmatched_labels_named(tmp_path: Path, rng: np.random.Generator) -> None:
    x, names = _embeddings(rng, 3, 4)
    emb = _write(tmp_path / "e.parquet", x)
    frame = pd.read_parquet(emb)
    frame.loc[[1, 6], "reason"] = (
        "flagged: not a signature: it looks like printed text"  # verify embed --gate-mode flag
    )
    emb = write_embeddings(frame, tmp_path / "flagged.parquet", DIM)
    labels = _labels(tmp_path / "labels.csv", names)
    with labels.open("a") as fh:
        fh.write("img99,ghost\n")  # a typo'd id: nobody to add, said so
    kept = build_gallery(tmp_path / "all", emb, labels)
    assert (kept.added, kept.flagged, kept.skipped_flagged, kept.labels_unmatched) == (12, 2, 0, 1)
    assert kept.warnings == [
        "1 label(s) match no row of the embeddings file, e.g. 'img99': check the ids (or paths) for typos; those "
        "people were not added"
    ]
    left = build_gallery(tmp_path / "clean", emb, labels, skip_flagged=True)
    assert (left.added, left.flagged, left.skipped_flagged) == (10, 0, 2)
    with FaissGallery.open(tmp_path / "clean") as gallery:
        hashes = {s.image_sha256 for name in ("person0", "person1", "person2") for s in gallery.samples(name)}
    assert hashes == {f"{i:064x}" for i in range(12) if i not in (1, 6)}
