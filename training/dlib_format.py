"""dlib's serialisation of its face ResNet (dlib/serialize.h, dlib/dnn/core.h, layers.h, input.h, tensor.h), read
with no dlib code.

Integers are a control byte (low 4 bits: byte count, 0x80: negative) + little-endian bytes; floats are an
integer mantissa and exponent (value = m * 2**e); strings are a length + bytes; bools are '0'/'1'; tensors are
version 2, (n, k, nr, nc) and raw little-endian float32. A network is a chain of nested layers: every layer
writes its version before its subnetwork and its details after it, so the versions come outermost-first and
the details innermost-first (forward order). Tags and skips write only a version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verify.errors import ModelError


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
