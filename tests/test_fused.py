"""Fused models: the fused cosine is the weighted mean of the components' cosines, and it loads like any model."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.errors import ModelError, ModelMismatchError
from verify.models import load_model
from verify.models.card import write_card
from verify.models.classical import new_hog_card
from verify.models.fused import FusedEmbedder, create_fused_model


def _signatures(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        page = np.full((60, 120), 235, np.uint8)
        pts = np.cumsum(rng.normal(0, 6, size=(12, 2)), axis=0) + np.array([60, 30])
        for a, b in itertools.pairwise(pts):
            cv2.line(page, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 30, 2)
        out.append(page)
    return out


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fused")
    learned = tiny_model_factory(root / "learned")
    hog = root / "hog"
    hog.mkdir()
    write_card(hog, new_hog_card("hog", height=32, width=48, params=None, calibration={"threshold": 0.5}))
    return learned, hog


def test_fused_cosine_is_the_weighted_mean_of_component_cosines(parts, tmp_path, rng) -> None:
    learned, hog = parts
    fused_dir = create_fused_model(tmp_path / "f", [("learned", learned, 0.7), ("hog", hog, 0.3)], name="f")
    fused = load_model(fused_dir)
    a, b = load_model(learned), load_model(hog)
    images = _signatures(rng, 5)
    ef, ea, eb = fused.embed(images), a.embed(images), b.embed(images)
    assert ef.shape == (5, a.dim + b.dim)
    np.testing.assert_allclose(np.linalg.norm(ef, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ef @ ef.T, 0.7 * (ea @ ea.T) + 0.3 * (eb @ eb.T), atol=1e-5)
    emb, feats = fused.embed_crops_with_features([fused.preprocess(im).image for im in images])
    np.testing.assert_allclose(emb, ef, atol=1e-6)
    assert feats.shape[0] == 5


def test_fused_refuses_replaced_component_and_bad_weights(parts, tmp_path, tiny_model_factory) -> None:
    learned, hog = parts
    fused_dir = create_fused_model(tmp_path / "f", [("learned", learned, 0.5), ("hog", hog, 0.5)], name="f")
    tiny_model_factory(fused_dir / "learned", seed=3)  # other weights under the same name
    with pytest.raises(ModelMismatchError):
        load_model(fused_dir)
    with pytest.raises(ModelError, match="sum to 1"):
        FusedEmbedder({}, [load_model(learned), load_model(hog)], [0.5, 0.6])


def test_fused_component_path_must_stay_inside(parts, tmp_path) -> None:
    learned, hog = parts
    fused_dir = create_fused_model(tmp_path / "f", [("learned", learned, 0.5), ("hog", hog, 0.5)], name="f")
    card = json.loads((fused_dir / "model.json").read_text())
    card["architecture"]["components"][1]["path"] = str(hog)
    (fused_dir / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="leaves the model"):
        load_model(fused_dir)


def test_verify_fuse_cli_builds_the_model_and_refuses_bad_weights_leaving_out_untouched(parts, tmp_path, rng) -> None:
    """`verify fuse` as a subprocess: the fused model scores like create_fused_model's; weights that do not sum
    to 1 exit 2 with one line and leave an existing OUT as it was."""
    import subprocess
    import sys

    learned, hog = parts
    verify_bin = str(Path(sys.executable).parent / "verify")
    out = tmp_path / "fused"
    ok = subprocess.run([verify_bin, "fuse", "--model", f"{learned}:0.7", "--model", f"{hog}:0.3", "--out", str(out),
                         "--json"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["dim"] == load_model(learned).dim + load_model(hog).dim
    reference = load_model(create_fused_model(tmp_path / "ref", [("a", learned, 0.7), ("b", hog, 0.3)], name="r"))
    images = _signatures(rng, 4)
    e, r = load_model(out).embed(images), reference.embed(images)
    np.testing.assert_allclose(e @ e.T, r @ r.T, atol=1e-6)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    bad = subprocess.run([verify_bin, "fuse", "--model", f"{learned}:0.7", "--model", f"{hog}:0.7", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "sum to 1" in bad.stderr and "Traceback" not in bad.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not list(tmp_path.glob(".fused.*"))
