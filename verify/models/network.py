"""Embedding networks: the `EmbeddingNetwork` protocol and the Siamese timm network.

`SiameseEmbedder` is a timm backbone, a projection head with BatchNorm, and L2 normalisation. "Siamese" means
both inputs of a pair go through this one module (shared weights): `forward_pair` applies the same network to
both; training losses see a batch of embeddings. (A loaded model with its card and preprocessing is an
`verify.models.base.Embedder`; the network is one of its parts.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import timm
import torch
import torch.nn.functional as F
from torch import nn

from verify.errors import ConfigError, WeightsUnavailableError


def _create_backbone(backbone: str, in_chans: int, pretrained: bool, pretrained_file: str | None) -> nn.Module:
    if backbone not in timm.list_models() and backbone not in timm.list_models(pretrained=True):
        raise ConfigError(f"unknown timm backbone {backbone!r}; see timm.list_models() for the names")
    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": in_chans}
    if pretrained_file is not None:
        if not Path(pretrained_file).is_file():
            raise WeightsUnavailableError(f"pretrained weight file {pretrained_file} does not exist")
        kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
        pretrained = True
    try:
        return timm.create_model(backbone, pretrained=pretrained, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        if not pretrained:
            raise
        raise WeightsUnavailableError(
            f"could not get pretrained weights for {backbone!r} ({exc.__class__.__name__}: {exc}); "
            "with no network access, download them elsewhere and pass the file with "
            "--set pretrained_file=PATH (a timm .safetensors/.pth checkpoint), or train with pretrained=false"
        ) from exc


@runtime_checkable
class EmbeddingNetwork(Protocol):
    """What training, distillation, OOD fitting and export need of a network (timm's ``forward_features`` /
    ``forward_head`` split): ``forward(x) == normalize(project(features(x)))``.

    Implemented by `SiameseEmbedder` and `verify.models.dlib_resnet.DlibFaceResNet`.
    """

    num_features: int  # width F of `features`
    dim: int  # embedding size D

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features. [B, C, H, W] -> [B, F]."""
        ...

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """The head before normalisation. [B, F] -> [B, D]."""
        ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings. [B, C, H, W] -> [B, D]."""
        ...


class SiameseEmbedder(nn.Module):
    """timm backbone -> Linear -> BatchNorm1d -> L2 normalisation.

    Args:
        backbone: any timm model name (resnet18, resnet50, mobilenetv3_small_100, ...).
        dim: embedding size D.
        in_chans: 1 for grayscale signatures, 3 for RGB faces (timm adapts pretrained stems).
        pretrained: use timm's pretrained weights (needs network access).
        pretrained_file: a local timm weight file instead of the download.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        dim: int = 128,
        in_chans: int = 3,
        pretrained: bool = False,
        pretrained_file: str | None = None,
    ) -> None:
        super().__init__()
        if dim < 2:
            raise ConfigError(f"embedding dim must be >= 2, got {dim}")
        self.backbone = _create_backbone(backbone, in_chans, pretrained, pretrained_file)
        # what forward() returns with num_classes=0: the pre-logits head's width where a model has one
        # (mobilenetv3: 576 channels, then a 1024-wide head), else num_features
        width = getattr(self.backbone, "head_hidden_size", None) or getattr(self.backbone, "num_features")  # noqa: B009
        self.num_features: int = int(width)
        self.head = nn.Sequential(nn.Linear(self.num_features, dim, bias=False), nn.BatchNorm1d(dim))
        self.dim = dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features before the head. [B, C, H, W] -> [B, F]."""
        return self.backbone(x)

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """Head output before normalisation. [B, F] -> [B, D]."""
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> L2-normalised [B, D]."""
        return F.normalize(self.project(self.features(x)), dim=1)

    def forward_pair(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both branches of the Siamese pair through the same weights. Returns ([B, D], [B, D])."""
        both = self(torch.cat([a, b], dim=0))
        return both[: a.shape[0]], both[a.shape[0] :]


def create_timm_network(arch: dict[str, Any], pretrained: bool = False) -> SiameseEmbedder:
    """Build the network from a card's "architecture" section (kind "timm": backbone, dim, in_chans).

    Loading a checkpoint never fetches pretrained weights (they are overwritten); training passes
    ``pretrained=True`` to start from timm's (or ``arch["pretrained_file"]``'s) weights.
    """
    return SiameseEmbedder(
        backbone=str(arch.get("backbone", "resnet18")),
        dim=int(arch.get("dim", 128)),
        in_chans=int(arch.get("in_chans", 3)),
        pretrained=pretrained,
        pretrained_file=arch.get("pretrained_file") if pretrained else None,
    )
