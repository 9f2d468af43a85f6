"""The web app's service layer (no Gradio): every tab's function on the bundled face model and a tiny signature
model, upload limits, and zips that try to escape their folder or blow up."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from app.demo import genuine_references, seed_demo_gallery
from app.service import NO_SIGNATURE_MODEL, VerifyService
from app.zipsafe import ZipLimits, safe_extract
from verify.errors import (
    ConfigError,
    DatasetError,
    ImageTooLargeError,
    InvalidImageError,
    ModelError,
    UnknownIdentityError,
)
from verify.models.defaults import assets_dir

FACES = Path(__file__).resolve().parent / "data" / "faces"


def _sig(root: Path, writer: int, i: int) -> Path:
    return root / "full_org" / f"original_{writer}_{i}.png"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> VerifyService:
    root = tmp_path_factory.mktemp("app")
    svc = VerifyService(root / "gallery", signature_model=tiny_model, work_dir=root / "work")
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def enrolled(service: VerifyService) -> dict:
    """Barack Obama enrolled from two photos, the first one given twice."""
    return service.enroll(
        "Barack Obama",
        [str(FACES / "obama.jpg"), str(FACES / "obama2.jpg"), str(FACES / "obama.jpg")],
        "face",
        labels=["obama.jpg", "obama2.jpg", "copy.jpg"],
    )


# --- verify ---------------------------------------------------------------------------------------------------
def test_verify_faces_match_and_no_match_with_crops(service: VerifyService) -> None:
    same = service.verify(str(FACES / "obama.jpg"), str(FACES / "obama3.jpg"), "face")
    other = service.verify(str(FACES / "obama.jpg"), str(FACES / "biden.jpg"), "auto")
    assert same["decision"] == "match" and same["score"] >= same["threshold"]
    assert other["decision"] == "no match" and other["score"] < other["threshold"]
    assert other["modality"] == "face"  # auto: a face was detected
    assert [c.shape for c in same["crops"]] == [(150, 150, 3), (150, 150, 3)]
    assert same["threshold_source"] and same["model"]


def test_verify_signatures_shows_dark_ink_on_white(service: VerifyService, synth_signatures: Path) -> None:
    result = service.verify(_sig(synth_signatures, 1, 1), _sig(synth_signatures, 1, 1), "signature")
    assert result["decision"] == "match" and result["score"] == pytest.approx(1.0, abs=1e-5)
    crop = result["crops"][0]
    assert crop.shape == (32, 48) and crop.mean() > 128  # mostly white paper


def test_non_image_upload_names_the_file(service: VerifyService, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    with pytest.raises(InvalidImageError, match=r"notes\.txt: not an image"):
        service.verify(str(notes), str(FACES / "obama.jpg"), "face")
    with pytest.raises(InvalidImageError, match="image B: no image given"):
        service.verify(str(FACES / "obama.jpg"), None, "face")


def test_upload_over_the_size_limit_is_refused(tmp_path: Path, tiny_model: Path, synth_signatures: Path) -> None:
    small = VerifyService(tmp_path / "g", signature_model=tiny_model, work_dir=tmp_path / "w", max_image_bytes=1000)
    big = _sig(synth_signatures, 1, 1)
    assert big.stat().st_size > 1000
    with pytest.raises(ImageTooLargeError, match="over the upload limit"):
        small.verify(str(big), str(big), "signature")


def test_missing_signature_model_degrades_gracefully(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assets = tmp_path / "assets"
    (assets / "models").mkdir(parents=True)
    (assets / "models" / "face-resnet").symlink_to(Path(__file__).resolve().parents[1] / "assets/models/face-resnet")
    monkeypatch.setenv("VERIFY_ASSETS", str(assets))
    svc = VerifyService(tmp_path / "g", work_dir=tmp_path / "w")
    assert svc.available("face") and not svc.available("signature")
    assert svc.missing_reason("signature") == NO_SIGNATURE_MODEL
    assert svc.resolve_modality("auto", "anything.png") == "face"
    with pytest.raises(ModelError, match="make models"):
        svc.verify(str(FACES / "obama.jpg"), str(FACES / "obama.jpg"), "signature")
    assert svc.stats("signature")["model"]["installed"] is False


# --- enroll / identify / gallery ---------------------------------------------------------------------------------
def test_enroll_reports_each_sample_and_lists_thumbnails(enrolled: dict) -> None:
    assert enrolled["enrolled"] == 2 and enrolled["modality"] == "face"
    status = {s["source"]: s["status"] for s in enrolled["samples"]}
    assert status == {"obama.jpg": "enrolled", "obama2.jpg": "enrolled", "copy.jpg": "skipped"}
    assert [s["source"] for s in enrolled["identity_samples"]] == ["obama.jpg", "obama2.jpg"]
    assert all(s["thumbnail"].ndim == 3 for s in enrolled["identity_samples"])
    assert enrolled["warnings"] == ["copy.jpg: the same image as obama.jpg; skipped"]  # names, not "input 2"


def test_enroll_refuses_a_non_face_with_the_reason(service: VerifyService, tmp_path: Path) -> None:
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), np.full((120, 160, 3), 255, np.uint8))
    report = service.enroll("Nobody", [str(page)], "face")
    assert report["enrolled"] == 0 and report["samples"][0]["status"] == "refused"
    assert "not a face" in report["samples"][0]["reason"]
    with pytest.raises(ConfigError, match="name"):
        service.enroll("  ", [str(page)], "face")


def test_identify_known_and_unknown(service: VerifyService, enrolled: dict) -> None:
    known = service.identify(str(FACES / "obama3.jpg"), "face", k=3)
    assert known["decision"] == "match" and known["identity"] == "Barack Obama"
    top = known["candidates"][0]
    assert top["identity"] == "Barack Obama" and top["above_threshold"] and top["thumbnail"].shape[2] == 3
    unknown = service.identify(str(FACES / "biden.jpg"), "face")
    assert unknown["decision"] == "unknown" and unknown["identity"] is None
    assert not unknown["candidates"][0]["above_threshold"]
    refs = top["references"]  # every reference of the identity, with its own score
    assert [r["sample_id"] for r in refs] == [s["sample_id"] for s in enrolled["identity_samples"]]
    assert max(r["score"] for r in refs) == pytest.approx(top["score"], abs=1e-4)
    assert all(r["thumbnail"].ndim == 3 for r in refs)


def test_enrolling_a_known_face_under_a_new_name_warns(service: VerifyService, enrolled: dict) -> None:
    report = service.enroll("Obama again", [str(FACES / "obama3.jpg")], "face", labels=["obama3.jpg"])
    try:
        assert report["enrolled"] == 1
        assert len(report["warnings"]) == 1 and report["warnings"][0].startswith("obama3.jpg also matches")
        assert "**Barack Obama**" in report["warnings"][0] and "same person under two names" in report["warnings"][0]
    finally:
        service.remove_identity("face", "Obama again", "Obama again")


def test_gallery_list_remove_sample_and_identity(service: VerifyService, enrolled: dict) -> None:
    service.enroll("Twin", [str(FACES / "obama_partial_face2.jpg")], "face")
    listing = {i["name"]: i["samples"] for i in service.gallery_list("face")}
    assert listing["Barack Obama"] == 2 and listing["Twin"] == 1
    sample = service.samples("face", "Twin")[0]["sample_id"]
    with pytest.raises(ConfigError, match="tick"):
        service.remove_sample("face", f"#{sample} x.jpg", confirm=False)
    with pytest.raises(ConfigError, match="type its name"):
        service.remove_identity("face", "Twin", confirm="twin")
    before = service.stats("face")["gallery"]["samples"]
    assert service.remove_sample("face", f"#{sample} x.jpg", confirm=True)["removed_sample"] == sample
    assert "Twin" not in {i["name"] for i in service.gallery_list("face")}  # its last sample went
    assert service.stats("face")["gallery"]["samples"] == before - 1
    service.enroll("Twin", [str(FACES / "obama_partial_face2.jpg")], "face")
    assert service.remove_identity("face", "Twin", confirm="Twin")["removed_samples"] == 1
    with pytest.raises(UnknownIdentityError):
        service.samples("face", "Twin")


def test_stats_name_the_model_and_threshold_source(service: VerifyService) -> None:
    stats = service.stats("signature")
    model = stats["model"]
    assert model["installed"] and model["name"] == "tiny-0" and model["threshold"] == 0.9
    assert model["threshold_source"] == "test fixture" and model["fingerprint"]
    assert stats["gallery"]["dim"] == 16


def test_demo_gallery_is_seeded_once(tmp_path: Path, tiny_model: Path, synth_signatures: Path) -> None:
    demo = tmp_path / "demo"
    (demo / "faces").mkdir(parents=True)
    for name in ("obama.jpg", "obama2.jpg"):
        (demo / "faces" / name).write_bytes((FACES / name).read_bytes())
    for writer in (1, 2):
        folder = demo / "signatures" / f"writer{writer}"
        folder.mkdir(parents=True)
        for i in (1, 2):
            (folder / f"{i}.png").write_bytes(_sig(synth_signatures, writer, i).read_bytes())
    svc = VerifyService(tmp_path / "g", signature_model=tiny_model, work_dir=tmp_path / "w")
    first = seed_demo_gallery(svc, demo)
    assert first == {"face": {"Barack Obama": 2}, "signature": {"writer1": 2, "writer2": 2}}
    assert seed_demo_gallery(svc, demo) == {"face": {}, "signature": {}}
    assert svc.identify(str(FACES / "biden.jpg"), "face")["decision"] == "unknown"
    svc.close()


def test_demo_signatures_enroll_genuine_references_only(tmp_path: Path) -> None:
    """`forgery_*` sorts before `genuine_*`: the references must still be the writer's own signatures."""
    folder = tmp_path / "writer-01"
    folder.mkdir()
    for name in ("forgery_1.png", "forgery_2.png", "Forged_3.png", "genuine_10.png", "genuine_2.png", "genuine_1.png"):
        (folder / name).write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    assert [p.name for p in genuine_references(folder, 3)] == ["genuine_1.png", "genuine_2.png", "genuine_10.png"]
    bundled = assets_dir() / "demo" / "signatures"
    for writer in sorted(p for p in bundled.iterdir() if p.is_dir()) if bundled.is_dir() else []:
        assert all(p.stem.startswith("genuine") for p in genuine_references(writer)), writer.name


