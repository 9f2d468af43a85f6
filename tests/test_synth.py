"""The synthetic signature generator: lognormal kinematics, determinism, layout, realism checks, CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.special import ndtr

from verify.errors import ConfigError, DatasetError
from verify.synth import contact_sheet, generate_dataset, render_writer_samples
from verify.synth.lognormal import strokes_from_targets, trajectory

VERIFY_BIN = str(Path(sys.executable).parent / "verify")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    return generate_dataset(out, writers=3, genuine=3, forgeries=2, seed=7, height=64, width=96, progress=False)


def _naive_trajectory(points: np.ndarray, dtheta: np.ndarray, t0, mu, sigma, dt: float) -> np.ndarray:
    """Euler integration of the summed lognormal velocity vectors, one stroke and one step at a time."""
    strokes = strokes_from_targets(points, dtheta, t0, mu, sigma)
    t = np.arange(0.0, strokes.end_time() + dt, dt)
    pos = [np.asarray(points[0], dtype=float)]
    for k in range(1, t.size):
        v = np.zeros(2)
        for j in range(strokes.D.size):
            tau = t[k - 1] + dt / 2 - strokes.t0[j]  # midpoint rule
            if tau <= 0:
                continue
            z = (np.log(tau) - strokes.mu[j]) / strokes.sigma[j]
            speed = strokes.D[j] / (strokes.sigma[j] * np.sqrt(2 * np.pi) * tau) * np.exp(-0.5 * z * z)
            phi = strokes.theta_start[j] + (strokes.theta_end[j] - strokes.theta_start[j]) * ndtr(z)
            v += speed * np.array([np.cos(phi), np.sin(phi)])
        pos.append(pos[-1] + v * dt)
    return np.array(pos)


def test_lognormal_trajectory_matches_euler_integration_and_reaches_targets() -> None:
    points = np.array([[0.0, 0.0], [1.0, 1.0], [1.5, 0.0], [2.5, 0.4]])
    dtheta = np.array([1.2, -0.8, 0.0])
    t0, mu, sigma = np.array([0.0, 0.1, 0.2]), np.array([-1.6, -1.5, -1.7]), np.array([0.25, 0.3, 0.2])
    strokes = strokes_from_targets(points, dtheta, t0, mu, sigma)
    pos, speed, _ = trajectory(strokes, points[0], dt=0.002)
    ref = _naive_trajectory(points, dtheta, t0, mu, sigma, dt=0.002)
    assert np.abs(pos - ref).max() < 5e-3
    np.testing.assert_allclose(pos[-1], points[-1], atol=2e-3)
    assert speed.max() > 1.0 and speed[0] == 0.0
    # a straight stroke has arc length = chord; a curved one is longer
    assert strokes.D[2] == pytest.approx(np.hypot(1.0, 0.4))
    assert strokes.D[0] > np.hypot(1.0, 1.0)


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path, dataset: Path) -> None:
    again = generate_dataset(tmp_path / "a", writers=3, genuine=3, forgeries=2, seed=7, height=64, width=96,
                             workers=2, progress=False)  # fmt: skip
    other = generate_dataset(tmp_path / "b", writers=1, genuine=3, forgeries=2, seed=8, height=64, width=96,
                             progress=False)  # fmt: skip
    for rel in ("full_org/original_1_1.png", "full_org/original_3_2.png", "full_forg/forgeries_2_2.png"):
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel
    assert (dataset / "manifest.csv").read_bytes() == (again / "manifest.csv").read_bytes()
    assert (dataset / "full_org/original_1_1.png").read_bytes() != (other / "full_org/original_1_1.png").read_bytes()
    # a writer's images do not depend on how many writers are generated
    one = generate_dataset(tmp_path / "c", writers=1, genuine=1, forgeries=2, seed=7, height=64, width=96,
                           progress=False)  # fmt: skip
    for rel in ("full_org/original_1_1.png", "full_forg/forgeries_1_2.png"):
        assert (dataset / rel).read_bytes() == (one / rel).read_bytes(), rel
    # regenerating smaller into a folder of a larger run would leave files the loaders pick up
    with pytest.raises(DatasetError, match="earlier, larger run"):
        generate_dataset(again, writers=2, genuine=3, forgeries=2, seed=7, height=64, width=96, progress=False)
    generate_dataset(one, writers=1, genuine=1, forgeries=2, seed=7, height=64, width=96, progress=False)


def test_cedar_layout_and_manifest(dataset: Path) -> None:
    assert len(list((dataset / "full_org").glob("original_*_*.png"))) == 9
    assert len(list((dataset / "full_forg").glob("forgeries_*_*.png"))) == 6
    with (dataset / "manifest.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == ["path", "writer", "kind"]
    assert sorted({r["writer"] for r in rows}) == ["1", "2", "3"]
    assert sum(r["kind"] == "genuine" for r in rows) == 9
    assert sum(r["kind"] == "skilled" for r in rows) == 6
    assert all((dataset / r["path"]).is_file() for r in rows)
    assert {"full_org/original_3_3.png", "full_forg/forgeries_3_2.png"} <= {r["path"] for r in rows}
    assert not list(dataset.rglob(".*.tmp"))


def test_images_are_uint8_scans_with_ink() -> None:
    genuine, forged = render_writer_samples(5, 2, 2, seed=0)
    for img in genuine + forged:
        assert img.dtype == np.uint8 and img.shape == (150, 220)
        paper = np.median(img)
        assert paper > 200  # light paper
        dark = (img < paper - 60).mean()
        assert 0.01 < dark < 0.25, dark
        assert img.min() < 90  # dark ink somewhere
    small, _ = render_writer_samples(5, 1, 0, seed=0, height=40, width=60)
    assert small[0].shape == (40, 60)
    with pytest.raises(ConfigError):
        render_writer_samples(5, 1, 0, seed=0, height=8, width=60)
    with pytest.raises(ConfigError):
        generate_dataset("/nonexistent-never-written", writers=0, genuine=1, forgeries=0, progress=False)


def _ink_mask(img: np.ndarray) -> np.ndarray:
    """Thresholded ink, cropped to its bounding box and resized to 64 x 96 (position and size aligned)."""
    _, mask = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ys, xs = np.nonzero(mask)
    mask = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return cv2.resize(mask, (96, 64), interpolation=cv2.INTER_AREA) > 64


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean distance (pixels) from the ink of one mask to the nearest ink of the other."""
    da = cv2.distanceTransform((~a).astype(np.uint8), cv2.DIST_L2, 3)
    db = cv2.distanceTransform((~b).astype(np.uint8), cv2.DIST_L2, 3)
    return 0.5 * float(db[a].mean() + da[b].mean())


