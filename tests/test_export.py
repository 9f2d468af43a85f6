"""ONNX export: agreement with PyTorch, the card in the metadata, the onnxruntime Embedder, int8, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import verify
from verify.errors import ConfigError, ModelError
from verify.export import CARD_KEY, OnnxEmbedder, card_path_for, export_onnx, read_onnx_card
from verify.models.card import load_network, read_card

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
VERIFY_BIN = str(Path(sys.executable).parent / "verify")


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    return out, export_onnx(tiny_model, out)


def test_onnx_matches_pytorch_on_random_inputs(tiny_model: Path, exported: tuple[Path, dict]) -> None:
    path, report = exported
    assert report["max_abs_diff"] < 1e-4 and report["quantize"] is None
    net, _ = load_network(tiny_model)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 7):  # the batch axis is dynamic
        x = torch.randn(batch, 1, 32, 48, generator=torch.Generator().manual_seed(batch))
        got = sess.run(None, {"input": x.numpy()})[0]
        with torch.inference_mode():
            ref = net(x).numpy()
        assert got.shape == (batch, 16)
        np.testing.assert_allclose(got, ref, atol=1e-4)


def test_card_in_metadata_and_beside(tiny_model: Path, exported: tuple[Path, dict]) -> None:
    path, report = exported
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    card = json.loads(meta[CARD_KEY])
    source = read_card(tiny_model)
    assert card["fingerprint"] == source["fingerprint"] == report["fingerprint"]
    assert card["export"]["opset"] == 17 and card["input"] == source["input"]
    assert json.loads(card_path_for(path).read_text()) == card == read_onnx_card(path)


def test_onnx_embedder_equals_torch_embedder(tiny_model: Path, exported: tuple[Path, dict], rng) -> None:
    path, _ = exported
    onnx_model = OnnxEmbedder(path, threads=1)
    torch_model = verify.load_model(tiny_model)
    assert onnx_model.dim == torch_model.dim and onnx_model.fingerprint == torch_model.fingerprint
    images = [np.full((80, 120), 255, np.uint8) for _ in range(5)]
    for image in images:  # dark random strokes on white
        points = rng.integers([5, 5], [115, 75], size=(6, 2)).astype(np.int32)
        cv2.polylines(image, [points], False, 0, 2)
    got, ref = onnx_model.embed(images, batch_size=2), torch_model.embed(images)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert onnx_model.embed_crops([]).shape == (0, 16)
    assert not np.allclose(got[0], got[-1])


def test_int8_export_is_smaller_close_and_has_its_own_fingerprint(
    tiny_model: Path, exported: tuple[Path, dict], tmp_path: Path
) -> None:
    report = export_onnx(tiny_model, tmp_path / "q.onnx", quantize="int8")
    assert report["size_bytes"] < exported[1]["size_bytes"] / 3
    assert report["min_cosine"] > 0.98 and report["max_abs_diff"] > 0
    assert report["fingerprint"] != report["source_fingerprint"] == read_card(tiny_model)["fingerprint"]
    emb = OnnxEmbedder(tmp_path / "q.onnx").embed_crops([np.zeros((32, 48), np.uint8)])
    assert emb.shape == (1, 16)


def test_export_refusals(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        export_onnx(tiny_model, tmp_path / "x.onnx", quantize="int4")
    with pytest.raises(ModelError):
        export_onnx(tmp_path / "missing", tmp_path / "x.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError):
        OnnxEmbedder(tmp_path / "bad.onnx")


def test_export_cli_json(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.onnx"
    cmd = [VERIFY_BIN, "export", "--model", str(tiny_model), "--format", "onnx", "--out", str(out), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["max_abs_diff"] < 1e-4 and out.is_file() and card_path_for(out).is_file()
    from verify.cli import main

    assert main([*cmd[1:-1], "--opset", "3"]) == 2
    assert "opset" in capsys.readouterr().err
    assert main(["export", "--model", str(tiny_model), "--format", "onnx", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder; name the file to write" in err and ".tmp" not in err


def test_load_model_takes_an_onnx_file(tiny_model: Path, exported: tuple[Path, dict], rng) -> None:
    import verify

    onnx_model, torch_model = verify.load_model(exported[0]), verify.load_model(tiny_model)
    assert onnx_model.fingerprint == torch_model.fingerprint
    crops = [rng.integers(0, 256, (32, 48), dtype=np.uint8) for _ in range(3)]
    np.testing.assert_allclose(onnx_model.embed_crops(crops), torch_model.embed_crops(crops), atol=1e-5)