# --- batch --------------------------------------------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_batch_scores_a_zip_and_writes_csv_and_report(
    service: VerifyService, synth_signatures: Path, tmp_path: Path
) -> None:
    members = {f"w{w}/{i}.png": _sig(synth_signatures, w, i).read_bytes() for w in (1, 2) for i in (1, 2)}
    members["notes.txt"] = b"not an image"
    archive = _zip(tmp_path / "images.zip", members)
    csv = tmp_path / "pairs.csv"
    csv.write_text(
        "reference,questioned,label\nw1/1.png,w1/2.png,1\nw2/1.png,w2/2.png,1\n"
        "w1/1.png,w2/1.png,0\nw1/2.png,w2/2.png,0\nw1/1.png,notes.txt,0\n"
    )
    result = service.batch(str(csv), str(archive), None, "signature")
    rows = result["rows"]
    assert len(rows) == 5 and list(rows["decision"][:4]).count("") == 0
    assert rows["error"].iloc[4] != "" and rows["error"].iloc[:4].eq("").all()
    assert result["summary"]["failed"] == 1 and result["csv"].is_file()
    assert result["report"] is not None and "EER" in result["report_text"]
    work = str(service.jobs.work_dir)
    downloaded = pd.read_csv(result["csv"], dtype=str, keep_default_na=False)
    assert downloaded["error"].iloc[4].startswith("questioned: notes.txt: ") and work not in result["csv"].read_text()
    assert work not in result["report"].read_text()  # the downloads name the upload's paths, never the server's


