"""`verify batch` with the input, the images root and image paths named by URIs (pyarrow filesystems).

`file://` URIs give the plain-path results; a remote store is stood in for by a local folder served as
`s3://bucket` (the pyarrow filesystem lookup patched, no network): CSV, Parquet and images are read through it.
Unknown schemes and stores that cannot be reached are typed errors (exit 2 with one line), not tracebacks.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from verify.batch import BatchConfig, read_batch_input, run_batch, uri
from verify.batch.runner import _meta
from verify.cli import main
from verify.errors import DatasetError
from verify.verifier import Verifier

NUMERIC = ["score", "p_match", "ood_score"]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> dict:
    """A tiny signature model, 12 synthetic signatures and a pairs CSV (relative paths) with bad rows; the
    plain-path run's output as the reference."""
    from verify.synth import generate_dataset

    root = tmp_path_factory.mktemp("batch_uri")
    tiny_model_factory(root / "model", threshold=0.5)
    data = generate_dataset(root / "data", 2, 3, 2, seed=0, height=64, width=96, progress=False)
    cv2.imwrite(str(data / "blank.png"), np.full((64, 96), 255, np.uint8))
    images = sorted(str(p.relative_to(data)) for p in data.glob("full_*/*.png"))
    rows = [(images[i], images[(i + 3) % len(images)], i % 2) for i in range(len(images))]
    rows += [(images[0], "missing.png", 0), ("blank.png", images[1], 1), (images[2], "../outside.png", 0)]
    pairs = data / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "reference", "questioned", "label"])
        out.writerows((f"r{i}", a, b, label) for i, (a, b, label) in enumerate(rows))
    pd.read_csv(pairs, dtype=str).to_parquet(data / "pairs.parquet", index=False)
    verifier = Verifier.from_path(root / "model")
    reference = root / "reference.csv"
    run_batch(verifier, BatchConfig(pairs=pairs, out=reference, batch_size=4), progress=False)
    return {"data": data, "pairs": pairs, "model": root / "model", "verifier": verifier, "reference": reference}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns="elapsed_ms")


def _assert_same(a: Path, b: Path, same_errors: bool = True) -> None:
    """Equal results (scores to 1e-5); with `same_errors` False, errors only at the same rows (a file missing
    from a store is reported in the store's words)."""
    x, y = _read(a), _read(b)
    if not same_errors:
        assert ((x["error"] != "") == (y["error"] != "")).all()
        x, y = x.drop(columns="error"), y.drop(columns="error")
    assert list(x.columns) == list(y.columns) and len(x) == len(y)
    for c in NUMERIC:
        xs, ys = pd.to_numeric(x[c], errors="coerce"), pd.to_numeric(y[c], errors="coerce")
        assert np.allclose(xs, ys, atol=1e-5, equal_nan=True), c
    rest = [c for c in x.columns if c not in NUMERIC]
    pd.testing.assert_frame_equal(x[rest], y[rest])


@pytest.fixture
def bucket(job: dict, monkeypatch: pytest.MonkeyPatch) -> str:
    """`s3://bucket` served from the job's data folder (no network): pyarrow's lookup patched."""
    import pyarrow.fs as pafs

    store = pafs.SubTreeFileSystem(str(job["data"]), pafs.LocalFileSystem())
    real = uri._filesystem

    def lookup(root: str) -> tuple[pafs.FileSystem, str]:
        if not root.startswith("s3://"):
            return real(root)
        if root != "s3://bucket":
            raise OSError(f"When resolving region for bucket '{root[5:]}': Could not resolve hostname")
        return store, ""

    monkeypatch.setattr(uri, "_filesystem", lookup)
    return "s3://bucket"


