"""`verify batch` guards: resume only the same run (input content, model, threshold), malformed rows (a stray comma,
an empty path, an unknown label) fail alone,
ids with line breaks refused, merge checks the input's content, --out checked before the run, the path rule."""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from verify.cli import main
from verify.data.pairs_csv import LABEL_WORDS
from verify.verifier import Verifier

VERIFY_BIN = str(Path(sys.executable).parent / "verify")


@pytest.fixture
def images(synth_signatures: Path, tmp_path: Path) -> Path:
    """Six signatures of two writers copied into tmp_path/data (names a1..a3, b1..b3)."""
    data = tmp_path / "data"
    data.mkdir()
    for writer, letter in ((1, "a"), (2, "b")):
        for i in range(1, 4):
            shutil.copy(synth_signatures / "full_org" / f"original_{writer}_{i}.png", data / f"{letter}{i}.png")
    return data


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _cli(*args: object) -> int:
    return main(["batch", *map(str, args), "--no-progress"])


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VERIFY_BIN, "batch", *map(str, args), "--no-progress"], capture_output=True, text=True)


HEADER = ["reference", "questioned", "label"]
ROWS_A = [["a1.png", "a2.png", "1"], ["a1.png", "b1.png", "0"], ["b2.png", "b3.png", "1"]]
ROWS_B = [["b1.png", "b2.png", "1"], ["a3.png", "b1.png", "0"], ["a2.png", "a3.png", "1"]]


def test_resume_refuses_an_output_of_other_input_model_threshold_or_gate_mode(
    images: Path, tiny_model: Path, tiny_model_factory, tmp_path: Path
) -> None:
    pairs_a, pairs_b = _write(images / "a.csv", [HEADER, *ROWS_A]), _write(images / "b.csv", [HEADER, *ROWS_B])
    out = tmp_path / "ab.csv"
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model) == 0
    before = out.read_bytes()
    proc = _run("--pairs", pairs_b, "--out", out, "--model", tiny_model, "--resume")
    assert proc.returncode == 2 and "made by another run" in proc.stderr and "input_sha256" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    other_model = tiny_model_factory(tmp_path / "other", seed=1)
    assert _cli("--pairs", pairs_a, "--out", out, "--model", other_model, "--resume") == 2
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model, "--resume", "--threshold", "0.5") == 2
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model, "--resume", "--gate-mode", "flag") == 2
    _write(pairs_a, [HEADER, *ROWS_B])  # same path and length, other content
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model, "--resume") == 2
    assert out.read_bytes() == before
    _write(pairs_a, [HEADER, *ROWS_A])
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model, "--resume") == 0  # the same run: a no-op
    assert out.read_bytes() == before
    record = Path(str(out) + ".run.json")
    legacy = {k: v for k, v in json.loads(record.read_text()).items() if k != "gate_mode"}
    record.write_text(json.dumps(legacy))  # written before gate modes: every run then rejected
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model, "--resume", "--gate-mode", "flag") == 2
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model, "--resume") == 0
    Path(str(out) + ".run.json").unlink()  # no record: nothing to check it against
    assert _cli("--pairs", pairs_a, "--out", out, "--model", tiny_model, "--resume") == 2


def test_rows_with_a_wrong_number_of_fields_fail_alone_never_shifted(images: Path, tiny_model: Path) -> None:
    pairs = images / "pairs.csv"
    pairs.write_text(
        "reference,questioned,label\n"
        "a1.png,a2.png,1,b3.png\n"  # first row with an extra field (pandas would take column 1 as an index)
        "a1.png,b1.png,0\n"
        "b2.png,b3.png,1,x,y\n"
        "a3.png\n"
        "b1.png,b2.png,1\n"
    )
    out = images / "out.csv"
    assert _cli("--pairs", pairs, "--out", out, "--model", tiny_model) == 1
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert res["row"].tolist() == ["1", "2", "3", "4", "5"]
    for i, fields in ((0, 4), (2, 5), (3, 1)):
        assert res["decision"][i] == "error" and res["score"][i] == ""
        assert f"{fields} fields where the header has 3" in res["error"][i]
    verifier = Verifier.from_path(tiny_model)
    for i, (a, b) in ((1, ("a1.png", "b1.png")), (4, ("b1.png", "b2.png"))):
        assert (res["reference"][i], res["questioned"][i], res["error"][i]) == (a, b, "")
        assert float(res["score"][i]) == pytest.approx(verifier.match(str(images / a), str(images / b)).score, abs=1e-5)


