"""Gate modes: an input the OOD gate refuses is rejected (default), answered and flagged ("flag"), or not gated
("off"), through the `Verifier`, `verify match`, `verify batch` and `verify enroll`. A blank page is refused in
every mode. The bundled default signature model and its real gate; a face photo stands in for a refused input."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from verify.batch import BatchConfig, run_batch
from verify.cli import main
from verify.decision import MATCH, NO_MATCH, REJECTED
from verify.errors import ConfigError
from verify.models.defaults import assets_dir, default_model_path
from verify.models.loading import load_model
from verify.verifier import Verifier

DEMO = assets_dir() / "demo"
GENUINE = sorted((DEMO / "signatures" / "writer-01").glob("genuine_*.png"))
FACE = DEMO / "faces" / "obama.jpg"


@pytest.fixture(scope="module")
def verifiers() -> dict[str, Verifier]:
    model = load_model(default_model_path("signature"))
    return {mode: Verifier(model, gate_mode=mode) for mode in ("reject", "flag", "off")}  # type: ignore[misc]


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "blank.png"
    cv2.imwrite(str(path), np.full((300, 440), 245, np.uint8))
    return path


def test_flag_answers_what_reject_refuses_with_the_score_the_ungated_model_gives(
    verifiers: dict[str, Verifier],
) -> None:
    rejected = verifiers["reject"].match(GENUINE[0], FACE)
    assert rejected.decision == REJECTED and rejected.score is None and rejected.flags == []
    flagged = verifiers["flag"].match(GENUINE[0], FACE)
    off = verifiers["off"].match(GENUINE[0], FACE)
    assert flagged.decision in (MATCH, NO_MATCH) and flagged.decision == off.decision
    assert flagged.score == pytest.approx(off.score, abs=1e-6) and flagged.reason == ""
    assert len(flagged.flags) == 1 and flagged.flags[0].startswith("input 2: not a signature"), flagged.flags
    assert flagged.ood_scores[1] is not None and flagged.ood_scores[1] < verifiers["flag"].ood_threshold  # type: ignore[operator]
    assert off.flags == [] and off.ood_scores == [None, None] and verifiers["off"].ood is None
    accepted = verifiers["flag"].match(GENUINE[0], GENUINE[1])  # a signature the gate takes is not flagged
    assert accepted.flags == [] and accepted.score == pytest.approx(verifiers["reject"].match(*GENUINE[:2]).score)


def test_a_blank_page_is_refused_in_every_mode(verifiers: dict[str, Verifier], blank: Path) -> None:
    for mode, verifier in verifiers.items():
        result = verifier.match(GENUINE[0], blank)
        assert result.decision == REJECTED and "blank" in result.reason, mode


def test_an_unknown_mode_is_a_config_error(verifiers: dict[str, Verifier]) -> None:
    with pytest.raises(ConfigError, match="reject, flag, off"):
        Verifier(verifiers["off"].model, gate_mode="warn")  # type: ignore[arg-type]


def test_cli_match_prints_the_flag_and_json_carries_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", str(GENUINE[0]), str(FACE), "--modality", "signature", "--gate-mode", "flag"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] in ("MATCH", "NO") and "similarity" in lines[0], lines
    assert any(line.startswith("flagged: input 2: not a signature") for line in lines), lines
    assert main(["match", str(GENUINE[0]), str(FACE), "--modality", "signature", "--json"]) == 1  # refused: exit 1
    got = json.loads(capsys.readouterr().out)
    assert got["decision"] == "rejected" and got["flags"] == []  # the default mode still rejects
    assert main(["match", str(GENUINE[0]), str(FACE), "--modality", "signature"]) == 1
    assert capsys.readouterr().out.startswith("REJECTED  input 2: not a signature")
    with pytest.raises(SystemExit) as exc:
        main(["match", str(GENUINE[0]), str(FACE), "--gate-mode", "maybe"])
    assert exc.value.code == 2 and "invalid choice: 'maybe'" in capsys.readouterr().err


def test_cli_batch_with_gate_flag_scores_the_refused_rows_and_flags_them(
    verifiers: dict[str, Verifier], tmp_path: Path, blank: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for source in (*GENUINE[:2], FACE, blank):
        shutil.copy(source, tmp_path / source.name)
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "reference", "questioned"])
        first, second = GENUINE[0].name, GENUINE[1].name
        out.writerows([("same", first, second), ("face", first, FACE.name), ("blank", first, blank.name),
                       ("missing", first, "missing.png")])  # fmt: skip
    args = ["--pairs", str(pairs), "--out", str(tmp_path / "flag.csv"), "--modality", "signature", "--no-progress"]
    assert main(["batch", *args, "--gate-mode", "flag"]) == 1  # the blank row is a failure
    assert "4 rows (shard 0/1): 2 ok, 2 with an error (1 rejected), 1 answered but flagged;" in capsys.readouterr().out
    run_batch(verifiers["reject"], BatchConfig(pairs=pairs, out=tmp_path / "reject.csv"), progress=False)
    reject, flag = (
        pd.read_csv(tmp_path / f"{mode}.csv", dtype=str, keep_default_na=False).set_index("id")
        for mode in ("reject", "flag")
    )
    assert reject.loc["face", "decision"] == "rejected" and reject.loc["face", "score"] == ""
    assert "not a signature" in reject.loc["face", "error"] and reject.loc["face", "ood_flag"] == "True"
    assert flag.loc["face", "decision"] in ("match", "no match") and flag.loc["face", "error"] == ""
    assert flag.loc["face", "ood_flag"] == "True" and float(flag.loc["face", "score"]) < 1.0
    assert flag.loc["blank", "decision"] == "rejected" and "blank" in flag.loc["blank", "error"]
    assert flag.loc["same", "ood_flag"] == "False"
    assert reject.loc["same", "ood_score"] != "" and reject.loc["missing", "ood_score"] == ""  # not the reference's
    assert float(flag.loc["same", "score"]) == pytest.approx(float(reject.loc["same", "score"]), abs=1e-5)


def test_cli_enroll_with_gate_flag_enrolls_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gallery = str(tmp_path / "gallery")
    common = ["--gallery", gallery, "--modality", "signature"]
    assert main(["enroll", str(GENUINE[0]), str(FACE), "--name", "a", *common, "--json"]) == 1  # the face refused
    assert json.loads(capsys.readouterr().out)["enrolled"] == 1
    assert main(["enroll", str(FACE), "--name", "a", *common]) == 1
    assert f"refused   {FACE}  (not a signature: it looks like" in capsys.readouterr().out  # the path said once
    assert main(["enroll", str(FACE), "--name", "b", *common, "--gate-mode", "flag"]) == 0
    out = capsys.readouterr().out
    assert "enrolled" in out and "flagged: not a signature" in out and "1 sample(s) enrolled for 'b'" in out, out


def test_web_app_compares_anyway_only_when_asked(tmp_path: Path, blank: Path) -> None:
    from app import views
    from app.batch_view import row_review
    from app.service import VerifyService

    service = VerifyService(tmp_path / "gallery", work_dir=tmp_path / "work")  # the bundled models
    try:
        refused = service.verify(str(GENUINE[0]), str(FACE), "signature")
        assert refused["decision"] == "rejected" and refused["flags"] == []
        assert "tick *Compare even if" in views.verify_markdown(refused)  # the way out is named
        assert "If it is a face photo, check that *What the images show* is *auto*" in views.verify_markdown(refused)
        anyway = service.verify(str(GENUINE[0]), str(FACE), "signature", compare_anyway=True)
        assert anyway["decision"] in ("match", "no match") and anyway["score"] is not None
        text = views.verify_markdown(anyway, anyway["reliability"])
        assert "**flagged**: input 2: not a signature: it looks like" in text and "compared anyway" in text
        blank_page = service.verify(str(GENUINE[0]), str(blank), "signature", compare_anyway=True)
        assert blank_page["decision"] == "rejected" and "tick" not in views.verify_markdown(blank_page)
        assert service.verify(str(GENUINE[0]), str(FACE), "signature")["decision"] == "rejected"  # not sticky

        refused = service.identify(str(FACE), "signature")  # the signature gallery is empty: "unknown" at best
        assert refused["decision"] == "rejected" and "tick *Compare even if" in views.identify_markdown(refused)
        anyway = service.identify(str(FACE), "signature", compare_anyway=True)
        assert anyway["decision"] == "unknown" and len(anyway["flags"]) == 1
        assert "**flagged**: not a signature" in views.identify_markdown(anyway)

        refused = service.enroll("b", [str(FACE), str(blank)], "signature", labels=["b.jpg", "blank.png"])
        assert refused["enrolled"] == 0 and [s["refused_by"] for s in refused["samples"]] == [
            "out_of_distribution", "blank_page"]  # fmt: skip
        assert "If it is a signature (some hands" in views.enroll_markdown(refused)  # once: the blank page is not
        enrolled = service.enroll("b", [str(FACE)], "signature", labels=["b.jpg"], enroll_anyway=True)
        assert enrolled["enrolled"] == 1 and enrolled["samples"][0]["reason"].startswith("flagged: not a signature")
        assert enrolled["samples"][0]["flagged"] and not refused["samples"][0]["flagged"]
        text = views.enroll_markdown(enrolled)
        assert (
            "1 image did not look like a signature to the model and was enrolled anyway" in text and "tick" not in text
        )
        found = service.identify(str(FACE), "signature", compare_anyway=True)  # the signer can now be found
        assert (found["decision"], found["identity"], len(found["flags"])) == ("match", "b", 1)

        archive = tmp_path / "images.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for source in (*GENUINE[:2], FACE):
                zf.write(source, source.name)
        pairs = tmp_path / "pairs.csv"
        pairs.write_text(f"id,reference,questioned\nsame,{GENUINE[0].name},{GENUINE[1].name}\n"
                         f"face,{GENUINE[0].name},{FACE.name}\n")  # fmt: skip
        rows = {}
        for mode in (False, True):
            job = service.batch(str(pairs), str(archive), None, "signature", compare_anyway=mode)
            rows[mode] = {r["id"]: (r, row_review(r)) for _, r in job["rows"].iterrows()}
        (face, (said, why, review)) = rows[False]["face"]
        assert face["decision"] == "rejected" and said == "not checked" and review
        (face, (said, why, review)) = rows[True]["face"]
        assert face["decision"] in ("match", "no match") and face["error"] == "" and review
        assert "compared anyway" in why and said == face["decision"]
        assert not rows[True]["same"][1][2] or "close call" in rows[True]["same"][1][1]  # not flagged by the gate
    finally:
        service.close()
