"""The Ray batch engine on a real local 2-CPU Ray cluster: same output as the local engine, resume after a kill.

One cluster serves the whole module (starting Ray takes seconds); the job is a few hundred pairs of tiny
synthetic signatures with bad rows (missing, corrupt, blank page) and the bundled signature student (with its
OOD gate).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from verify.batch import BatchConfig, run_batch
from verify.batch.ray_engine import run_batch_ray
from verify.batch.ray_images import RayOptions
from verify.batch.runner import CHUNK_SLEEP_ENV
from verify.errors import ConfigError
from verify.models.defaults import assets_dir
from verify.verifier import Verifier

VERIFY_BIN = str(Path(sys.executable).parent / "verify")
MODEL = assets_dir() / "models" / "signature-student"
NUMERIC = ["score", "p_match", "ood_score"]
VOLATILE = ["elapsed_ms"]
OPTIONS = RayOptions(batch_size=16, block_rows=8, partition_rows=64, actors=1)  # one actor: starts faster


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for this module; stopped at its end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """300 pairs of 24 synthetic v2 signatures plus 6 bad rows; the local engine's output as reference."""
    from verify.synth import generate_dataset

    root = tmp_path_factory.mktemp("raybatch")
    data = generate_dataset(root / "data", 4, 4, 2, seed=1, generator="v2", natural_size=True, progress=False)
    cv2.imwrite(str(data / "blank.png"), np.full((64, 96), 255, np.uint8))
    (data / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    images = sorted(str(p.relative_to(data)) for p in data.glob("full_*/*.png"))
    rng = np.random.default_rng(0)
    rows = [(images[a], images[b], int(images[a][:-6] == images[b][:-6])) for a, b in rng.integers(0, 24, (300, 2))]
    bad = [("missing.png", images[0]), (images[1], "corrupt.png"), ("blank.png", images[2])]
    for k, (a, b) in enumerate(bad * 2):
        rows.insert(40 + 50 * k, (a, b, 0))
    pairs = data / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "reference", "questioned", "label"])
        out.writerows((f"r{i}", a, b, label) for i, (a, b, label) in enumerate(rows))
    verifier = Verifier.from_path(MODEL)
    reference = root / "local.csv"
    local = run_batch(verifier, BatchConfig(pairs=pairs, out=reference, batch_size=16), progress=False)
    return {
        "root": root,
        "pairs": pairs,
        "reference": reference,
        "verifier": verifier,
        "rows": len(rows),
        "local": local,
    }


