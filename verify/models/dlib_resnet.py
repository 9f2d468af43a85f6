"""dlib's 128-d metric-learning face ResNet (`dlib_face_recognition_resnet_model_v1`) as a PyTorch module.

The network of dlib's `dnn_face_recognition_ex.cpp`, checked layer by layer against the serialised model
(see `training/convert_dlib.py`), in forward order:

- stem: con<32,7,7,2,2> (no padding: dlib pads only stride-1 convolutions, by k//2), affine, relu,
  max_pool<3,3,2,2> (no padding): 150 -> 72 -> 35.
- 14 residual blocks ("ares" / "ares_down"): 3 x 32 @ 35; down 64 + 3 x 64 @ 17; down 128 + 2 x 128 @ 8;
  down 256 + 2 x 256 @ 4; down 256 @ 2. A block is conv3x3(stride s) -> affine -> relu -> conv3x3 -> affine,
  added to the shortcut, then relu. The down-sampling shortcut is avg_pool<2,2,2,2> (no padding).
- avg_pool_everything, fc_no_bias<128>.

dlib's `add_prev` makes a tensor of the *larger* size in every dimension and adds both inputs zero-padded at
the end (more channels, more rows, more columns). That matters twice: 32 -> 64 (etc.) channels on the
down-sampling shortcut, and on 8x8 and 4x4 maps, where the stride-2 unpadded 3x3 convolution gives 3x3 / 1x1
but the 2x2 average pool gives 4x4 / 2x2: the outer row and column then carry the shortcut alone.

Batch norm was folded into `affine` by dlib; the converter folds each affine into the convolution before it,
so every convolution here has a bias. Input: dlib's `input_rgb_image` computes (pixel - mean) / 256 with
per-channel means (122.782, 117.001, 104.298) on RGB; the card expresses that as mean = m / 255,
std = 256 / 255 for crops scaled to [0, 1].
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# (in_channels, out_channels, stride) of the residual blocks, in forward order.
DLIB_BLOCKS: tuple[tuple[int, int, int], ...] = (
    *[(32, 32, 1)] * 3,
    (32, 64, 2),
    *[(64, 64, 1)] * 3,
    (64, 128, 2),
    *[(128, 128, 1)] * 2,
    (128, 256, 2),
    *[(256, 256, 1)] * 2,
    (256, 256, 2),
)
DLIB_INPUT_SIZE = 150
# dlib's input_rgb_image: (pixel - mean) / 256, pixels in 0..255, RGB order.
DLIB_PIXEL_MEANS = (122.782, 117.001, 104.298)
DLIB_PIXEL_SCALE = 256.0
# Inference batches up to this size run on one CPU thread (see `one_intra_op_thread`).
SERIAL_BATCH = 4

_THREADS_LOCK = threading.Lock()
_serial_blocks = 0
_saved_threads = 0


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside this block (process-wide while any such block runs).

    A verification embeds 1-2 chips: too little work to share between threads. Two OpenMP threads then wait
    for each other at every layer, which costs a little on an idle 2-core CPU and 10x (80 -> 700+ ms for two
    chips) when other processes hold a core. The results are bit-identical.
    """
    global _serial_blocks, _saved_threads
    with _THREADS_LOCK:
        if _serial_blocks == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _serial_blocks += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _serial_blocks -= 1
            if _serial_blocks == 0:
                torch.set_num_threads(_saved_threads)


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's `add_prev`: the sum of two [B, C, H, W] tensors of possibly different C, H, W.

    The result has the larger size in every dimension; each input is zero-padded at the end (channels
    after its own, rows below, columns to the right) before adding.
    """
    if a.shape == b.shape:
        return a + b
    size = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, size[2] - w, 0, size[1] - h, 0, size[0] - c))

    return pad(a) + pad(b)


class DlibResidualBlock(nn.Module):
    """dlib's `ares` (stride 1) or `ares_down` (stride 2) with batch norm folded into the convolutions.

    Args:
        in_channels: channels of the input.
        out_channels: channels of both convolutions.
        stride: 1, or 2 for the down-sampling block (unpadded strided conv, 2x2 average-pool shortcut).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        pad = 1 if stride == 1 else 0
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=pad)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, H, W] -> [B, C_out, H', W']."""
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = x if self.stride == 1 else F.avg_pool2d(x, 2, 2)
        return F.relu(add_zero_padded(y, shortcut))


class DlibFaceResNet(nn.Module):
    """dlib's face ResNet: RGB [B, 3, 150, 150] normalised as dlib does -> embeddings [B, dim].

    Exposes the small interface of `verify.models.network.SiameseEmbedder` that training code relies on:
    `features(x)` (pooled [B, 256] before the fc), `project(feats)` (the fc, [B, dim], not normalised),
    `num_features` and `dim`, so `forward(x) == normalize(project(features(x)))` for both network kinds.

    Args:
        dim: embedding size (128 for dlib's model).
    """

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.blocks = nn.Sequential(*(DlibResidualBlock(i, o, s) for i, o, s in DLIB_BLOCKS))
        self.num_features: int = DLIB_BLOCKS[-1][1]
        self.dim = dim
        self.fc = nn.Linear(self.num_features, dim, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled features before the fc. [B, 3, H, W] -> [B, num_features]"""
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        return self.blocks(x).mean(dim=(2, 3))

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """The fc (dlib's descriptor before normalisation). [B, num_features] -> [B, D]"""
        return self.fc(feats)

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """dlib's descriptor, not normalised (its norms are close to, not exactly, 1). [B, 3, H, W] -> [B, D]"""
        return self.project(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings, the project's convention. [B, 3, H, W] -> [B, D]

        Small CPU inference batches (<= `SERIAL_BATCH`) run on one thread (`one_intra_op_thread`).
        """
        if x.shape[0] <= SERIAL_BATCH and x.device.type == "cpu" and not torch.is_grad_enabled():
            with one_intra_op_thread():
                return F.normalize(self.forward_raw(x), dim=1)
        return F.normalize(self.forward_raw(x), dim=1)

    def forward_pair(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both branches of a Siamese pair through the same weights. Returns ([B, D], [B, D])."""
        both = self(torch.cat([a, b], dim=0))
        return both[: a.shape[0]], both[a.shape[0] :]


def create_dlib_resnet(arch: dict[str, Any]) -> nn.Module:
    """Registry factory for architecture kind "dlib_resnet"; `arch` is the card's architecture section."""
    return DlibFaceResNet(dim=int(arch.get("dim", 128)))


def dlib_input_normalisation() -> dict[str, list[float]]:
    """Card "mean"/"std" for crops scaled to [0, 1] that reproduce dlib's (pixel - mean) / 256."""
    return {
        "mean": [m / 255.0 for m in DLIB_PIXEL_MEANS],
        "std": [DLIB_PIXEL_SCALE / 255.0] * 3,
    }
