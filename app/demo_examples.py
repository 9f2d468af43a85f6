"""Clickable examples for every tab, from the demo images under `assets/demo/` (faces: public-domain portraits;
signatures: synthetic writers with genuine and forged signatures). Tabs whose modality has no model get no
signature examples; missing files are left out, so a trimmed assets folder still starts."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

from verify.models.defaults import assets_dir


def demo_dir() -> Path:
    return assets_dir() / "demo"


def _faces() -> Path:
    return demo_dir() / "faces"


def _signature(writer: str, name: str) -> Path:
    return demo_dir() / "signatures" / writer / name


def _have(*paths: Path) -> bool:
    return all(p.is_file() for p in paths)


def _verify_rows(service: Any) -> list[tuple[str, Path, Path]]:
    f = _faces()
    rows = [
        ("faces: Obama, two photos", f / "obama.jpg", f / "obama2.jpg"),
        ("faces: Obama vs Biden", f / "obama.jpg", f / "biden.jpg"),
    ]
    if service.available("signature"):
        rows += [
            ("signatures: writer-01, two genuine", _signature("writer-01", "genuine_1.png"),
             _signature("writer-01", "genuine_4.png")),
            ("signatures: writer-01, genuine vs forgery", _signature("writer-01", "genuine_1.png"),
             _signature("writer-01", "forgery_1.png")),
        ]  # fmt: skip
    return [r for r in rows if _have(r[1], r[2])]


def verify_examples(service: Any) -> list[list[Any]]:
    """Image A, image B and the modality "auto" (guessed right for every demo image): an example that set
    "signature" left the radio there, and the next face photo uploaded was refused as not a signature."""
    return [[str(a), str(b), "auto"] for _, a, b in _verify_rows(service)]


def verify_labels(service: Any) -> list[str]:
    return [label for label, *_ in _verify_rows(service)]


def identify_examples(service: Any) -> list[list[Any]]:
    rows = [_faces() / "obama3.jpg", _faces() / "biden.jpg"]
    if service.available("signature"):
        rows += [_signature("writer-02", "genuine_4.png"), _signature("writer-02", "forgery_1.png")]
    return [[str(p), "auto"] for p in rows if p.is_file()]  # "auto", as verify_examples


def enroll_examples(service: Any) -> list[list[Any]]:
    rows = [["Joe Biden", "face", None, str(_faces() / "biden.jpg")]]
    return [r for r in rows if Path(str(r[3])).is_file()]


def _write_job(folder: Path, name: str, pairs: list[tuple[Path, Path, int]]) -> list[str] | None:
    """A pairs CSV and a zip of its images under `folder`; None when an image is missing."""
    if not pairs or not all(_have(a, b) for a, b, _ in pairs):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    table, archive = folder / f"{name}.csv", folder / f"{name}.zip"
    members = {f"{p.parent.name}/{p.name}": p for a, b, _ in pairs for p in (a, b)}
    with zipfile.ZipFile(archive, "w") as zf:
        for member, path in members.items():
            zf.write(path, member)
    with table.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["reference", "questioned", "label"])
        out.writerows([f"{a.parent.name}/{a.name}", f"{b.parent.name}/{b.name}", label] for a, b, label in pairs)
    return [str(table), str(archive)]


def batch_examples(service: Any) -> list[list[Any]]:
    """Two small labelled jobs (faces; signatures when a signature model is installed) written to the service's
    work folder."""
    f = _faces()
    root = Path(service.jobs.work_dir) / "examples"
    jobs = [
        _write_job(
            root,
            "faces",
            [(f / "obama.jpg", f / "obama2.jpg", 1), (f / "obama.jpg", f / "obama3.jpg", 1),
             (f / "obama.jpg", f / "biden.jpg", 0), (f / "obama_partial_face.jpg", f / "biden.jpg", 0)],
        )
    ]  # fmt: skip
    if service.available("signature"):
        pairs = []
        for writer in ("writer-01", "writer-02", "writer-03"):
            g1, g2, g3 = (_signature(writer, f"genuine_{i}.png") for i in (1, 2, 3))
            pairs += [(g1, g2, 1), (g1, g3, 1), (g1, _signature(writer, "forgery_1.png"), 0)]
        jobs.append(_write_job(root, "signatures", pairs))
    return [j for j in jobs if j is not None]
