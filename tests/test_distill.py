"""Distillation: the losses against hand computations, and a tiny `verify distill` run end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from verify.distill_losses import (
    CosineClassifier,
    EmbeddingDistillLoss,
    RKDLoss,
    fit_teacher_classifier,
    kd_loss,
    rkd_angle,
    rkd_distance,
)
from verify.errors import ConfigError

VERIFY_BIN = str(Path(sys.executable).parent / "verify")


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_kd_loss_equals_hand_computation_with_t_squared() -> None:
    s = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    t = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    y = [1, 2]
    T, alpha = 4.0, 0.7
    kl, ce = 0.0, 0.0
    for si, ti, yi in zip(s, t, y, strict=True):
        ps, pt = _softmax([v / T for v in si]), _softmax([v / T for v in ti])
        kl += sum(b * math.log(b / a) for a, b in zip(ps, pt, strict=True))
        ce += -math.log(_softmax(si)[yi])
    expected_soft = T * T * kl / 2
    expected = alpha * expected_soft + (1 - alpha) * ce / 2
    st, tt, yt = torch.tensor(s), torch.tensor(t), torch.tensor(y)
    assert kd_loss(st, tt, None, T) == pytest.approx(expected_soft, rel=1e-5)
    assert kd_loss(st, tt, yt, T, alpha) == pytest.approx(expected, rel=1e-5)
    # T^2 scale: at T=1 the soft term is the plain KL
    kl1 = sum(
        sum(b * math.log(b / a) for a, b in zip(_softmax(si), _softmax(ti), strict=True))
        for si, ti in zip(s, t, strict=True)
    )
    assert kd_loss(st, tt, None, 1.0) == pytest.approx(kl1 / 2, rel=1e-5)


def test_kd_loss_zero_when_logits_match_and_has_gradient_otherwise() -> None:
    z = torch.randn(5, 7)
    assert float(kd_loss(z.clone(), z, None, 4.0)) == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(5, 7, requires_grad=True)
    kd_loss(s, z, torch.arange(5), 4.0, 0.5).backward()
    assert s.grad is not None and float(s.grad.abs().sum()) > 0
    with pytest.raises(ConfigError):
        kd_loss(s, z, None, temperature=0.0)


def _rkd_distance_naive(s: np.ndarray, t: np.ndarray) -> float:
    def norm(x: np.ndarray) -> np.ndarray:
        d = np.array([[np.linalg.norm(a - b) for b in x] for a in x])
        off = ~np.eye(len(x), dtype=bool)
        return d[off] / d[off].mean()

    diff = np.abs(norm(s) - norm(t))
    return float(np.where(diff < 1, 0.5 * diff**2, diff - 0.5).mean())


def test_rkd_distance_matches_naive_loop(rng: np.random.Generator) -> None:
    s, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 8))
    got = rkd_distance(torch.tensor(s, dtype=torch.float64), torch.tensor(t, dtype=torch.float64))
    assert float(got) == pytest.approx(_rkd_distance_naive(s, t), rel=1e-6)


def test_rkd_zero_for_same_distances_and_scale_invariant(rng: np.random.Generator) -> None:
    t = torch.tensor(rng.normal(size=(8, 5)), dtype=torch.float32)
    q, _ = torch.linalg.qr(torch.randn(5, 5))
    rotated = t @ q  # an isometry: identical distance matrix, different coordinates
    rkd = RKDLoss(distance_weight=1.0, angle_weight=2.0)
    assert float(rkd(rotated, t)) == pytest.approx(0.0, abs=1e-5)
    s = torch.randn(8, 5)
    base = float(rkd(s, t))
    assert base > 1e-3
    assert float(rkd(3.7 * s, t)) == pytest.approx(base, rel=1e-4)
    assert float(rkd(s, 0.2 * t)) == pytest.approx(base, rel=1e-4)
    assert float(rkd_angle(s, t)) > 0


def test_rkd_angle_matches_naive_triplets(rng: np.random.Generator) -> None:
    s, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 6))

    def cosines(x: np.ndarray) -> np.ndarray:
        out = np.zeros((4, 4, 4))
        for j in range(4):
            for i in range(4):
                for k in range(4):
                    a, b = x[i] - x[j], x[k] - x[j]
                    na, nb = np.linalg.norm(a), np.linalg.norm(b)
                    out[j, i, k] = 0.0 if na == 0 or nb == 0 else a @ b / (na * nb)
        return out

    diff = np.abs(cosines(s) - cosines(t))
    expected = float(np.where(diff < 1, 0.5 * diff**2, diff - 0.5).mean())
    got = rkd_angle(torch.tensor(s), torch.tensor(t))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_embedding_distill_loss_cosine_l2_and_adapter() -> None:
    t = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    same = EmbeddingDistillLoss(6, 6, "cosine")
    assert same.adapter is None
    assert float(same(t.clone(), t)) == pytest.approx(0.0, abs=1e-6)
    s = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    cos = (s * t).sum(1)
    assert float(same(s, t)) == pytest.approx(float((1 - cos).mean()), rel=1e-5)
    assert float(EmbeddingDistillLoss(6, 6, "l2")(s, t)) == pytest.approx(float((2 - 2 * cos).mean()), rel=1e-5)
    adapted = EmbeddingDistillLoss(3, 6)
    assert adapted.adapter is not None and adapted.adapter.weight.shape == (6, 3)
    adapted(torch.randn(4, 3), t).backward()
    assert adapted.adapter.weight.grad is not None
    with pytest.raises(ConfigError):
        EmbeddingDistillLoss(3, 6, "manhattan")


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_teacher_classifier_separates_classes(kind: str, rng: np.random.Generator) -> None:
    centres = rng.normal(size=(3, 8)) * 3
    labels = np.repeat(np.arange(3), 10)
    emb = (centres[labels] + rng.normal(size=(30, 8)) * 0.3).astype(np.float32)
    head = fit_teacher_classifier(emb, labels, kind)
    logits = head(torch.from_numpy(emb))
    assert logits.shape == (30, 3)
    assert (logits.argmax(1).numpy() == labels).mean() == 1.0
    assert not any(p.requires_grad for p in head.parameters())
    gap = labels.copy()
    gap[gap == 1] = 2  # class 1 has no sample (its images were skipped): the head still has C=3 outputs
    logits = fit_teacher_classifier(emb, gap, kind)(torch.from_numpy(emb))
    assert logits.shape == (30, 3) and torch.isfinite(logits).all() and (logits.argmax(1) != 1).all()


def test_cosine_classifier_scale() -> None:
    w = torch.eye(3, 4)
    head = CosineClassifier(4, 3, scale=10.0, weight=w)
    out = head(torch.tensor([[2.0, 0.0, 0.0, 0.0]]))
    assert out.tolist()[0] == pytest.approx([10.0, 0.0, 0.0])


@pytest.mark.timeout(120)
def test_distill_cli_tiny_run(tmp_path: Path, tiny_model: Path, synth_signatures: Path) -> None:
    teacher = tiny_model
    out = tmp_path / "run"
    cmd = [
        VERIFY_BIN, "distill", "--teacher", str(teacher), "--student", "resnet10t", "--data",
        str(synth_signatures), "--out", str(out), "--protocol", "cedar", "--json", "--quiet",
        "--set", "epochs=1", "--set", "p=4", "--set", "k=2", "--set", "val_fraction=0.5",
        "--set", "kd_weight=1.0", "--set", "embedding_weight=1.0", "--set", "rkd_distance_weight=1.0",
        "--set", "rkd_angle_weight=1.0", "--set", "metric_weight=0.5", "--set", "augment=false",
        "--set", "compatible_min_cosine=-1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["epochs"] == 1 and summary["teacher_cached"] is True
    import verify
    from verify.models.card import read_card

    student = verify.load_model(out)
    card = read_card(teacher)
    assert student.card["distillation"]["teacher"]["fingerprint"] == card["fingerprint"]
    assert student.card["distillation"]["teacher"]["name"] == card["name"]
    assert student.card["architecture"]["backbone"] == "resnet10t"
    assert student.card["compatible_with"] == card["fingerprint"]  # same dim, embedding objective, cosine >= -1
    assert -1.0 <= student.card["distillation"]["teacher_cosine_val"] <= 1.0
    assert student.card["input"]["height"] == card["input"]["height"]
    crops = [np.full((32, 48), 255, np.uint8), np.zeros((32, 48), np.uint8)]
    emb = student.embed_crops(crops)
    assert emb.shape == (2, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (out / "metrics.csv").is_file() and (out / "curves.png").is_file()
    header = (out / "metrics.csv").read_text().splitlines()[0]
    for column in ("loss", "kd", "embedding", "rkd", "metric", "val_eer"):
        assert column in header.split(",")


def test_distill_cli_rejects_bad_objective(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from verify.cli import main

    argv = [
        "distill", "--teacher", str(tiny_model), "--student", "resnet10t", "--data", str(tmp_path),
        "--out", str(tmp_path / "run"), "--set", "kd_weight=0", "--set", "embedding_weight=0",
        "--set", "rkd_distance_weight=0", "--set", "metric_weight=0",
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "objective" in err and len(err.strip().splitlines()) == 1
    assert main([*argv[:-8], "--set", "temperature=-1"]) == 2
    assert "temperature" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_distill_refuses_on_the_fly_writers(tmp_path: Path) -> None:
    """synth_writers is a `verify train` option; distillation says so instead of silently ignoring it."""
    from training.config import load_config
    from training.distill import DistillConfig, distill

    config = load_config(None, ["synth_writers=4", "steps_per_epoch=2"])
    with pytest.raises(ConfigError, match="synth_writers"):
        distill(tmp_path / "no-teacher", config, DistillConfig(), tmp_path / "data", tmp_path / "out", progress=False)