@pytest.mark.parametrize("name", ["pairs.csv", "pairs.parquet"])
def test_file_uri_input_gives_the_plain_path_results(job: dict, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out.csv"
    code = main(["batch", "--pairs", (job["data"] / name).as_uri(), "--out", str(out), "--model", str(job["model"])])
    assert code == 1  # the bad rows
    _assert_same(job["reference"], out)


def test_file_uri_image_paths_and_images_root(job: dict, tmp_path: Path) -> None:
    frame = pd.read_csv(job["pairs"], dtype=str, keep_default_na=False)
    for col in ("reference", "questioned"):  # absolute file:// URIs for the good images, inside the root
        frame[col] = [(job["data"] / p).as_uri() if (job["data"] / p).is_file() else p for p in frame[col]]
    pairs = tmp_path / "uri_pairs.csv"
    frame.to_csv(pairs, index=False)
    out = tmp_path / "out.csv"
    run_batch(job["verifier"], BatchConfig(pairs=pairs, out=out, images_root=job["data"].as_uri()), progress=False)
    got, want = _read(out), _read(job["reference"])
    assert got["decision"].tolist() == want["decision"].tolist()
    assert np.allclose(pd.to_numeric(got["score"]), pd.to_numeric(want["score"]), atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("name", ["pairs.csv", "pairs.parquet"])
def test_remote_store_input_and_images(job: dict, bucket: str, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out.csv"
    summary = run_batch(job["verifier"], BatchConfig(pairs=f"{bucket}/{name}", out=out), progress=False)
    _assert_same(job["reference"], out, same_errors=False)
    errors = _read(out)["error"].tolist()
    assert "outside the images folder" in errors[-1] and "s3://bucket/missing.png: cannot read it" in errors[-3]
    assert summary.rows == len(_read(out)) and summary.failed == (_read(out)["error"] != "").sum()
    config = BatchConfig(pairs=f"{bucket}/{name}", out=out)
    meta = _meta(job["verifier"], config, read_batch_input(config.pairs))
    assert (meta["input"], meta["images_root"]) == (f"{bucket}/{name}", bucket)


def test_remote_image_paths_keep_the_images_root_rule(job: dict, bucket: str, tmp_path: Path) -> None:
    pairs = tmp_path / "p.csv"
    image = sorted(p.name for p in (job["data"] / "full_org").glob("*.png"))[0]
    rows = [[f"{bucket}/full_org/{image}", f"full_org/{image}"], [f"{bucket}/full_org/{image}", "s3://other/x.png"]]
    pd.DataFrame(rows, columns=["reference", "questioned"]).to_csv(pairs, index=False)
    out = tmp_path / "out.csv"
    run_batch(job["verifier"], BatchConfig(pairs=pairs, out=out, images_root=bucket), progress=False)
    got = _read(out)
    assert got.loc[0, "error"] == "" and float(got.loc[0, "score"]) == pytest.approx(1.0, abs=1e-5)
    assert "outside the images folder" in got.loc[1, "error"]
    anywhere = BatchConfig(pairs=pairs, out=tmp_path / "any.csv", images_root=bucket, allow_outside_root=True)
    run_batch(job["verifier"], anywhere, progress=False)
    assert "s3://other/x.png: cannot open this URI (When resolving region" in _read(anywhere.out).loc[1, "error"]


def test_unknown_scheme_and_unreachable_store_are_typed_errors(
    job: dict, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o.csv")
    for source, words in [
        ("foo://x/pairs.csv", "Unrecognized filesystem type"),
        ("s3://nowhere/pairs.csv", "Could not resolve hostname"),
        (f"{bucket}/absent.csv", "cannot read it"),
        ("file://host/pairs.csv", "file:///abs/path"),
    ]:
        assert main(["batch", "--pairs", source, "--out", out, "--model", str(job["model"]), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert source in err and words in err and len(err.splitlines()) == 1, err
    with pytest.raises(DatasetError, match="no such pairs file"):
        run_batch(job["verifier"], BatchConfig(pairs=(tmp_path / "none.csv").as_uri(), out=tmp_path / "o.csv"))


def test_uri_helpers() -> None:
    assert uri.is_uri("s3://b/k") and not uri.is_uri("C:\\x") and not uri.is_uri("rel/x.png")
    assert uri.local_path("file:///a/b%20c.png") == "/a/b c.png" and uri.local_path("s3://b/k") is None
    assert uri.join("s3://b/root", "x/y.png") == ("s3://b/root/x/y.png", False)
    assert uri.join("s3://b/root", "../y.png") == ("s3://b/y.png", True)
    assert uri.is_under("s3://b/root/x.png", "s3://b/root") and not uri.is_under("s3://b/rootx/y", "s3://b/root")
    assert not uri.is_under("gs://b/root/x.png", "s3://b/root") and uri.parent("s3://b/a/p.csv") == "s3://b/a"
