"""The `verify` CLI: subcommands listed, JSON answers, exit codes, gallery round trip, wrong-model refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from verify.cli import main
from verify.models.card import read_card

VERIFY_BIN = str(Path(sys.executable).parent / "verify")

FACES = Path(__file__).resolve().parents[1] / "assets" / "demo" / "faces"


def _sig(root: Path, writer: int, i: int) -> str:
    return str(root / "full_org" / f"original_{writer}_{i}.png")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_help_lists_every_subcommand_and_errors_are_one_line(tmp_path: Path) -> None:
    out = subprocess.run([VERIFY_BIN, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("match", "identify", "enroll", "gallery", "eval", "batch", "train", "distill", "synth", "app"):
        assert command in out
    proc = subprocess.run(
        [VERIFY_BIN, "match", str(tmp_path / "missing.png"), str(tmp_path / "missing.png"), "--modality", "face"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "missing.png" in proc.stderr and "Traceback" not in proc.stderr


def test_an_input_error_with_json_prints_a_json_error_too(tmp_path: Path) -> None:
    """A subprocess, as a machine caller runs it: exit 2, the stderr line, and one JSON error object on stdout."""
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"not an image")
    argv = [VERIFY_BIN, "match", str(bad), str(FACES / "obama.jpg"), "--modality", "face"]
    proc = subprocess.run([*argv, "--json"], capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot decode" in proc.stderr and "Traceback" not in proc.stderr
    error = json.loads(proc.stdout)
    assert error["exit_code"] == 2 and error["error"]["type"] == "InvalidImageError"
    assert error["error"]["message"] == proc.stderr.strip().removeprefix("verify match: error: ")
    plain = subprocess.run(argv, capture_output=True, text=True)
    assert plain.returncode == 2 and plain.stdout == "" and plain.stderr == proc.stderr  # no --json: stderr only


def test_ctrl_c_exits_130_with_a_json_error_under_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import verify.cli.match as match_cmd

    def stopped(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(match_cmd, "run", stopped)
    argv = ["match", "a.png", "b.png"]
    assert main([*argv, "--json"]) == 130
    out, err = capsys.readouterr()
    assert err.strip() == "verify match: interrupted"
    assert json.loads(out) == {"error": {"type": "Interrupted", "message": "interrupted"}, "exit_code": 130}
    assert main(argv) == 130 and capsys.readouterr().out == ""


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["match", "only-one-image"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["batch", "pairs.csv", "--out", "out.csv"])  # the input given without --pairs
    assert exc.value.code == 2 and "verify batch --pairs IN.csv --out OUT.csv" in capsys.readouterr().err


def test_match_json(capsys: pytest.CaptureFixture[str], tiny_model: Path, synth_signatures: Path) -> None:
    a = _sig(synth_signatures, 1, 1)
    out = _json(capsys, ["match", a, a, "--model", str(tiny_model), "--json"])
    assert out["decision"] == "match" and out["score"] == pytest.approx(1.0, abs=1e-5)
    assert out["threshold_source"] == "test fixture" and "crops" not in out


def test_enroll_identify_list_stats_remove(
    capsys: pytest.CaptureFixture[str], tiny_model: Path, synth_signatures: Path, tmp_path: Path
) -> None:
    gallery, model = str(tmp_path / "g"), ["--model", str(tiny_model)]
    report = _json(capsys, ["enroll", "--gallery", gallery, "--name", "w1", *model, "--json",
                            _sig(synth_signatures, 1, 1), _sig(synth_signatures, 1, 2)])  # fmt: skip
    assert report["enrolled"] == 2
    hit = _json(capsys, ["identify", "--gallery", gallery, *model, "--json", _sig(synth_signatures, 1, 1)])
    assert hit["identity"] == "w1" and hit["decision"] == "match"
    unknown = _json(capsys, ["identify", "--gallery", gallery, *model, "--threshold", "1", "--json",
                             _sig(synth_signatures, 3, 1)])  # fmt: skip
    assert unknown["identity"] is None and unknown["decision"] == "unknown"
    listing = _json(capsys, ["gallery", "list", "--gallery", gallery, "--json"])
    assert listing["identities"] == [{"name": "w1", "n_samples": 2}]
    stats = _json(capsys, ["gallery", "stats", "--gallery", gallery, "--json"])
    card = read_card(tiny_model)
    assert (stats["identities"], stats["samples"], stats["index_ntotal"]) == (1, 2, 2)
    assert stats["fingerprint"] == card.fingerprint and stats["dim"] == card.dim
    assert main(["gallery", "remove", "--gallery", gallery, "--name", "w1"]) == 0
    assert _json(capsys, ["gallery", "list", "--gallery", gallery, "--json"])["identities"] == []


def test_gallery_of_another_model_is_refused(
    capsys: pytest.CaptureFixture[str], tiny_model: Path, tiny_model_factory, synth_signatures: Path, tmp_path: Path
) -> None:
    gallery = str(tmp_path / "g")
    assert main(["enroll", "--gallery", gallery, "--name", "w1", "--model", str(tiny_model),
                 _sig(synth_signatures, 1, 1)]) == 0  # fmt: skip
    other = tiny_model_factory(tmp_path / "other", seed=1)
    capsys.readouterr()
    code = main(["identify", "--gallery", gallery, "--model", str(other), _sig(synth_signatures, 1, 1)])
    assert code == 2
    assert "reembed" in capsys.readouterr().err


def test_enroll_reports_a_refused_sample_and_exits_1(
    capsys: pytest.CaptureFixture[str], tiny_model: Path, synth_signatures: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    out = _json(capsys, ["enroll", "--gallery", str(tmp_path / "g"), "--name", "w1", "--model", str(tiny_model),
                         "--json", _sig(synth_signatures, 1, 1), str(bad)], code=1)  # fmt: skip
    statuses = {Path(s["source"]).name: s["status"] for s in out["samples"]}
    assert statuses == {"original_1_1.png": "enrolled", "bad.png": "refused"}


def test_signature_answers_say_how_far_to_trust_them(capsys: pytest.CaptureFixture[str]) -> None:
    """The bundled signature model's measured rates (its report) under every answer, in words and in --json;
    none for faces, none for a refusal."""
    writer = Path(__file__).resolve().parents[1] / "assets" / "demo" / "signatures" / "writer-01"
    pair = [str(writer / "genuine_1.png"), str(writer / "genuine_2.png"), "--modality", "signature"]
    assert main(["match", *pair]) == 0
    trust = capsys.readouterr().out.splitlines()[-1]
    assert trust.startswith("trust: measured on 80 test writers (synthetic signatures, not real ones), at this")
    assert "of skilled forgeries" in trust and "not reliable enough to decide alone" in trust  # FRR above 10%
    rel = _json(capsys, ["match", *pair, "--json"])["reliability"]
    assert rel["synthetic"] and rel["applies"] and 0 < rel["frr"] < 1 and rel["writers"] == 80
    assert f"turned away {100 * rel['frr']:.0f}% of genuine signatures" in trust
    assert not _json(capsys, ["match", *pair, "--threshold", "0.9", "--json"])["reliability"]["applies"]
    face = str(FACES / "obama.jpg")
    assert _json(capsys, ["match", pair[0], face, "--modality", "signature", "--json"], code=1)["reliability"] is None
    assert _json(capsys, ["match", face, face, "--json"])["reliability"] is None


def test_face_match_with_the_bundled_model(capsys: pytest.CaptureFixture[str]) -> None:
    same = _json(capsys, ["match", str(FACES / "obama.jpg"), str(FACES / "obama2.jpg"), "--json"])
    assert same["decision"] == "match", same
    other = _json(capsys, ["match", str(FACES / "obama.jpg"), str(FACES / "biden.jpg"), "--json"])
    assert other["decision"] == "no match", other
    assert other["threshold"] == same["threshold"] and "dlib" in same["threshold_source"]
