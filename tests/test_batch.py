"""`verify batch`: per-row errors and flags, exit codes, resume after SIGKILL, shard + merge, claims, journal."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from verify.batch import Shard, parse_shard, shard_of
from verify.batch.output import ResultJournal
from verify.batch.runner import CHUNK_SLEEP_ENV
from verify.cli import main
from verify.errors import ConfigError
from verify.models import new_card, save_model
from verify.models.network import create_timm_network
from verify.verifier import Verifier

VERIFY_BIN = str(Path(sys.executable).parent / "verify")
ARCH = {"kind": "timm", "backbone": "resnet18", "dim": 16, "in_chans": 1}
VOLATILE = ["elapsed_ms"]  # the only column allowed to differ between two runs


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny signature model, synthetic signatures, and a pairs CSV with 5 good rows and 3 bad ones."""
    from verify.synth import generate_dataset

    root = tmp_path_factory.mktemp("batch")
    card = new_card(
        name="tiny-sig",
        modality="signature",
        architecture=ARCH,
        input={"height": 32, "width": 48, "channels": 1},
        preprocessing={"kind": "signature"},
        calibration={"threshold": 0.5, "source": "test"},
    )
    save_model(root / "model", create_timm_network(ARCH).eval(), card)
    data = generate_dataset(
        root / "data", writers=3, genuine=3, forgeries=2, seed=0, height=64, width=96, progress=False
    )
    verifier = Verifier.from_path(root / "model")
    usable = [p for p in sorted(data.glob("full_*/*.png")) if verifier.probe(str(p)).rejected is None]
    assert len(usable) >= 5, "the synthetic generator should give at least 5 inked images"
    cv2.imwrite(str(data / "blank.png"), np.full((64, 96), 255, np.uint8))
    (data / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    rel = [str(p.relative_to(data)) for p in usable]
    rows = [(rel[i], rel[(i + 1) % 5], i % 2) for i in range(5)]
    rows += [(rel[0], "missing.png", 0), ("corrupt.png", rel[1], 0), ("blank.png", rel[2], 1)]
    pairs = data / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["reference", "questioned", "label", "note"])
        writer.writerows((a, b, label, f"n{i}") for i, (a, b, label) in enumerate(rows))
    reference = root / "reference.csv"
    assert _cli("--pairs", pairs, "--out", reference, "--model", root / "model", "--batch-size", "3") == 1
    return {"root": root, "model": root / "model", "pairs": pairs, "data": data, "reference": reference}


def _cli(*args: object) -> int:
    return main(["batch", *map(str, args), "--no-progress"])


def _stable(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=VOLATILE)


