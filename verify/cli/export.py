"""`verify export`: a model directory -> an ONNX file (card in its metadata and beside it), optionally int8."""

from __future__ import annotations

import argparse
from pathlib import Path

from verify.cli.common import add_json_flag, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX (dynamic batch, card embedded), checked against PyTorch",
        description="Export the torch network of a model directory to ONNX with a dynamic batch axis. The model "
        "card is stored in the ONNX metadata_props and written beside as FILE.onnx.json; the export is checked "
        "against PyTorch on random inputs and the max abs difference printed.",
    )
    p.add_argument("--model", type=Path, required=True, help="model directory (model.json + model.safetensors)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default: onnx)")
    p.add_argument("--out", type=Path, required=True, help="output file, e.g. student.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    p.add_argument(
        "--quantize",
        choices=["none", "int8"],
        default="none",
        help="int8: onnxruntime dynamic quantisation of the weights (default: none)",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from verify.errors import ConfigError
    from verify.export import export_onnx

    if args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a folder; name the file to write, e.g. {args.out}/model.onnx")
    report = export_onnx(args.model, args.out, opset=args.opset, quantize=None if args.quantize == "none" else "int8")
    if args.json:
        print_json(report)
        return 0
    kind = "int8 " if report["quantize"] else ""
    print(
        f"exported {kind}ONNX (opset {report['opset']}, {report['size_bytes'] / 2**20:.1f} MiB) -> {report['path']}; "
        f"card -> {report['card']}; max abs diff vs PyTorch {report['max_abs_diff']:.2e} "
        f"(min cosine {report['min_cosine']:.6f})"
    )
    return 0
