"""FaissGallery: search vs brute force, consistency, durability (crash injection), concurrency, open-set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.errors import GalleryError, ModelMismatchError, UnknownIdentityError
from verify.gallery import CRASH_ENV, FaissGallery, store
from verify.gallery import index as ix

DIM = 32


def clustered(rng: np.random.Generator, n_ids: int, per_id: int, dim: int = DIM, spread: float = 0.35):
    """Identities as random unit centres with noisy samples. Returns centres [I, D], samples [I, S, D]."""
    centres = rng.standard_normal((n_ids, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    samples = centres[:, None, :] + spread * rng.standard_normal((n_ids, per_id, dim)).astype(np.float32) / dim**0.5
    samples /= np.linalg.norm(samples, axis=2, keepdims=True)
    return centres, samples.astype(np.float32)


def consistent(gallery: FaissGallery) -> bool:
    """The in-memory index holds exactly the samples of SQLite."""
    gallery._sync()
    return np.array_equal(ix.index_ids(gallery._index), store.sample_ids(gallery._conn))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def filled(tmp_path: Path, rng: np.random.Generator):
    centres, samples = clustered(rng, 6, 4)
    gallery = FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp-a")
    for i, s in enumerate(samples):
        gallery.enroll(f"id{i}", s)
    yield gallery, centres, samples
    gallery.close()


@pytest.mark.parametrize(("index_type", "min_recall"), [("Flat", 1.0), ("HNSW32", 0.95), ("IVF24,Flat", 0.9)])
def test_search_matches_brute_force(tmp_path: Path, rng: np.random.Generator, index_type: str, min_recall: float):
    _, samples = clustered(rng, 50, 20)
    with FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp", index_type=index_type) as gallery:
        for start in range(0, 50, 25):  # two batches: trained types switch from Flat to their type on growth
            for i in range(start, start + 25):
                gallery.enroll(f"id{i}", samples[i])
        assert gallery.stats()["active_index_type"] == index_type
        base = samples.reshape(-1, DIM)
        ids = store.sample_ids(gallery._conn)
        queries = base[rng.choice(len(base), 50, replace=False)] + 0.05 * rng.standard_normal((50, DIM))
        queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
        brute = queries @ base.T
        k = 5
        hits = gallery.search(queries, k=k)
    top = -np.sort(-brute, axis=1)[:, :k]
    recall = np.mean([hits[q][0].score >= top[q, 0] - 1e-5 for q in range(len(queries))])
    assert recall >= min_recall
    for q, row in enumerate(hits):
        assert len(row) == k
        for hit in row:  # every reported score is the true score of that sample (ties allowed in the order)
            assert hit.score == pytest.approx(float(brute[q, np.searchsorted(ids, hit.sample_id)]), abs=1e-5)
        if index_type == "Flat":
            np.testing.assert_allclose([h.score for h in row], top[q], atol=1e-5)


def test_trained_type_stays_flat_until_enough_samples(tmp_path: Path, rng: np.random.Generator):
    assert ix.effective_type("IVF16,Flat", 16 * 39 - 1) == "Flat"
    assert ix.effective_type("IVF16,PQ8", 16 * 39) == "Flat"  # PQ needs 256 x 39 samples
    with pytest.raises(GalleryError, match="unknown index type"):
        FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp", index_type="LSH")
    with pytest.raises(GalleryError, match="divisible"):
        FaissGallery.create(tmp_path / "h", dim=DIM, fingerprint="fp", index_type="IVF4,PQ5")


def test_enroll_remove_keep_ids_and_metadata_consistent(filled):
    gallery, centres, _ = filled
    assert [(i.name, i.n_samples) for i in gallery.identities()] == [(f"id{i}", 4) for i in range(6)]
    sid = gallery.samples("id2")[0].sample_id
    gallery.remove_sample(sid)
    gallery.remove_identity("id3")
    assert consistent(gallery)
    assert {i.name: i.n_samples for i in gallery.identities()}["id2"] == 3
    assert "id3" not in {i.name for i in gallery.identities()}
    found = {h.sample_id for row in gallery.search(centres, k=30) for h in row}
    assert sid not in found and not {h.name for row in gallery.search(centres, k=30) for h in row} & {"id3"}
    with pytest.raises(UnknownIdentityError):
        gallery.remove_identity("id3")
    with pytest.raises(GalleryError, match="no sample"):
        gallery.remove_sample(sid)
    for s in gallery.samples("id4"):
        gallery.remove_sample(s.sample_id)
    assert "id4" not in {i.name for i in gallery.identities()}  # last sample gone -> identity gone
    assert gallery.stats()["samples"] == gallery.stats()["index_ntotal"] == 15


@pytest.mark.parametrize("name", ["", "   ", "Eve\nMallory", "Eve\rM", "a\tb", "x\x00y", "p\u2028q"])
def test_a_name_that_is_empty_or_not_one_line_is_refused_and_nothing_is_enrolled(filled, name: str):
    gallery, _, samples = filled
    before = gallery.stats()
    with pytest.raises(GalleryError, match=r"empty|line break"):
        gallery.enroll(name, samples[0])
    assert gallery.stats() == before and consistent(gallery)
    gallery.enroll("Zoë Ŝmith-O'Brien", samples[0][:1])  # any one-line text is a name
    assert "Zoë Ŝmith-O'Brien" in {i.name for i in gallery.identities()}


def test_hnsw_remove_rebuilds(tmp_path: Path, rng: np.random.Generator):
    _, samples = clustered(rng, 5, 4)
    with FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp", index_type="HNSW32") as gallery:
        for i, s in enumerate(samples):
            gallery.enroll(f"id{i}", s)
        gallery.remove_identity("id1")
        assert consistent(gallery)
        assert all(h.name != "id1" for h in gallery.search(samples[1][0], k=20)[0])


def test_save_open_round_trip(filled, rng: np.random.Generator):
    gallery, centres, _ = filled
    gallery.set_threshold("id0", 0.99)
    before, stats = gallery.search(centres, k=3), gallery.stats()
    gallery.close()
    with FaissGallery.open(gallery.directory, fingerprint="fp-a") as again:
        assert again.search(centres, k=3) == before
        assert again.stats()["samples"] == stats["samples"]
        assert again.stats()["generation"] == stats["generation"]
        assert {i.name: i.threshold for i in again.identities()}["id0"] == pytest.approx(0.99)


def test_wrong_fingerprint_and_dim_refused(filled):
    gallery, _, _ = filled
    with pytest.raises(ModelMismatchError, match="verify gallery reembed"):
        FaissGallery.open(gallery.directory, fingerprint="fp-other")
    with pytest.raises(ModelMismatchError, match="16"):
        FaissGallery.open_or_create(gallery.directory, dim=16, fingerprint="fp-a")
    with pytest.raises(ModelMismatchError):
        gallery.enroll("x", np.ones((2, 16), np.float32))
    with pytest.raises(GalleryError, match="already exists"):
        FaissGallery.create(gallery.directory, dim=DIM, fingerprint="fp-a")
    with pytest.raises(
        GalleryError, match=r"no gallery here \(no such folder\); `verify enroll` or `verify gallery build`"
    ):
        FaissGallery.open(gallery.directory / "missing")
    with pytest.raises(GalleryError, match="a file, not a gallery folder"):
        FaissGallery.open(gallery.directory / FaissGallery.DB_FILE)


def test_a_face_model_on_a_signature_gallery_is_named_as_such(tmp_path: Path) -> None:
    import json

    from verify.models.defaults import assets_dir

    cards = {n: json.loads((assets_dir() / "models" / n / "model.json").read_text()) for n in ("face-resnet",
             "signature-teacher-hog")}  # fmt: skip
    FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint=cards["signature-teacher-hog"]["fingerprint"]).close()
    with pytest.raises(ModelMismatchError) as exc:
        FaissGallery.open(tmp_path / "g", fingerprint=cards["face-resnet"]["fingerprint"])
    message = str(exc.value)
    assert "(signature-teacher-hog, a signature model)" in message and "(face-resnet, a face model)" in message
    assert "this is a signature gallery: use --modality signature" in message and "reembed" not in message


def test_verify_and_open_set_identify(filled, rng: np.random.Generator):
    gallery, centres, samples = filled
    q = centres[2]
    assert gallery.verify(q, "id2") == pytest.approx(float((samples[2] @ q).max()), abs=1e-5)
    mean = samples[2].mean(0)
    assert gallery.verify(q, "id2", template="mean") == pytest.approx(float(mean @ q / np.linalg.norm(mean)), abs=1e-5)
    with pytest.raises(UnknownIdentityError):
        gallery.verify(q, "nobody")
    known = gallery.identify(q, threshold=0.8)
    assert known.name == "id2" and known.candidates[0] == ("id2", pytest.approx(known.score))
    assert len({n for n, _ in known.candidates}) == len(known.candidates) == 5
    stranger, _ = clustered(np.random.default_rng(7), 1, 1)
    unknown = gallery.identify(stranger[0], threshold=0.8)
    assert unknown.name is None and unknown.score < 0.8
    gallery.set_threshold("id2", 0.999)  # per-identity threshold overrides the global one
    assert gallery.identify(q, threshold=0.8).name is None


def test_duplicate_and_same_image_warnings(filled):
    gallery, _, samples = filled
    result = gallery.enroll("id0", samples[1][0] * 0.99 + 0.01 * samples[0][0])  # id1's face labelled id0
    assert result.sample_ids and len(result.warnings) == 1
    assert "'id1'" in result.warnings[0] and "'id0'" in result.warnings[0]
    clean = gallery.enroll("id0", samples[0].mean(0))
    assert clean.warnings == []
    first = gallery.enroll("id5", samples[5][0], images=[b"same-bytes"])
    again = gallery.enroll("id1", samples[5][0], images=[b"same-bytes"])
    assert first.sample_ids and again.sample_ids == [] and again.skipped == [0]
    assert f"sample {first.sample_ids[0]} of 'id5'" in again.warnings[0]


def test_eight_threads_enrolling_lose_nothing(tmp_path: Path, rng: np.random.Generator):
    _, samples = clustered(rng, 32, 3)
    first = FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp")
    second = FaissGallery.open(tmp_path / "g")  # a second handle: exercises the file lock and re-sync
    errors: list[BaseException] = []

    def work(t: int) -> None:
        gallery = first if t % 2 else second
        try:
            for i in range(t, 32, 8):
                gallery.enroll(f"id{i}", samples[i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for gallery in (first, second):
        assert gallery.stats()["samples"] == gallery.stats()["index_ntotal"] == 96
        assert consistent(gallery)
        assert {h.name for h in gallery.search(samples[17][0], k=1)[0]} == {"id17"}
    first.close()
    second.close()


CRASH_SCRIPT = f"""
import sys, numpy as np
from verify.gallery import FaissGallery
g = FaissGallery.open(sys.argv[1])
if sys.argv[2] == "enroll":
    g.enroll("late", np.ones((2, {DIM}), np.float32) + np.eye(2, {DIM}, dtype=np.float32))
