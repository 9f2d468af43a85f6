"""Shared tiny fixtures: seeded RNG, small images, a tiny timm model card."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
VERIFY_BIN = str(Path(sys.executable).parent / "verify")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture
def unit_embeddings(rng: np.random.Generator) -> np.ndarray:
    """A few 2-D embeddings on the unit circle. [8, 2]"""
    angles = rng.uniform(0, 2 * np.pi, size=8)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def make_tiny_model(directory: Path, modality: str = "signature", seed: int = 0, threshold: float = 0.9) -> Path:
    """An untrained resnet18 signature model at 32x48 px with a stated threshold (for pipeline tests)."""
    import torch

    from verify.models import new_card, save_model
    from verify.models.network import create_timm_network

    torch.manual_seed(seed)
    arch = {"kind": "timm", "backbone": "resnet18", "dim": 16, "in_chans": 1}
    card = new_card(
        name=f"tiny-{seed}",
        modality=modality,
        architecture=arch,
        input={"height": 32, "width": 48, "channels": 1},
        preprocessing={"kind": "signature"},
        calibration={"threshold": threshold, "source": "test fixture"},
    )
    net = create_timm_network(arch).train()
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average: the statistics of exactly these passes
    with torch.no_grad():  # settle BatchNorm statistics so the untrained net tells inputs apart
        for _ in range(3):
            net((torch.rand(16, 1, 32, 48) > 0.85).float() * 2 - 1)  # sparse bright ink on black
    return save_model(directory, net.eval(), card)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def synth_signatures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic CEDAR-layout dataset: 4 writers x 3 genuine + 2 skilled forgeries at 150x220 px."""
    from verify.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synth"), 4, 3, 2, seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_model_factory():
    return make_tiny_model


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_app(root: Path, **launch_kwargs):
    """Start the web UI (bundled models, an empty gallery under `root`) on a free port; yield its URL; stop it."""
    from app.service import VerifyService
    from app.ui import build_app, launch_app

    service = VerifyService(root / "gallery", work_dir=root / "work")
    blocks = build_app(service)
    _, url, _ = launch_app(blocks, port=free_port(), block=False, **launch_kwargs)
    try:
        yield url
    finally:
        blocks.close()
        service.close()