def test_skilled_forgeries_are_closer_to_the_genuine_shape_than_other_writers() -> None:
    writers = range(1, 9)
    data = {w: render_writer_samples(w, 1, 2, seed=0, height=64, width=96) for w in writers}
    skilled, random_ = [], []
    for w in writers:
        ref = _ink_mask(data[w][0][0])
        skilled += [_chamfer(ref, _ink_mask(f)) for f in data[w][1]]
        random_ += [_chamfer(ref, _ink_mask(data[v][0][0])) for v in writers if v != w]
    assert np.mean(skilled) < 0.75 * np.mean(random_), (np.mean(skilled), np.mean(random_))


def test_contact_sheet_rows_genuine_then_forged(dataset: Path) -> None:
    sheet = contact_sheet(dataset, writers=2, per_kind=2, gap=4)
    assert sheet.dtype == np.uint8
    assert sheet.shape == (2 * 64 + 4, 4 * 96 + 4 * 4 + 12)
    from_memory = contact_sheet([render_writer_samples(1, 2, 2, seed=7, height=64, width=96)], writers=1, per_kind=2)
    np.testing.assert_array_equal(from_memory, sheet[:64])


def test_cli_writes_dataset_and_preview(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    cmd = [
        VERIFY_BIN,
        "synth",
        "signatures",
        "--writers",
        "2",
        "--genuine",
        "2",
        "--forgeries",
        "1",
        "--seed",
        "3",
        "--out",
        str(out),
        "--height",
        "48",
        "--width",
        "72",
        "--preview",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 6 images" in proc.stdout and "images/s" in proc.stdout
    assert (out / "full_forg/forgeries_2_1.png").is_file() and (out / "manifest.csv").is_file()
    preview = cv2.imread(str(out / "preview.png"), cv2.IMREAD_GRAYSCALE)
    assert preview is not None and preview.shape[0] == 2 * 48 + 4
    again = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=120)
    summary = json.loads(again.stdout)
    assert again.returncode == 0 and summary["images"] == 6 and summary["preview"].endswith("preview.png")
    bad = subprocess.run([*cmd[:4], "0", *cmd[5:]], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "writers" in bad.stderr


def test_signature_loader_reads_generator_output(dataset: Path) -> None:
    signatures = pytest.importorskip("verify.data.signatures", reason="verify.data.signatures not written yet")
    samples = signatures.load_signature_dataset(dataset, "cedar")
    assert len(samples) == 15
    assert {s.identity for s in samples} == {"1", "2", "3"}
    assert sum(s.kind == "skilled" for s in samples) == 6
    assert all(cv2.imread(str(s.path), cv2.IMREAD_GRAYSCALE).shape == (64, 96) for s in samples)
    by_manifest = signatures.load_signature_dataset(dataset, "manifest")
    assert sorted((str(s.path), s.identity, s.kind) for s in by_manifest) == sorted(
        (str(s.path), s.identity, s.kind) for s in samples
    )
