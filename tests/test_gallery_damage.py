"""FaissGallery on damaged or contended files: a damaged index.faiss is rebuilt from SQLite, never searched; a
damaged, truncated, foreign or empty gallery.sqlite is refused with one GalleryError and left untouched; processes
creating one gallery at once all end in it; an enrolment that adds nothing leaves no empty identity."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from verify.errors import GalleryError
from verify.gallery import FaissGallery
from verify.gallery import index as ix

DIM = 32


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def gallery_dir(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """12 identities of 4 samples each; returns the directory, the queries [12, D] and the samples [12, 4, D]."""
    rng = np.random.default_rng(0)
    centres = _unit(rng, 12)
    samples = centres[:, None, :] + 0.3 * rng.standard_normal((12, 4, DIM)).astype(np.float32) / DIM**0.5
    samples /= np.linalg.norm(samples, axis=2, keepdims=True)
    with FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp") as gallery:
        for i, s in enumerate(samples):
            gallery.enroll(f"id{i}", s)
    return tmp_path / "g", centres, samples


def _zero_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid - len(data) // 4 : mid + len(data) // 4] = bytes(len(data) // 2)
    path.write_bytes(bytes(data))


def _flip_bytes(path: Path, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for pos in rng.choice(np.arange(100, len(data)), size=n, replace=False):
        data[pos] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_zero_middle, _flip_bytes])
def test_damaged_index_is_rebuilt_from_sqlite_not_searched(gallery_dir, damage, caplog):
    directory, centres, samples = gallery_dir
    damage(directory / FaissGallery.INDEX_FILE)
    with caplog.at_level(logging.WARNING), FaissGallery.open(directory) as gallery:
        answers = [gallery.identify(q, threshold=0.5).name for q in centres]
        hits = gallery.search(centres, k=4)
    assert "does not match its recorded checksum" in caplog.text
    assert answers == [f"id{i}" for i in range(12)]
    for q, row in zip(centres, hits, strict=True):  # scores are the true cosine similarities (brute force)
        best = np.sort(samples.reshape(-1, DIM) @ q)[::-1][:4]
        assert [h.score for h in row] == pytest.approx(best.tolist(), abs=1e-5)
    sidecar = json.loads((directory / FaissGallery.SIDECAR_FILE).read_text())
    assert ix.read_index(directory / FaissGallery.INDEX_FILE, sidecar["sha256"]) is not None  # rewritten whole


def test_a_damaged_sidecar_is_logged_and_the_index_rebuilt(gallery_dir, caplog):
    directory, centres, _ = gallery_dir
    (directory / FaissGallery.SIDECAR_FILE).write_text('{"sha256": "x"')
    with caplog.at_level(logging.WARNING), FaissGallery.open(directory) as gallery:
        answers = [gallery.identify(q, threshold=0.5).name for q in centres]
    assert f"{FaissGallery.SIDECAR_FILE} is damaged; rebuilding" in caplog.text
    assert answers == [f"id{i}" for i in range(12)]
    assert json.loads((directory / FaissGallery.SIDECAR_FILE).read_text())["sha256"]


def test_index_without_recorded_checksum_is_not_trusted(gallery_dir):
    directory, centres, _ = gallery_dir
    sidecar_path = directory / FaissGallery.SIDECAR_FILE
    sidecar = json.loads(sidecar_path.read_text())
    del sidecar["sha256"]
    sidecar_path.write_text(json.dumps(sidecar))
    _zero_middle(directory / FaissGallery.INDEX_FILE)
    with FaissGallery.open(directory) as gallery:
        assert [gallery.identify(q, threshold=0.5).name for q in centres] == [f"id{i}" for i in range(12)]
    assert "sha256" in json.loads(sidecar_path.read_text())


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


def _bad_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:16] = b"NOT A DATABASE!!"
    path.write_bytes(bytes(data))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "message"), [(_truncate, "not an SQLite"), (_bad_header, "not an SQLite"), (_empty, "empty file")]
)
def test_unusable_database_refused_with_one_line_and_untouched(gallery_dir, damage, message):
    directory, _, _ = gallery_dir
    db = directory / FaissGallery.DB_FILE
    damage(db)
    before = db.read_bytes()
    for attempt in (
        lambda: FaissGallery.open(directory),
        lambda: FaissGallery.open_or_create(directory, dim=DIM, fingerprint="fp"),
        lambda: FaissGallery.create(directory, dim=DIM, fingerprint="fp"),
    ):
        with pytest.raises(GalleryError, match=message) as info:
            attempt()
        assert "\n" not in str(info.value)
    assert db.read_bytes() == before  # a 0-byte file is not turned into a new gallery


def _damage_btree_page(db: Path) -> None:
    """Overwrite the b-tree page header of every page after the first two: structural damage that
    `PRAGMA quick_check` finds (the kind random flipped bytes cause)."""
    conn = sqlite3.connect(db)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(db.read_bytes())
    for start in range(2 * page, len(data), page):
        data[start : start + 8] = b"\x11" * 8
    db.write_bytes(bytes(data))


def test_a_damaged_gallery_is_recovered_in_place_and_the_damaged_file_kept(gallery_dir, capsys):
    """The refusal names `verify gallery recover`; following it, every readable sample comes back byte for byte
    with its identity, the ones lost are counted, the damaged file is kept as it was, and the gallery opens."""
    from verify.cli import main
    from verify.gallery.recover import recover_gallery

    directory, centres, _ = gallery_dir
    db = directory / FaissGallery.DB_FILE
    with sqlite3.connect(db) as conn:
        original = {row[0]: row[1:] for row in conn.execute("SELECT id, identity_id, embedding FROM samples")}
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    data[-page : -page + 8] = b"\x11" * 8  # the last page's b-tree header
    db.write_bytes(bytes(data))
    damaged = db.read_bytes()
    with pytest.raises(GalleryError, match="damaged gallery database") as info:
        FaissGallery.open(directory)
    assert f"verify gallery recover --gallery {directory}" in str(info.value)
    assert main(["gallery", "recover", "--gallery", str(directory)]) == 1  # some rows lost: exit 1
    out = capsys.readouterr().out
    assert "recovered 12 identities and" in out and "could not be read" in out and "enroll them again" in out
    kept = sorted(directory.glob("gallery.sqlite.damaged-*"))
    assert kept[0].name.endswith("Z") and kept[0].read_bytes() == damaged  # the damaged file, untouched
    with sqlite3.connect(db) as conn:
        recovered = {row[0]: row[1:] for row in conn.execute("SELECT id, identity_id, embedding FROM samples")}
    assert 0 < len(recovered) < len(original) and all(original[i] == row for i, row in recovered.items())
    left = {row[0] for row in recovered.values()}
    with FaissGallery.open(directory) as gallery:
        assert gallery.stats()["samples"] == len(recovered)
        found = [gallery.identify(q, threshold=0.5).name for q in centres]
    assert [name for i, name in enumerate(found) if i + 1 in left] == [f"id{i}" for i in range(12) if i + 1 in left]
    assert recover_gallery(directory).damaged is False  # healthy now: left alone
    assert sorted(directory.glob("gallery.sqlite.damaged-*")) == kept


@pytest.mark.parametrize(
    ("damage", "message"), [(_bad_header, "not an SQLite"), (_damage_btree_page, "no identity could be read back")]
)
def test_recovery_refuses_what_it_cannot_read_and_changes_nothing(gallery_dir, damage, message):
    from verify.gallery.recover import recover_gallery

    directory, _, _ = gallery_dir
    damage(directory / FaissGallery.DB_FILE)

    def files() -> dict[str, bytes]:  # reading a WAL database may make its empty -wal / -shm files
        return {p.name: p.read_bytes() for p in directory.iterdir() if not p.name.endswith(("-wal", "-shm"))}

    before = files()
    with pytest.raises(GalleryError, match=message):
        recover_gallery(directory)
    assert files() == before


def test_database_failing_quick_check_refuses_reads_and_writes(gallery_dir):
    directory, _, _ = gallery_dir
    db = directory / FaissGallery.DB_FILE
    _damage_btree_page(db)
    before = db.read_bytes()
    with pytest.raises(GalleryError, match="integrity check") as info:
        FaissGallery.open(directory)
    assert "\n" not in str(info.value) and "verify gallery recover" in str(info.value)
    with pytest.raises(GalleryError, match="integrity check"):
        FaissGallery.open_or_create(directory, dim=DIM, fingerprint="fp")
    assert db.read_bytes() == before


CREATE_SCRIPT = f"""
import sys, numpy as np
from verify.gallery import FaissGallery
with FaissGallery.open_or_create(sys.argv[1], dim={DIM}, fingerprint="fp") as g:
    g.enroll("p" + sys.argv[2], np.random.default_rng(int(sys.argv[2])).standard_normal((2, {DIM})))