def _stable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=VOLATILE).reset_index(drop=True)


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every text column equal; scores equal to 1e-5 (batch composition changes float rounding)."""
    x, y = _stable(a), _stable(b)
    assert list(x.columns) == list(y.columns) and len(x) == len(y)
    for c in NUMERIC:
        xs, ys = pd.to_numeric(x[c], errors="coerce"), pd.to_numeric(y[c], errors="coerce")
        assert np.allclose(xs, ys, atol=1e-5, equal_nan=True), c
    rest = [c for c in x.columns if c not in NUMERIC]
    pd.testing.assert_frame_equal(x[rest], y[rest])


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_ray_engine_matches_local_row_for_row(ray_cluster, job: dict, tmp_path: Path) -> None:
    out = tmp_path / "ray.csv"
    two = RayOptions(batch_size=16, block_rows=8, partition_rows=64, actors=2)  # blocks interleave across actors
    summary = run_batch_ray(job["verifier"], BatchConfig(pairs=job["pairs"], out=out), two, progress=False)
    local, ray_rows = _read(job["reference"]), _read(out)
    _assert_same(local, ray_rows)
    assert (summary.rows, summary.processed, summary.resumed) == (job["rows"], job["rows"], 0)
    # missing x2, corrupt x2, blank page x2 at least (the model's OOD gate may refuse more of these tiny scans)
    local_summary = job["local"]
    assert (summary.failed, summary.rejected) == (local_summary.failed, local_summary.rejected)
    assert summary.failed >= 6 and summary.rejected >= 2
    assert summary.images_embedded == 27  # 24 signatures + 3 bad files, each once
    assert set(ray_rows["decision"]) == {"match", "no match", "error", "rejected"}
    assert (ray_rows["error"] != "").sum() == (local["error"] != "").sum() >= 6 and ray_rows["id"].is_unique
    assert not (tmp_path / "ray.csv.parts").exists()
    assert summary.report is not None and summary.report.exists()


@pytest.mark.slow
def test_parquet_output_has_typed_columns_and_same_values(ray_cluster, job: dict, tmp_path: Path) -> None:
    out = tmp_path / "ray.parquet"
    run_batch_ray(job["verifier"], BatchConfig(pairs=job["pairs"], out=out), OPTIONS, progress=False)
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 5 and (out / "_SUCCESS.json").exists() and not (out / "_job.json").exists()
    rows = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    local = _read(job["reference"])
    assert list(rows.columns) == list(local.columns) and rows["score"].dtype == np.float64
    assert np.allclose(rows["score"], pd.to_numeric(local["score"], errors="coerce"), atol=1e-5, equal_nan=True)
    assert rows["decision"].tolist() == local["decision"].tolist() and rows["ood_flag"].dtype == bool
    with pytest.raises(ConfigError, match="--resume"):  # finished: rerunning without --resume is refused
        run_batch_ray(job["verifier"], BatchConfig(pairs=job["pairs"], out=out), OPTIONS, progress=False)


def test_killed_job_resumes_only_unfinished_partitions(ray_cluster, job: dict, tmp_path: Path) -> None:
    """`verify batch --engine ray --address` on the shared cluster is SIGKILLed after its first partition; the
    rerun with resume redoes the other four, and the output holds every row exactly once, equal to the local
    engine's."""
    out = tmp_path / "killed.csv"
    parts = tmp_path / "killed.csv.parts"
    address = ray_cluster.get_runtime_context().gcs_address
    cmd = [VERIFY_BIN, "batch", "--engine", "ray", "--address", address, "--pairs", str(job["pairs"])]
    cmd += ["--out", str(out), "--model", str(MODEL), "--partition-rows", "64", "--actors", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, env={**os.environ, CHUNK_SLEEP_ENV: "30"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # generous: a loaded 2-core machine starts Ray actors slowly
        while not list(parts.glob("part-*.csv")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "the job should still be running (sleeping after its first partition)"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    written = sorted(p.name for p in parts.glob("part-*.csv"))
    assert written == ["part-00000.csv"] and not out.exists()
    with pytest.raises(ConfigError, match="--resume"):
        run_batch_ray(job["verifier"], BatchConfig(pairs=job["pairs"], out=out), OPTIONS, progress=False)
    config = BatchConfig(pairs=job["pairs"], out=out, resume=True)
    summary = run_batch_ray(job["verifier"], config, OPTIONS, progress=False)
    assert (summary.resumed, summary.processed) == (64, job["rows"] - 64)
    rows = _read(out)
    assert rows["id"].is_unique and len(rows) == job["rows"]
    _assert_same(_read(job["reference"]), rows)
    again = run_batch_ray(job["verifier"], config, OPTIONS, progress=False)  # finished: nothing to redo
    assert (again.resumed, again.processed) == (job["rows"], 0)


def test_embed_on_ray_equals_local_and_builds_a_gallery(ray_cluster, job: dict, tmp_path: Path) -> None:
    """`verify embed --engine ray` (in-process CLI on the running cluster) = the local engine's embeddings;
    `verify gallery build` fills a gallery from them; identify finds each writer's own samples."""
    from verify.cli import main
    from verify.gallery import FaissGallery
    from verify.gallery.embeddings_file import read_embeddings

    images = job["pairs"].parent
    outs = {e: tmp_path / f"{e}.parquet" for e in ("local", "ray")}
    for engine, out in outs.items():
        args = ["embed", "--images", str(images), "--out", str(out), "--model", str(MODEL), "--engine", engine]
        code = main(args + (["--actors", "1"] if engine == "ray" else []))
        assert code == 1  # blank page and corrupt file cannot be embedded
    (local_rows, local_x), (ray_rows, ray_x) = read_embeddings(outs["local"]), read_embeddings(outs["ray"])
    pd.testing.assert_frame_equal(local_rows.drop(columns="ood_score"), ray_rows.drop(columns="ood_score"))
    assert np.allclose(local_x, ray_x, atol=1e-5)
    assert np.allclose(local_rows["ood_score"].astype(float), ray_rows["ood_score"].astype(float), equal_nan=True)
    status = dict(zip(ray_rows["id"], ray_rows["status"], strict=True))
    assert (status["blank.png"], status["corrupt.png"]) == ("rejected", "error") and len(status) == 26
    assert set(ray_rows["fingerprint"]) == {job["verifier"].model.fingerprint}
    ok = ray_rows[ray_rows["status"] == "ok"]
    writer = [f"{i.split('/')[0]}-{i.split('_')[2]}" for i in ok["id"]]  # full_org/original_{w}_{k}.png -> full_org-w
    labels = pd.DataFrame({"id": ok["id"], "identity": writer})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    args = ["gallery", "build", "--gallery", str(tmp_path / "g"), "--from", str(outs["ray"])]
    assert main([*args, "--labels", str(tmp_path / "labels.csv"), "--model", str(MODEL)]) == 0
    with FaissGallery.open(tmp_path / "g", fingerprint=job["verifier"].model.fingerprint) as gallery:
        assert gallery.stats()["samples"] == len(ok) and gallery.stats()["index_type"] == "Flat"
        for i in np.flatnonzero(ray_rows["status"] == "ok")[:5]:
            assert gallery.search(ray_x[i], k=1)[0][0].score == pytest.approx(1.0, abs=1e-5)


def test_claims_and_a_file_uri_input_equal_the_local_engine(ray_cluster, job: dict, tmp_path: Path) -> None:
    """Claims against a gallery (read on the driver) from a Parquet input named by a file:// URI: the Ray
    engine's rows equal the local engine's (unknown identity, missing and blank images included)."""
    from verify.gallery import FaissGallery

    data, verifier = job["pairs"].parent, job["verifier"]
    images = sorted(str(p.relative_to(data)) for p in data.glob("full_*/*.png"))
    writer = {rel: rel.split("_")[2] for rel in images}  # full_org/original_{w}_{k}.png -> w
    with FaissGallery.create(tmp_path / "g", dim=verifier.model.dim, fingerprint=verifier.model.fingerprint) as g:
        for rel in images:
            probe = verifier.probe(str(data / rel))
            if rel.startswith("full_org") and rel.endswith("_1.png") and probe.embedding is not None:
                g.enroll(f"w{writer[rel]}", probe.embedding[None])
        assert g.stats()["identities"] >= 2
    rows = [(rel, f"w{writer[rel]}") for rel in images] + [(images[0], "w2"), (images[1], "nobody")]
    rows += [("missing.png", "w1"), ("blank.png", "w1")]
    claims = data / "claims.parquet"
    pd.DataFrame(rows, columns=["questioned", "claimed_identity"]).to_parquet(claims, index=False)
    outs = {e: tmp_path / f"{e}.csv" for e in ("local", "ray")}
    with FaissGallery.open(tmp_path / "g", fingerprint=verifier.model.fingerprint) as gallery:
        config = {e: BatchConfig(pairs=claims.as_uri(), out=o, gallery=tmp_path / "g") for e, o in outs.items()}
        run_batch(verifier, config["local"], gallery=gallery, progress=False)
        run_batch_ray(verifier, config["ray"], OPTIONS, gallery=gallery, progress=False)
    local, ray_rows = _read(outs["local"]), _read(outs["ray"])
    _assert_same(local, ray_rows)
    assert "match" in set(ray_rows["decision"]) and "not enrolled" in " ".join(ray_rows["error"])


def test_resume_with_other_settings_is_refused(ray_cluster, job: dict, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    parts = tmp_path / "x.csv.parts"
    parts.mkdir()
    (parts / "_job.json").write_text('{"job": {"threshold": 0.1}}')
    with pytest.raises(ConfigError, match="other settings"):
        run_batch_ray(job["verifier"], BatchConfig(pairs=job["pairs"], out=out, resume=True), OPTIONS, progress=False)


def test_ray_flags_need_the_ray_engine(job: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from verify.cli import main

    args = ["batch", "--pairs", str(job["pairs"]), "--out", str(tmp_path / "o.csv"), "--model", str(MODEL)]
    assert main([*args, "--address", "127.0.0.1:6379", "--no-progress"]) == 2
    assert "--engine ray" in capsys.readouterr().err and not (tmp_path / "o.csv").exists()
    with pytest.raises(ConfigError):
        RayOptions(partition_rows=0)


def test_plan_gives_every_actor_several_blocks() -> None:
    from verify.batch.ray_images import plan

    assert plan(2010, 0, 2, RayOptions()) == (2, 8)  # 4 blocks per actor: none idles at the end of a job
    assert plan(27, 0, 2, RayOptions(block_rows=8, actors=1)) == (1, 4)
    assert plan(3, 0, 16, RayOptions()) == (3, 3)  # never more actors than blocks, nor blocks than images
    assert plan(1_000_000, 4, 64, RayOptions()) == (4, 1954)  # one actor per GPU; blocks of <= 512 images


def test_gate_flag_on_ray_equals_the_local_engine(ray_cluster, job: dict, tmp_path: Path) -> None:
    """`--gate flag` on the cluster: a face photo the gate refuses is scored and flagged, as on the local engine."""
    data = job["pairs"].parent
    shutil.copy(assets_dir() / "demo" / "faces" / "obama.jpg", tmp_path / "face.jpg")
    images = sorted(p.relative_to(data) for p in data.glob("full_*/*.png"))[:3]
    for image in images:
        (tmp_path / image).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / image, tmp_path / image)
    pairs = tmp_path / "pairs.csv"
    rows = [(images[0], "face.jpg"), (images[0], images[1]), ("face.jpg", images[2])]
    pd.DataFrame(rows, columns=["reference", "questioned"]).to_csv(pairs, index_label="id")
    verifier = Verifier(job["verifier"].model, gate_mode="flag")
    local_summary = run_batch(verifier, BatchConfig(pairs=pairs, out=tmp_path / "local.csv"), progress=False)
    summary = run_batch_ray(verifier, BatchConfig(pairs=pairs, out=tmp_path / "ray.csv"), OPTIONS, progress=False)
    assert (summary.ok, summary.flagged) == (local_summary.ok, local_summary.flagged) == (3, 2)
    local, ray_rows = _read(tmp_path / "local.csv"), _read(tmp_path / "ray.csv")
    _assert_same(local, ray_rows)
    assert ray_rows["ood_flag"].tolist() == ["True", "False", "True"] and (ray_rows["error"] == "").all()
    assert set(ray_rows["decision"]) <= {"match", "no match"}