def _num(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(float)


def _same(a: Path, b: Path) -> bool:
    """Equal results: the same text in every column, but scores equal to 1e-5 (batch composition changes
    float rounding in the network)."""
    x, y = _stable(a), _stable(b)
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return False
    numeric = ["score", "p_match", "ood_score"]
    rest = [c for c in x.columns if c not in numeric]
    close = all(np.allclose(_num(x[c]), _num(y[c]), atol=1e-5, equal_nan=True) for c in numeric)
    return close and x[rest].equals(y[rest])


def test_shards_are_a_stable_sha1_partition() -> None:
    assert shard_of("row-17", 7) == int(hashlib.sha1(b"row-17").hexdigest()[:16], 16) % 7
    assert [shard_of(str(k), 4) for k in range(1, 9)] == [0, 1, 2, 3, 2, 2, 1, 1]  # fixed across runs/machines
    counts = np.bincount([shard_of(str(k), 4) for k in range(4000)], minlength=4)
    assert counts.min() > 900 and counts.max() < 1100
    assert parse_shard("2/5") == Shard(2, 5)
    for bad in ("5/5", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


@pytest.mark.timeout(180)
def test_bad_rows_get_error_or_flag_and_exit_1_via_subprocess(job: dict, tmp_path: Path) -> None:
    out = tmp_path / "res.csv"
    cmd = [VERIFY_BIN, "batch", "--model", str(job["model"]), "--pairs", str(job["pairs"]), "--out", str(out)]
    proc = subprocess.run([*cmd, "--workers", "2", "--batch-size", "4", "--json"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["rows"], summary["ok"], summary["failed"], summary["rejected"]) == (8, 5, 3, 1)
    assert summary["images_decoded"] == 8  # 5 inked + missing + corrupt + blank, each once
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(res.columns[:5]) == ["reference", "questioned", "label", "note", "row"]
    assert res["note"].tolist() == [f"n{i}" for i in range(8)] and res["row"].tolist() == [str(i) for i in range(1, 9)]
    good, (missing, corrupt, blank) = res.iloc[:5], (res.iloc[5], res.iloc[6], res.iloc[7])
    assert (good["error"] == "").all() and (good["ood_flag"] == "False").all()
    assert set(good["decision"]) <= {"match", "no match"} and (good["threshold"] == "0.5").all()
    verifier = Verifier.from_path(job["model"])
    first = verifier.match(str(job["data"] / good["reference"][0]), str(job["data"] / good["questioned"][0]))
    assert float(good["score"][0]) == pytest.approx(first.score, abs=1e-5)
    assert missing["decision"] == "error" and "questioned:" in missing["error"] and "no such file" in missing["error"]
    assert corrupt["decision"] == "error" and corrupt["error"].startswith("reference:") and corrupt["score"] == ""
    assert blank["decision"] == "rejected" and blank["ood_flag"] == "True" and "blank" in blank["error"]
    assert _same(out, job["reference"])  # workers + batch size do not change results
    assert (tmp_path / "res.report.md").is_file() and (tmp_path / "res.roc.png").stat().st_size > 0
    report = (tmp_path / "res.report.md").read_text()
    assert "Brackets" not in report and "n/a images" not in report  # no promise of intervals it does not show
    assert "> Only 2 same-person and 3 different-person labelled pairs" in report and "How to read it: FRR" in report
    assert not (tmp_path / "res.csv.partial").exists()


@pytest.mark.timeout(180)
def test_resume_after_sigkill_gives_every_row_exactly_once(job: dict, tmp_path: Path) -> None:
    out = tmp_path / "res.csv"
    journal = tmp_path / "res.csv.partial"
    cmd = [VERIFY_BIN, "batch", "--model", str(job["model"]), "--pairs", str(job["pairs"]), "--out", str(out)]
    env = {**os.environ, CHUNK_SLEEP_ENV: "30"}
    proc = subprocess.Popen([*cmd, "--chunk-rows", "3", "--no-progress"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while not (journal.exists() and journal.read_text().count("\n") >= 4) and time.monotonic() < deadline:
            assert proc.poll() is None, "the batch job ended before it was killed"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert journal.read_text().count("\n") == 4 and not out.exists()  # header + one chunk of 3 rows
    with journal.open("a") as fh:  # as if the kill had cut a chunk mid-line
        fh.write("x.png,y.png,1,n9,9,0.1")
    assert _cli("--pairs", job["pairs"], "--out", out, "--model", job["model"]) == 2  # refuses without --resume
    # in-process with workers: forks DataLoader workers from a process that already ran cv2 and torch
    assert _cli("--pairs", job["pairs"], "--out", out, "--model", job["model"], "--resume", "--workers", "2") == 1
    assert _same(out, job["reference"])
    assert not journal.exists()
    assert _cli("--pairs", job["pairs"], "--out", out, "--model", job["model"], "--resume") == 1  # done: no-op
    assert _same(out, job["reference"])


def test_resume_refuses_a_journal_of_other_settings(job: dict, tmp_path: Path) -> None:
    out = tmp_path / "res.csv"
    journal = ResultJournal(out, ["a", "row"], "row", {"threshold": 0.5})
    journal.open(resume=False)
    args = ("--pairs", job["pairs"], "--out", out, "--model", job["model"], "--resume", "--threshold", "0.7")
    assert _cli(*args) == 2


def test_shards_then_merge_equal_a_single_run(job: dict, tmp_path: Path) -> None:
    parts = [tmp_path / f"part{i}.csv" for i in range(3)]
    for i, part in enumerate(parts):
        assert _cli("--pairs", job["pairs"], "--out", part, "--model", job["model"], "--shard", f"{i}/3") in (0, 1)
    sizes = [len(pd.read_csv(p)) for p in parts]
    assert sum(sizes) == 8 and max(sizes) < 8
    merged = tmp_path / "merged.csv"
    assert main(["batch", "merge", *map(str, parts), "--out", str(merged), "--pairs", str(job["pairs"])]) == 0
    assert _same(merged, job["reference"])
    assert main(["batch", "merge", str(parts[0]), str(parts[1]), "--out", str(tmp_path / "m2.csv"),
                 "--pairs", str(job["pairs"])]) == 2  # fmt: skip
    assert main(["batch", "merge", str(parts[0]), str(parts[0]), "--out", str(tmp_path / "m3.csv")]) == 2
    assert not (tmp_path / "m2.csv").exists() and not (tmp_path / "m3.csv").exists()


def test_claims_against_a_gallery(job: dict, tmp_path: Path) -> None:
    from verify.gallery import FaissGallery

    verifier = Verifier.from_path(job["model"])
    ref = pd.read_csv(job["pairs"], dtype=str)
    enrolled = verifier.probe(str(job["data"] / ref["reference"][0])).embedding
    with FaissGallery.create(tmp_path / "g", dim=16, fingerprint=verifier.model.fingerprint) as gallery:
        gallery.enroll("alice", enrolled[None])
    claims = tmp_path / "claims.csv"
    pd.DataFrame(
        {"id": ["c1", "c2", "c3"], "questioned": [str(job["data"] / ref["questioned"][0])] * 2 + ["nope.png"],
         "claimed_identity": ["alice", "bob", "alice"]}
    ).to_csv(claims, index=False)  # fmt: skip
    out = tmp_path / "claims_out.csv"
    args = ("--pairs", claims, "--out", out, "--model", job["model"], "--gallery", tmp_path / "g")
    assert _cli(*args, "--images-root", job["data"]) == 1
    res = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("id")
    direct = verifier.match(str(job["data"] / ref["reference"][0]), str(job["data"] / ref["questioned"][0]))
    assert float(res.loc["c1", "score"]) == pytest.approx(direct.score, abs=1e-5) and res.loc["c1", "error"] == ""
    assert "not enrolled" in res.loc["c2", "error"] and "no such file" in res.loc["c3", "error"]
    assert _cli("--pairs", claims, "--out", tmp_path / "x.csv", "--model", job["model"]) == 2  # needs --gallery


def test_journal_drops_a_cut_line_and_finishes_in_input_order(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    journal = ResultJournal(out, ["name", "row", "error"], "row", {"m": 1})
    assert journal.open(resume=False) == set()
    journal.append(pd.DataFrame({"name": ["c", "a"], "row": ["3", "1"], "error": ["multi\nline", ""]}))
    with journal.journal.open("a") as fh:
        fh.write("b,2,half-writ")
    again = ResultJournal(out, ["name", "row", "error"], "row", {"m": 1})
    assert again.open(resume=True) == {"3", "1"}
    again.append(pd.DataFrame({"name": ["b"], "row": ["2"], "error": ["x"]}))
    rows = again.finish()
    assert rows["name"].tolist() == ["a", "b", "c"] and rows.loc[2, "error"] == "multi line"
    assert pd.read_csv(out, dtype=str, keep_default_na=False).equals(rows)
    ResultJournal(out, ["name", "row", "error"], "row", {"m": 1}).open(resume=False)
    with pytest.raises(ConfigError, match="made by another run"):
        ResultJournal(out, ["name", "row", "error"], "row", {"m": 2}).open(resume=True)


def test_pairs_from_parquet_give_the_csv_results(job: dict, tmp_path: Path) -> None:
    frame = pd.read_csv(job["pairs"], dtype=str, keep_default_na=False)
    parquet = job["data"] / "pairs.parquet"  # beside the CSV: the same relative image paths
    frame.to_parquet(parquet, index=False)
    out = tmp_path / "from_parquet.csv"
    assert _cli("--pairs", parquet, "--out", out, "--model", job["model"], "--batch-size", "3") == 1
    assert _same(job["reference"], out)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    assert _cli("--pairs", tmp_path / "bad.parquet", "--out", tmp_path / "x.csv", "--model", job["model"]) == 2
