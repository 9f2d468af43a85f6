"""ONNX export of a model directory and optional int8 quantisation (the onnxruntime backend: `verify.models.onnx`).

`export_onnx` traces the torch network (legacy TorchScript exporter, ``dynamo=False``: the dynamo exporter
needs onnxscript) with a dynamic batch axis, stores the model card as JSON in the ONNX ``metadata_props``
(key ``siamese_verify_card``) and beside the file (``FILE.onnx.json``), and checks the exported graph against
PyTorch on random inputs. ``quantize="int8"`` applies onnxruntime's dynamic quantisation (int8 weights,
activations quantised per batch at run time). An fp32 export keeps the source model's fingerprint (same
embeddings within 1e-4, so galleries stay usable); an int8 export gets its own.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import ConfigError, ModelError
from verify.jsonutil import dumps
from verify.models.onnx import (
    CARD_KEY,
    OnnxEmbedder,
    _session,
    card_path_for,
    load_onnx_model,
    read_onnx_card,
)

FP32_TOLERANCE = 1e-3  # an fp32 export further than this from PyTorch is refused (typical: < 1e-5)


def _trace(net: Any, x: Any, path: Path, opset: int) -> None:
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (x,), str(path), opset_version=opset, dynamo=False, input_names=["input"],
            output_names=["embedding"], dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
        )  # fmt: skip


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = dst.with_name(f".{dst.name}.pre.onnx")
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        # uint8 weights: onnxruntime's CPU ConvInteger has no int8-weight kernel
        quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QUInt8)
    finally:
        pre.unlink(missing_ok=True)


def _write_with_card(model: Any, card: dict[str, Any], out: Path) -> None:
    """Set the card in the ONNX metadata and save atomically; write FILE.onnx.json beside."""
    import onnx

    from verify.models.card import atomic_write_bytes

    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card)
    atomic_write_bytes(out, model.SerializeToString())
    atomic_write_bytes(card_path_for(out), (json.dumps(card, indent=2) + "\n").encode())
    onnx.checker.check_model(str(out))


def export_onnx(
    model: str | Path,
    out: str | Path,
    opset: int = 17,
    quantize: str | None = None,
    check_batch: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Export the torch network of model directory `model` to ONNX file `out`.

    Args:
        model: a model directory (model.json + model.safetensors) with a torch architecture.
        out: the .onnx file to write (its card goes to ``out + ".json"``).
        opset: ONNX opset version.
        quantize: None, or "int8" for onnxruntime dynamic quantisation.
        check_batch: batch size of the random-input check against PyTorch (a batch of 1 is checked too).
        seed: seed of the random inputs.

    Returns:
        A report: path, card path, opset, quantize, size_bytes, max_abs_diff vs PyTorch on random inputs
        [check_batch, C, H, W], min_cosine between the two embeddings, fingerprint.

    Raises:
        ConfigError: unknown quantize or opset out of range; ModelError: not a torch model, or an fp32
        export that disagrees with PyTorch.
    """
    import onnx
    import torch

    from verify.models.card import load_network, read_card

    if quantize not in (None, "int8"):
        raise ConfigError(f"quantize must be 'int8' or none, got {quantize!r}")
    if not 9 <= opset <= 21:
        raise ConfigError(f"opset must be between 9 and 21, got {opset}")
    kind = (read_card(model).get("architecture") or {}).get("kind", "timm")
    from verify.models.registry import get_loader

    if get_loader(str(kind)) is not None:
        raise ModelError(f"{model}: a {kind!r} model is not a torch network and cannot be exported to ONNX")
    net, card = load_network(model)
    inp = card["input"]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(check_batch, int(inp["channels"]), int(inp["height"]), int(inp["width"]), generator=gen)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export.") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _trace(net, x[:2], fp32, opset)
        path = fp32
        if quantize == "int8":
            path = Path(tmp) / "int8.onnx"
            _quantize(fp32, path)
        diff, min_cos = _compare(net, path, x)
        if quantize is None and diff > FP32_TOLERANCE:
            raise ModelError(f"{model}: the ONNX export differs from PyTorch by {diff:.2e} (> {FP32_TOLERANCE})")
        onnx_model = onnx.load(str(path))
        exported = _export_card(card, opset, quantize, diff, onnx_model)
        _write_with_card(onnx_model, exported, out)
    return {
        "path": str(out), "card": str(card_path_for(out)), "opset": opset, "quantize": quantize,
        "size_bytes": out.stat().st_size, "max_abs_diff": diff, "min_cosine": min_cos,
        "fingerprint": exported["fingerprint"], "source_fingerprint": exported["export"]["source_fingerprint"],
    }  # fmt: skip


def _compare(net: Any, path: Path, x: Any) -> tuple[float, float]:
    """Max |torch - onnx| and the lowest cosine between the two embeddings, at batch len(x) and 1."""
    import torch

    sess = _session(path)
    with torch.inference_mode():
        ref = net(x).numpy()
    got = np.concatenate([sess.run(None, {"input": x.numpy()})[0], sess.run(None, {"input": x[:1].numpy()})[0]])
    ref = np.concatenate([ref, ref[:1]])
    cos = (ref * got).sum(1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1), 1e-12)
    return float(np.abs(ref - got).max()), float(cos.min())


def _export_card(
    source_card: Mapping[str, Any], opset: int, quantize: str | None, diff: float, model: Any
) -> dict[str, Any]:
    card: dict[str, Any] = json.loads(dumps(source_card))  # a plain copy
    source = card.get("fingerprint")
    if quantize:
        digest = hashlib.sha256(b"".join(t.raw_data for t in model.graph.initializer)).hexdigest()
        card["fingerprint"] = digest[:16]
    card["export"] = {
        "format": "onnx", "opset": opset, "quantize": quantize, "source_fingerprint": source,
        "max_abs_diff_vs_torch": diff, "input": "input", "output": "embedding",
    }  # fmt: skip
    return card


__all__ = ["CARD_KEY", "OnnxEmbedder", "card_path_for", "export_onnx", "load_onnx_model", "read_onnx_card"]
