"""verify.data: loaders on tiny generated layouts, LFW pairs, pairs CSV, P x K sampler, splits, ImageDataset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from training.config import TrainConfig
from training.runs import _split
from verify.data import (
    Sample,
    load_identity_folders,
    load_signature_dataset,
    load_split,
    read_lfw_pairs,
    read_pairs_csv,
    save_split,
    split_fingerprint,
    split_identities,
    split_samples,
    write_lfw_pairs,
)
from verify.data.dataset import ImageDataset
from verify.data.sampler import PKBatchSampler
from verify.errors import ConfigError, DatasetError
from verify.preprocess.crop import Crop


def _img(path: Path, value: int = 128, size: tuple[int, int] = (24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full(size, value, np.uint8))
    return path


# ----------------------------------------------------------------------------------------------- folders
def test_identity_folders(tmp_path: Path) -> None:
    for ident, n in (("bob", 2), ("alice", 3), ("carol", 1)):
        for i in range(n):
            _img(tmp_path / ident / f"{i}.png")
    (tmp_path / "alice" / "notes.txt").write_text("x")
    (tmp_path / "alice" / ".hidden.png").write_bytes(b"")
    _img(tmp_path / "stray.png")
    samples = load_identity_folders(tmp_path)
    assert Counter(s.identity for s in samples) == {"alice": 3, "bob": 2, "carol": 1}
    assert samples[0] == Sample(tmp_path / "alice" / "0.png", "alice", "genuine")
    assert {s.identity for s in load_identity_folders(tmp_path, min_per_identity=2)} == {"alice", "bob"}
    with pytest.raises(DatasetError, match="at least 5"):
        load_identity_folders(tmp_path, min_per_identity=5)
    with pytest.raises(DatasetError, match="not a folder"):
        load_identity_folders(tmp_path / "none")


# ----------------------------------------------------------------------------------------------- LFW
def _lfw_folds(n_folds: int = 10, per: int = 2) -> list:
    folds = []
    for f in range(n_folds):
        matched = [(f"P{f}_{j}", 1, 2) for j in range(per)]
        mismatched = [(f"P{f}_{j}", 1, f"Q{f}_{j}", 3) for j in range(per)]
        folds.append((matched, mismatched))
    return folds


def test_lfw_pairs_ten_folds_with_missing(tmp_path: Path) -> None:
    images = tmp_path / "lfw"
    folds = _lfw_folds()
    for f, (matched, mismatched) in enumerate(folds):
        for name, a, b in matched:
            _img(images / name / f"{name}_{a:04d}.jpg")
            if f != 3:  # fold 3's second images are absent
                _img(images / name / f"{name}_{b:04d}.jpg")
        for _, _, name, n in mismatched:
            _img(images / name / f"{name}_{n:04d}.jpg")
    pairs_file = write_lfw_pairs(tmp_path / "pairs.txt", folds)
    assert pairs_file.read_text().splitlines()[0] == "10\t2"
    pairs = read_lfw_pairs(pairs_file, images)
    assert len(pairs) == 40 and pairs.n_folds == 10
    np.testing.assert_array_equal(np.bincount(pairs.folds), [4] * 10)
    assert pairs.labels.sum() == 20
    first, mism = pairs.pairs[0], pairs.pairs[2]
    assert first.same and first.path_a == images / "P0_0" / "P0_0_0001.jpg"
    assert first.path_b == images / "P0_0" / "P0_0_0002.jpg" and first.line == 2
    assert not mism.same and mism.path_b == images / "Q0_0" / "Q0_0_0003.jpg"
    # missing files are reported and flagged, the pairs are kept
    assert pairs.missing == [images / "P3_0" / "P3_0_0002.jpg", images / "P3_1" / "P3_1_0002.jpg"]
    flagged = [p for p in pairs.pairs if p.missing]
    assert len(flagged) == 2 and {p.fold for p in flagged} == {3}
    assert len(pairs.complete) == 38


def test_lfw_pairs_without_header(tmp_path: Path) -> None:
    pairs_file = write_lfw_pairs(
        tmp_path / "p.txt", [([("A", 1, 2)], [("A", 1, "B", 1), ("A", 2, "C", 4)])], header=False
    )
    pairs = read_lfw_pairs(pairs_file, tmp_path)
    assert pairs.n_folds == 1 and len(pairs) == 3 and set(pairs.folds) == {0}
    assert len(pairs.missing) == 4  # A_0001, A_0002, B_0001, C_0004, each listed once


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("2\t1\nA\t1\t2\nA\t1\tB\t2\n", "header says 2 folds"),
        ("1\t1\nA\t1\t2\nA\tx\tB\t2\n", r"pairs\.txt:3: image numbers must be integers"),
        ("A\t1\t2\nA\t1\tB\t2\tC\n", r"pairs\.txt:2: expected 'name n1 n2'"),
        ("1\t1\nA\t1\tB\t2\nA\t1\t2\n", r"pairs\.txt:2: mismatched pair where"),
        ("\n\n", "empty LFW pairs file"),
    ],
)
def test_lfw_pairs_errors(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(body)
    with pytest.raises(DatasetError, match=match):
        read_lfw_pairs(path, tmp_path)


# ----------------------------------------------------------------------------------------------- signatures
def _write_all(root: Path, names: list[str]) -> None:
    for name in names:
        _img(root / name)


@pytest.mark.parametrize(
    ("protocol", "files", "expected_ids"),
    [
        (
            "cedar",
            ["full_org/original_1_1.png", "full_org/original_1_2.png", "full_forg/forgeries_1_1.png",
             "full_org/original_12_1.png", "full_forg/forgeries_12_3.png"],
            ["1", "12"],
        ),
        (
            "gpds",
            ["001/c-001-01.jpg", "001/c-001-02.jpg", "001/cf-001-01.jpg", "010/c-010-01.jpg", "010/cf-010-07.jpg"],
            ["1", "10"],
        ),
        (
            "mcyt",
            ["0001/0001v00.bmp", "0001/0001v01.bmp", "0001/0001f00.bmp", "0002/0002v05.bmp", "0002/0002f01.bmp"],
            ["1", "2"],
        ),
        (
            "bhsig",
            ["Bengali/1/B-S-1-G-01.tif", "Bengali/1/B-S-1-G-02.tif", "Bengali/1/B-S-1-F-01.tif",
             "Hindi/1/H-S-1-G-01.tif", "Hindi/1/H-S-1-F-03.tif"],
            ["B-1", "H-1"],
        ),
    ],
)  # fmt: skip
def test_signature_layouts(tmp_path: Path, protocol: str, files: list[str], expected_ids: list[str]) -> None:
    _write_all(tmp_path, [*files, "README.png", "other/x.png"])
    samples = load_signature_dataset(tmp_path, protocol)
    assert sorted({s.identity for s in samples}) == expected_ids
    by = Counter((s.identity, s.kind) for s in samples)
    first = expected_ids[0]
    assert by[(first, "genuine")] == 2 and by[(first, "skilled")] == 1
    assert by[(expected_ids[1], "genuine")] == 1 and by[(expected_ids[1], "skilled")] == 1
    assert len(samples) == 5 and all(s.path.is_file() for s in samples)
    assert samples[0].identity == first and samples[0].kind == "genuine"


@pytest.mark.parametrize(
    ("protocol", "layout"), [("cedar", "full_org/original_"), ("gpds", "c-<writer:03d>"), ("mcyt", "v<i>.bmp")]
)
def test_signature_nothing_found_names_layout(tmp_path: Path, protocol: str, layout: str) -> None:
    _img(tmp_path / "a" / "scan.png")
    with pytest.raises(DatasetError, match=rf"no {protocol.upper()} signatures found; expected .*{layout}"):
        load_signature_dataset(tmp_path, protocol)


def test_signature_manifest_and_unknown(tmp_path: Path) -> None:
    _img(tmp_path / "full_org" / "original_3_1.png")
    (tmp_path / "manifest.csv").write_text("path,writer,kind\nfull_org/original_3_1.png,3,genuine\nx.png,3,forgery\n")
    samples = load_signature_dataset(tmp_path, "manifest")
    assert [(s.identity, s.kind) for s in samples] == [("3", "genuine"), ("3", "skilled")]
    assert samples[0].path == tmp_path / "full_org" / "original_3_1.png"
    with pytest.raises(DatasetError, match="unknown signature dataset 'casia'"):
        load_signature_dataset(tmp_path, "casia")


# ----------------------------------------------------------------------------------------------- pairs CSV
def test_pairs_csv(tmp_path: Path) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text("reference,questioned,label,id\na.png, sub/b.png,1,p1\n/abs/c.png,d.png,false,p2\ne.png,f.png,,p3\n")
    df = read_pairs_csv(csv)
    assert list(df.columns) == ["id", "path_a", "path_b", "label", "line"]
    assert df["path_a"].tolist() == [tmp_path / "a.png", Path("/abs/c.png"), tmp_path / "e.png"]
    assert df["path_b"][0] == tmp_path / "sub" / "b.png"
    assert df["label"][0] == 1 and df["label"][1] == 0 and df["label"].isna()[2]
    assert df["id"].tolist() == ["p1", "p2", "p3"] and df["line"].tolist() == [2, 3, 4]
    plain = tmp_path / "plain.csv"
    plain.write_text("path_a,path_b\nx.png,y.png\n")
    df = read_pairs_csv(plain, images_root=tmp_path / "imgs")
    assert df["path_b"][0] == tmp_path / "imgs" / "y.png" and df["label"].isna().all() and df["id"][0] == "1"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("a,b\nx,y\n", "expected path_a,path_b"),
        ("path_a,path_b,label\nx,y,maybe\n", r"pairs\.csv:2: label 'maybe'"),
        ("path_a,path_b\nx,y\n ,z\n", r"pairs\.csv:3: empty path_a"),
        ("path_a,path_b,id\nx,y,1\nx,z,1\n", r"pairs\.csv:3: duplicate id '1'"),
        ("", "not a readable CSV"),
    ],
)
def test_pairs_csv_errors(tmp_path: Path, body: str, match: str) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text(body)
    with pytest.raises(DatasetError, match=match):
        read_pairs_csv(csv)
    with pytest.raises(DatasetError, match="no such pairs CSV"):
        read_pairs_csv(tmp_path / "missing.csv")


# ----------------------------------------------------------------------------------------------- sampler
def _labels() -> list[str]:
    # 6 identities with 5 samples, 2 with 2 samples, interleaved
    return [f"id{i % 6}" for i in range(30)] + ["small0", "small1", "small0", "small1"]


def test_pk_sampler_batches() -> None:
    labels = _labels()
    sampler = PKBatchSampler(labels, p=4, k=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 34 // 12
    for batch in batches:
        assert len(batch) == 12
        ids = [labels[i] for i in batch]
        assert len(set(ids)) == 4 and set(Counter(ids).values()) == {3}
        for j in range(4):  # identity-major blocks of K
            assert len({labels[i] for i in batch[3 * j : 3 * j + 3]}) == 1
        for ident in set(ids):
            idx = [i for i in batch if labels[i] == ident]
            if not ident.startswith("small"):
                assert len(set(idx)) == 3  # distinct samples when the identity has enough
    assert batches == list(PKBatchSampler(labels, p=4, k=3, seed=1))
    assert batches != list(PKBatchSampler(labels, p=4, k=3, seed=2))


def test_pk_sampler_small_skip_and_replace() -> None:
    labels = _labels()
    used = {labels[i] for b in PKBatchSampler(labels, p=6, k=3, small="skip", batches=20) for i in b}
    assert used == {f"id{i}" for i in range(6)}
    used = {labels[i] for b in PKBatchSampler(labels, p=7, k=3, small="replace", batches=20) for i in b}
    assert {"small0", "small1"} <= used
    with pytest.raises(ConfigError, match="only 6 identities have at least K=3"):
        PKBatchSampler(labels, p=7, k=3, small="skip")
    with pytest.raises(ConfigError, match="rank"):
        PKBatchSampler(labels, p=2, k=2, rank=2, world_size=2)


def test_pk_sampler_ranks_and_epochs() -> None:
    labels = _labels()
    ranks = [PKBatchSampler(labels, p=2, k=2, batches=5, rank=r, world_size=3, seed=7) for r in range(3)]
    per_rank = [list(s) for s in ranks]
    assert all(len(b) == 5 for b in per_rank)
    flat = [tuple(b) for bs in per_rank for b in bs]
    assert len(set(flat)) == 15  # no batch served to two ranks
    single = list(PKBatchSampler(labels, p=2, k=2, batches=15, seed=7))
    assert per_rank[1] == single[1::3]
    ranks[0].set_epoch(1)
    assert list(ranks[0]) != per_rank[0]


def test_pk_sampler_in_dataloader() -> None:
    labels = _labels()
    data = torch.arange(len(labels))
    loader = DataLoader(data, batch_sampler=PKBatchSampler(labels, p=3, k=2, batches=4))
    shapes = [tuple(b.shape) for b in loader]
    assert shapes == [(6,)] * 4


# ----------------------------------------------------------------------------------------------- splits
def test_split_identities_disjoint_deterministic(tmp_path: Path) -> None:
    ids = [f"w{i}" for i in range(40)]
    split = split_identities(ids, seed=3)
    assert [len(split[k]) for k in ("train", "val", "test")] == [28, 6, 6]
    assert set().union(*map(set, split.values())) == set(ids)
    assert sum(len(v) for v in split.values()) == 40
    assert split == split_identities(list(reversed(ids)) + ids[:5], seed=3)  # order and duplicates don't matter
    assert split != split_identities(ids, seed=4)
    tiny = split_identities(["a", "b", "c"], {"train": 0.9, "test": 0.1})
    assert len(tiny["train"]) == 2 and len(tiny["test"]) == 1
    with pytest.raises(ConfigError, match="sum to 1"):
        split_identities(ids, {"train": 0.5, "test": 0.2})

    path = tmp_path / "split.json"
    fp = save_split(split, path)
    assert fp == split_fingerprint(split) == split_fingerprint({k: v[::-1] for k, v in split.items()})
    assert load_split(path) == split
    path.write_text(path.read_text().replace(split["test"][0], "intruder"))
    with pytest.raises(DatasetError, match="fingerprint"):
        load_split(path)
    with pytest.raises(DatasetError, match="in both"):
        save_split({"train": ["a"], "test": ["a"]}, path)
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(DatasetError, match="not a split file"):
        load_split(tmp_path / "bad.json")

    samples = [Sample(Path(f"{i}.png"), ident) for i, ident in enumerate(ids)]
    parts = split_samples(samples, split)
    assert {s.identity for s in parts["val"]} == set(split["val"])


# ----------------------------------------------------------------------------------------------- dataset
def test_image_dataset(tmp_path: Path) -> None:
    samples = [
        Sample(_img(tmp_path / "b" / "0.png", 10), "b"),
        Sample(_img(tmp_path / "a" / "0.png", 200), "a"),
    ]
    ds = ImageDataset(samples, preprocess=lambda im: Crop(cv2.resize(im, (16, 16))), mode="gray")
    x, y = ds[0]
    assert x.shape == (16, 16) and x.dtype == np.uint8 and int(x[0, 0]) == 10 and y == 1
    ds = ImageDataset(samples, to_tensor=lambda a: torch.from_numpy(a).permute(2, 0, 1).float() / 255)
    x, y = ds[1]
    assert tuple(x.shape) == (3, 24, 32) and y == 0 and abs(float(x.mean()) - 200 / 255) < 1e-6
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert tuple(batch[0].shape) == (2, 3, 24, 32) and batch[1].tolist() == [1, 0]
    with pytest.raises(KeyError):
        ImageDataset(samples, classes=["a"])


def test_synthetic_generator_layout_matches_manifest(tmp_path: Path) -> None:
    from verify.synth.dataset import generate_dataset

    generate_dataset(tmp_path, writers=2, genuine=2, forgeries=1, seed=0, height=48, width=64, progress=False)
    by_layout = load_signature_dataset(tmp_path, "cedar")
    by_manifest = load_signature_dataset(tmp_path, "manifest")
    assert len(by_layout) == 6
    assert sorted(by_layout, key=str) == sorted(by_manifest, key=str)


def test_split_seed_keeps_a_continued_runs_split() -> None:
    samples = [Sample(Path(f"/x/{i}.png"), f"w{i}") for i in range(40)]
    first = _split(samples, TrainConfig(seed=0), ("train", "val"))
    assert _split(samples, TrainConfig(seed=1, split_seed=0), ("train", "val")) == first
    assert _split(samples, TrainConfig(seed=1), ("train", "val")) != first