else:
    g.remove_identity("id0")
print("finished")
"""


@pytest.mark.parametrize("point", ["before_commit", "after_commit", "after_index_replace"])
@pytest.mark.parametrize("action", ["enroll", "remove"])
def test_crash_anywhere_leaves_consistent_gallery(filled, point: str, action: str):
    gallery, _, _ = filled
    directory, before = gallery.directory, gallery.stats()["samples"]
    gallery.close()
    env = {**os.environ, CRASH_ENV: point}
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(directory), action], env=env, capture_output=True)
    assert proc.returncode == 1 and b"finished" not in proc.stdout, proc.stderr.decode()[-2000:]
    with FaissGallery.open(directory) as again:
        assert consistent(again)
        names = {i.name for i in again.identities()}
        committed = point != "before_commit"
        expected = before + (2 if action == "enroll" else -4) if committed else before
        assert again.stats()["samples"] == again.stats()["index_ntotal"] == expected
        assert ("late" in names) == (committed and action == "enroll")
        assert ("id0" in names) == (not committed or action == "enroll")
        assert not list(directory.glob("*.tmp"))


def test_index_newer_than_sqlite_is_rebuilt(filled, tmp_path: Path):
    gallery, _centres, samples = filled
    snapshot = tmp_path / "snapshot"
    gallery._conn.execute("PRAGMA wal_checkpoint(FULL)")
    shutil.copytree(gallery.directory, snapshot)
    gallery.enroll("newer", samples[0] + 0.01)
    gallery.close()
    shutil.copy(gallery.directory / "index.faiss", snapshot / "index.faiss")  # index renamed, SQLite not
    with FaissGallery.open(snapshot) as old:
        assert consistent(old)
        assert "newer" not in {i.name for i in old.identities()}
        assert old.stats()["index_ntotal"] == 24


def _colour_image(value: int) -> bytes:
    image = np.zeros((32, 32, 3), np.uint8)
    cv2.rectangle(image, (4, 4), (4 + value % 24, 28), (value, 255 - value, (3 * value) % 256), -1)
    return cv2.imencode(".png", image)[1].tobytes()


def _embed_colours(images: list[np.ndarray]) -> np.ndarray:
    """A stand-in model: per-channel means and a coarse histogram of each image, [n, 8]."""
    out = [np.concatenate([im.reshape(-1, 3).mean(0), np.histogram(im, bins=5, range=(0, 256))[0]]) for im in images]
    return np.asarray(out, np.float32) + 1.0


def test_reembed_from_stored_images(tmp_path: Path, rng: np.random.Generator):
    images = [_colour_image(v) for v in (10, 60, 120, 200)]
    decoded = [
        cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for b in images
    ]
    with FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="old") as gallery:
        gallery.enroll("a", rng.standard_normal((2, DIM)), images=images[:2], thumbnails=decoded[:2])
        gallery.enroll("b", rng.standard_normal((2, DIM)), images=images[2:])
        assert gallery.thumbnail(gallery.samples("a")[0].sample_id).startswith(b"\x89PNG")
        assert gallery.reembed(_embed_colours, "new") == 4
        expected = _embed_colours(decoded)
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(
            np.concatenate([gallery.embeddings("a"), gallery.embeddings("b")]), expected, rtol=1e-5
        )
        assert gallery.search(expected[3], k=1)[0][0].name == "b"
    with pytest.raises(ModelMismatchError):
        FaissGallery.open(tmp_path / "g", fingerprint="old")
    with FaissGallery.open(tmp_path / "g", fingerprint="new") as gallery:
        assert gallery.dim == 8 and consistent(gallery)
        gallery.enroll("c", np.ones(8))  # no image kept: re-embedding must refuse, changing nothing
        with pytest.raises(GalleryError, match="no stored image"):
            gallery.reembed(_embed_colours, "newer")
        assert gallery.fingerprint == "new"


def test_same_image_twice_in_one_call_and_array_images(tmp_path: Path, rng: np.random.Generator):
    image = np.full((8, 8, 3), 7, np.uint8)
    with FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp") as gallery:
        result = gallery.enroll("a", rng.standard_normal((3, DIM)), images=[image, image.copy(), image + 1])
        assert len(result.sample_ids) == 2 and result.skipped == [1]
        assert "input 0 of this call" in result.warnings[0]
        assert all(s.has_image and s.image_sha256 for s in gallery.samples("a"))


def test_interrupted_create_can_be_created_again(tmp_path: Path):
    directory = tmp_path / "g"
    directory.mkdir()
    # schema but no meta: create was killed before its commit
    store.connect(directory / "gallery.sqlite", create=True).close()
    with pytest.raises(GalleryError, match="never completed"):
        FaissGallery.open(directory)
    with FaissGallery.open_or_create(directory, dim=DIM, fingerprint="fp") as gallery:
        assert gallery.stats()["samples"] == 0


ENROLL_SCRIPT = f"""
import sys, numpy as np
from verify.gallery import FaissGallery
g = FaissGallery.open(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
for i in range(10):
    g.enroll(f"p{{sys.argv[2]}}-{{i}}", rng.standard_normal((2, {DIM})))
"""


def test_two_processes_enrolling_lose_nothing(tmp_path: Path):
    FaissGallery.create(tmp_path / "g", dim=DIM, fingerprint="fp").close()
    procs = [subprocess.Popen([sys.executable, "-c", ENROLL_SCRIPT, str(tmp_path / "g"), str(seed)]) for seed in (1, 2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with FaissGallery.open(tmp_path / "g") as gallery:
        assert len(gallery.identities()) == 20 and gallery.stats()["index_ntotal"] == 40
        assert consistent(gallery)