def test_an_empty_path_or_an_unknown_label_fails_its_row_alone(images: Path, tiny_model: Path) -> None:
    pairs = _write(images / "pairs.csv", [HEADER, ["a1.png", "", "1"], ["a1.png", "a2.png", "maybe"],
                                          [" ", "b1.png", "0"], ["b2.png", "b3.png", "same"]])  # fmt: skip
    out = images / "out.csv"
    assert _cli("--pairs", pairs, "--out", out, "--model", tiny_model) == 1  # ran; some rows failed
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert res["decision"].tolist()[:3] == ["error"] * 3 and res["score"].tolist()[:3] == [""] * 3
    assert res["error"].tolist()[:3] == [
        "line 2: empty questioned path; not scored",
        f"line 3: label 'maybe'; expected {LABEL_WORDS}; not scored",
        "line 4: empty reference path; not scored",
    ]
    assert res["error"][3] == "" and res["decision"][3] in ("match", "no match")


def test_an_overlong_path_cell_or_file_name_fails_its_row_alone(images: Path, tiny_model: Path) -> None:
    """A 2 MB cell (over the csv module's 128 KiB default) and names longer than the file system allows are row
    errors with their length, not a whole-input error or a traceback; the other rows are scored."""
    long_name = "x" * 300 + "/a1.png"  # one name over Linux's 255: stat() raises ENAMETOOLONG
    pairs = _write(images / "pairs.csv", [HEADER, ["a1.png", "a2.png", "1"], ["z" * 2_000_000, "b1.png", "0"],
                                          ["a1.png", long_name, "1"], ["b2.png", "b3.png", "1"]])  # fmt: skip
    out = images / "out.csv"
    assert _cli("--pairs", pairs, "--out", out, "--model", tiny_model) == 1  # ran; some rows failed
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert res["decision"].tolist()[1:3] == ["error", "error"]
    assert res["error"][1] == "line 3: reference path of 2,000,000 characters; not scored"
    assert "longer than the file system allows" in res["error"][2] and " characters): no such file" in res["error"][2]
    assert len(res["error"][2]) < 400  # the path is shortened in the message
    assert [res["error"][i] for i in (0, 3)] == ["", ""] and res["decision"][3] in ("match", "no match")


def test_a_path_argument_the_file_system_refuses_is_one_line(images: Path, tiny_model: Path, capsys) -> None:
    """Names longer than the file system allows, given as --pairs, --out or --model: exit 2, one shortened line."""
    long_name = str(images / ("y" * 300))
    pairs = _write(images / "pairs.csv", [HEADER, *ROWS_A])
    for args in (["--pairs", long_name, "--out", images / "o.csv", "--model", tiny_model],
                 ["--pairs", pairs, "--out", long_name + "/o.csv", "--model", tiny_model],
                 ["--pairs", pairs, "--out", images / "o.csv", "--model", long_name]):  # fmt: skip
        assert _cli(*args) == 2
        err = capsys.readouterr().err
        assert "longer than the file system allows" in err and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err and len(err) < 400
    assert not (images / "o.csv").exists()


def test_id_with_a_line_break_is_refused_with_one_line(images: Path, tiny_model: Path, capsys) -> None:
    pairs = _write(images / "p.csv", [["id", *HEADER], ["x\ny", *ROWS_A[0]], ["z", *ROWS_A[1]]])
    assert _cli("--pairs", pairs, "--out", images / "out.csv", "--model", tiny_model) == 2
    err = capsys.readouterr().err
    assert "line break" in err and len(err.strip().splitlines()) == 1


