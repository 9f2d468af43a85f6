"""Both network kinds satisfy `EmbeddingNetwork`: forward(x) == normalize(project(features(x)))."""

from __future__ import annotations

import torch

from verify.models.dlib_resnet import DlibFaceResNet
from verify.models.network import EmbeddingNetwork, SiameseEmbedder


def _check(net: EmbeddingNetwork, x: torch.Tensor) -> None:
    assert isinstance(net, EmbeddingNetwork)
    with torch.no_grad():
        feats = net.features(x)
        emb = net(x)
        assert feats.shape == (len(x), net.num_features) and emb.shape == (len(x), net.dim)
        torch.testing.assert_close(emb, torch.nn.functional.normalize(net.project(feats), dim=1))


def test_siamese_embedder_is_an_embedding_network() -> None:
    torch.manual_seed(0)
    _check(SiameseEmbedder("resnet18", dim=16, in_chans=1).eval(), torch.rand(2, 1, 32, 32))


def test_dlib_face_resnet_is_an_embedding_network() -> None:
    torch.manual_seed(0)
    _check(DlibFaceResNet().eval(), torch.rand(2, 3, 150, 150))


def test_a_module_without_the_methods_is_not_one() -> None:
    assert not isinstance(torch.nn.Linear(2, 2), EmbeddingNetwork)