"""


def test_six_processes_creating_one_gallery_all_end_in_it(tmp_path: Path):
    target = tmp_path / "new" / "g"
    procs = [
        subprocess.Popen([sys.executable, "-c", CREATE_SCRIPT, str(target), str(i)], stderr=subprocess.PIPE)
        for i in range(6)
    ]
    errors = [p.communicate(timeout=180)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    with FaissGallery.open(target) as gallery:
        assert sorted(i.name for i in gallery.identities()) == [f"p{i}" for i in range(6)]
        assert gallery.stats()["index_ntotal"] == 12


def test_enrolment_adding_nothing_leaves_no_empty_identity(tmp_path: Path):
    image = np.full((8, 8, 3), 120, np.uint8)
    with FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp") as gallery:
        gallery.enroll("A", _unit(np.random.default_rng(0), 1), images=[image])
        result = gallery.enroll("B", _unit(np.random.default_rng(1), 1), images=[image.copy()])
        assert result.sample_ids == [] and result.skipped == [0]
        assert [i.name for i in gallery.identities()] == ["A"]
        assert gallery.stats()["identities"] == 1
        gallery._conn.execute("INSERT INTO identities(name, created) VALUES ('C', 'then')")  # left by an older version
        assert [i.name for i in gallery.identities()] == ["A"] and gallery.stats()["identities"] == 1


def test_stored_embedding_of_the_wrong_size_is_a_gallery_error(gallery_dir):
    directory, _, _ = gallery_dir
    conn = sqlite3.connect(directory / FaissGallery.DB_FILE)
    conn.execute("UPDATE samples SET embedding = x'0000803f' WHERE id = 3")  # one float instead of 32
    conn.commit()
    conn.close()
    (directory / FaissGallery.INDEX_FILE).unlink()  # the rebuild reads every embedding
    with pytest.raises(GalleryError, match="damaged"):
        FaissGallery.open(directory)