def test_batch_refuses_paths_outside_the_zip(service: VerifyService, synth_signatures: Path, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "images.zip", {"a.png": _sig(synth_signatures, 1, 1).read_bytes()})
    csv = tmp_path / "pairs.csv"
    csv.write_text(f"reference,questioned\na.png,../{tmp_path.name}/secret.png\n")
    rows = service.batch(str(csv), str(archive), None, "signature")["rows"]
    assert "outside the images folder" in rows["error"][0] and rows["score"][0] == ""  # a row error, not scored
    assert str(tmp_path) not in rows["error"][0]
    with pytest.raises(ConfigError, match="zip"):
        service.batch(str(csv), None, None, "signature")
    with pytest.raises(ConfigError, match="server folders are disabled"):
        service.batch(str(csv), None, "/etc", "signature")


# --- zip safety -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_zip_traversal_is_refused_and_nothing_written(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "t.zip", {"ok.txt": b"fine", name: b"evil"})
    with pytest.raises(DatasetError, match="refused"):
        safe_extract(archive, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.txt"))
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        safe_extract(tmp_path / "l.zip", tmp_path / "out")


def test_zip_bombs_are_refused_before_extracting(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(20 * 2**20)})  # 20 MB of zeros: ~1000x ratio
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DatasetError, match=r"zip bomb.*expands"):
        safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()
    many = _zip(tmp_path / "many.zip", {f"{i}.txt": b"x" for i in range(30)})
    with pytest.raises(DatasetError, match="30 members"):
        safe_extract(many, tmp_path / "out2", ZipLimits(max_files=10))
    with pytest.raises(DatasetError, match="over the limit of 100 bytes"):
        safe_extract(_zip(tmp_path / "big.zip", {"a": bytes(300)}), tmp_path / "o3", ZipLimits(max_total_bytes=100))


