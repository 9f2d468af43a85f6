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