def test_merge_checks_the_inputs_content_not_its_length(images: Path, tiny_model: Path) -> None:
    pairs_a, pairs_b = _write(images / "a.csv", [HEADER, *ROWS_A]), _write(images / "b.csv", [HEADER, *ROWS_B])
    parts = [images / f"part{i}.csv" for i in range(2)]
    for i, part in enumerate(parts):
        assert _cli("--pairs", pairs_a, "--out", part, "--model", tiny_model, "--shard", f"{i}/2") == 0
    assert main(["batch", "merge", *map(str, parts), "--out", str(images / "m.csv"), "--pairs", str(pairs_a)]) == 0
    proc = subprocess.run(
        [VERIFY_BIN, "batch", "merge", *map(str, parts), "--out", str(images / "m2.csv"), "--pairs", str(pairs_b)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "differ from the input CSV" in proc.stderr
    assert not (images / "m2.csv").exists()
    # without --pairs, the parts' run records must cover every shard; the output must not be a part
    before = parts[0].read_bytes()
    proc = subprocess.run(
        [VERIFY_BIN, "batch", "merge", str(parts[0]), "--out", str(images / "m3.csv")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "shard(s) 1/2 missing" in proc.stderr and not (images / "m3.csv").exists()
    assert main(["batch", "merge", *map(str, parts), "--out", str(parts[1])]) == 2
    assert (
        parts[0].read_bytes() == before
        and main(["batch", "merge", *map(str, parts), "--out", str(images / "m4.csv")]) == 0
    )
    assert len(pd.read_csv(images / "m4.csv")) == len(ROWS_A)


@pytest.mark.parametrize("where", ["folder", "/proc/nope/x.csv"])
def test_unusable_out_is_refused_before_the_run(images: Path, tiny_model: Path, where: str) -> None:
    pairs = _write(images / "a.csv", [HEADER, *ROWS_A])
    out = images if where == "folder" else Path(where)
    proc = _run("--pairs", pairs, "--out", out, "--model", tiny_model)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--out" in proc.stderr
    assert not list(images.glob("*.partial*"))


def test_a_link_or_a_special_file_at_out_is_refused_and_kept(images: Path, tiny_model: Path, capsys) -> None:
    """The atomic rename would replace a link, a pipe or a device node (`--out /dev/null` as root) with a file."""
    pairs = _write(images / "a.csv", [HEADER, *ROWS_A])
    target = images / "target.csv"
    target.write_text("old\n")
    link, fifo = images / "link.csv", images / "fifo.csv"
    link.symlink_to(target)
    os.mkfifo(fifo)
    for out, what in ((link, "is a link"), (fifo, "not a regular file")):
        assert _cli("--pairs", pairs, "--out", out, "--model", tiny_model) == 2
        err = capsys.readouterr().err
        assert what in err and len(err.strip().splitlines()) == 1
    assert link.is_symlink() and target.read_text() == "old\n" and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert not list(images.glob("*.run.json")) and not list(images.glob("*.partial*"))


def test_a_threshold_that_is_no_similarity_is_a_usage_error(images: Path, tiny_model: Path, capsys) -> None:
    pairs = _write(images / "a.csv", [HEADER, *ROWS_A])
    for threshold in ("nan", "inf", "5", "-1.5", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            _cli("--pairs", pairs, "--out", images / "o.csv", "--model", tiny_model, "--threshold", threshold)
        assert exit_info.value.code == 2 and "--threshold" in capsys.readouterr().err
    assert not (images / "o.csv").exists()


def test_an_images_root_that_is_no_folder_is_one_line_not_an_error_per_row(
    images: Path, tiny_model: Path, capsys
) -> None:
    pairs = _write(images / "a.csv", [HEADER, *ROWS_A])
    for root in ("missing", "a.csv"):
        assert (
            _cli("--pairs", pairs, "--out", images / "o.csv", "--model", tiny_model, "--images-root", images / root)
            == 2
        )
        err = capsys.readouterr().err
        assert "--images-root" in err and len(err.strip().splitlines()) == 1
    assert not list(images.glob("o.csv*"))


def test_paths_outside_the_images_root_fail_unless_allowed(images: Path, tiny_model: Path, tmp_path: Path) -> None:
    inside = images / "inner"
    inside.mkdir()
    shutil.copy(images / "a1.png", inside / "a1.png")
    rows = [["a1.png", "a1.png", "1"], ["../a2.png", "a1.png", "1"], ["a1.png", str(images / "b1.png"), "0"]]
    pairs = _write(inside / "p.csv", [HEADER, *rows])
    out = tmp_path / "out.csv"
    assert _cli("--pairs", pairs, "--out", out, "--model", tiny_model) == 1
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert res["error"][0] == ""
    assert "reference: ../a2.png is outside the images folder" in res["error"][1]
    assert "is outside the images folder" in res["error"][2] and res["score"][2] == ""
    out2 = tmp_path / "out2.csv"
    assert _cli("--pairs", pairs, "--out", out2, "--model", tiny_model, "--allow-outside-root") == 0
    assert (pd.read_csv(out2, dtype=str, keep_default_na=False)["error"] == "").all()


def test_pairs_that_is_a_folder_says_so(images: Path, tiny_model: Path, capsys) -> None:
    assert _cli("--pairs", images, "--out", images.parent / "o.csv", "--model", tiny_model) == 2
    err = capsys.readouterr().err
    assert "is a folder; name the pairs file" in err and len(err.strip().splitlines()) == 1


def test_a_gallery_given_for_a_pairs_csv_is_refused_not_ignored(images: Path, tiny_model: Path, capsys) -> None:
    gallery = str(images.parent / "g")
    assert (
        main(["enroll", "--gallery", gallery, "--name", "a", "--model", str(tiny_model), str(images / "a1.png")]) == 0
    )
    capsys.readouterr()
    pairs = _write(images / "a.csv", [HEADER, *ROWS_A])
    assert _cli("--pairs", pairs, "--out", images / "o.csv", "--model", tiny_model, "--gallery", gallery) == 2
    err = capsys.readouterr().err
    assert "--gallery is for questioned,claimed_identity CSVs" in err and not (images / "o.csv").exists()