def test_zip_that_is_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_bytes(io.BytesIO(b"PK nope").getvalue())
    with pytest.raises(DatasetError, match="not a zip"):
        safe_extract(fake, tmp_path / "out")


def test_zip_extracts_regular_files(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"a/b.txt": b"hello", "c.txt": b"world"})
    files = safe_extract(archive, tmp_path / "out")
    assert sorted(p.relative_to((tmp_path / "out").resolve()).as_posix() for p in files) == ["a/b.txt", "c.txt"]
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"hello"


def test_batch_from_an_allowed_server_folder_only(tmp_path: Path, tiny_model: Path, synth_signatures: Path) -> None:
    admin = tmp_path / "admin"
    (admin / "set1").mkdir(parents=True)
    for i in (1, 2):
        (admin / "set1" / f"{i}.png").write_bytes(_sig(synth_signatures, 1, i).read_bytes())
    csv = tmp_path / "pairs.csv"
    csv.write_text("reference,questioned\n1.png,2.png\n")
    svc = VerifyService(tmp_path / "g", signature_model=tiny_model, work_dir=tmp_path / "w", admin_root=admin)
    result = svc.batch(str(csv), None, "set1", "signature")
    assert result["summary"]["ok"] == 1 and result["report"] is None
    with pytest.raises(ConfigError, match="not a folder under the allowed server folder"):
        svc.batch(str(csv), None, "../", "signature")


def test_cli_app_flags(tmp_path: Path) -> None:
    import subprocess
    import sys

    from app.cli import parse_auth
    from verify.cli import build_parser

    assert parse_auth("ann:pa:ss") == ("ann", "pa:ss") and parse_auth(None) is None
    app_parser = build_parser()._subparsers._group_actions[0].choices["app"]
    flags = {opt for action in app_parser._actions for opt in action.option_strings}
    assert {"--host", "--port", "--gallery", "--auth", "--admin-folders"} <= flags and "--share" not in flags
    assert app_parser.parse_args([]).host == "127.0.0.1"
    verify = str(Path(sys.executable).parent / "verify")
    bad = subprocess.run([verify, "app", "--auth", "nopassword"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("--auth must be USER:PASSWORD, both non-empty")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_gallery_of_another_model_is_refused_or_reembedded(
    tmp_path: Path, tiny_model: Path, tiny_model_factory, synth_signatures: Path
) -> None:
    from verify.errors import ModelMismatchError

    other = tiny_model_factory(tmp_path / "other", seed=1)
    old = VerifyService(tmp_path / "g", signature_model=other, work_dir=tmp_path / "w1")
    old.enroll("writer 1", [str(_sig(synth_signatures, 1, i)) for i in (1, 2)], "signature")
    old_fp = old.stats("signature")["gallery"]["fingerprint"]
    old.close()
    strict = VerifyService(tmp_path / "g", signature_model=tiny_model, work_dir=tmp_path / "w2")
    with pytest.raises(ModelMismatchError, match="reembed"):
        strict.gallery_list("signature")
    demo = VerifyService(tmp_path / "g", signature_model=tiny_model, work_dir=tmp_path / "w3", reembed_on_mismatch=True)
    stats = demo.stats("signature")["gallery"]
    assert stats["samples"] == 2 and stats["fingerprint"] != old_fp
    assert stats["fingerprint"] == demo.verifier("signature").model.fingerprint
    found = demo.identify(str(_sig(synth_signatures, 1, 1)), "signature")
    assert found["identity"] == "writer 1" and found["score"] == pytest.approx(1.0, abs=1e-5)
    demo.close()
