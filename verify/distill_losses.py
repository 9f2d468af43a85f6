"""Knowledge-distillation losses: Hinton KD on identity logits, embedding regression, relational (RKD).

- `kd_loss`: Hinton et al. 2015. ``alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)``;
  the T^2 factor keeps the soft-target gradients on the scale of the hard-label ones as T changes.
- `EmbeddingDistillLoss`: the student regresses the teacher's L2-normalised embedding, by cosine
  (``1 - cos``) or squared L2 distance, through a linear adapter when the two dims differ.
- `RKDLoss`: Park et al. 2019, "Relational Knowledge Distillation". Distance-wise: the batch's pairwise
  distances, each divided by its mean, compared with smooth L1; angle-wise: the cosines of the angles
  formed by every triplet of the batch, compared with smooth L1. Both are invariant to a global scale.
- `CosineClassifier` and `fit_teacher_classifier`: identity logits for KD; the teacher's head is fitted once on
  its frozen embeddings (class means -> cosine classifier, or multinomial logistic regression -> linear).

pytorch-metric-learning has none of these, so they are written here and tested against hand computations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from verify.errors import ConfigError

__all__ = [
    "CosineClassifier",
    "EmbeddingDistillLoss",
    "RKDLoss",
    "fit_teacher_classifier",
    "kd_loss",
    "rkd_angle",
    "rkd_distance",
]


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Hinton distillation loss, batch mean.

    Args:
        student_logits: [B, C].
        teacher_logits: [B, C] (no gradient flows into them).
        labels: [B] class indices for the hard-label CE at T=1; None (or alpha=1) leaves it out.
        temperature: softmax temperature T > 0 of the soft targets.
        alpha: weight of the soft term; the hard CE gets 1 - alpha.
    """
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"need temperature > 0 and 0 <= alpha <= 1, got T={temperature}, alpha={alpha}")
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    soft = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature**2
    if labels is None or alpha == 1.0:
        return soft
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


class EmbeddingDistillLoss(nn.Module):
    """Student embedding -> (adapter) -> L2-normalised, regressed onto the teacher's normalised embedding.

    Args:
        student_dim: D_s.
        teacher_dim: D_t; a bias-free Linear(D_s, D_t) adapter is learned when it differs from D_s.
        metric: "cosine" (mean of 1 - cos) or "l2" (mean squared distance, = 2 - 2 cos on unit vectors).
    """

    def __init__(self, student_dim: int, teacher_dim: int, metric: str = "cosine") -> None:
        super().__init__()
        if metric not in ("cosine", "l2"):
            raise ConfigError(f"embedding distillation metric must be 'cosine' or 'l2', got {metric!r}")
        self.metric = metric
        self.adapter = nn.Linear(student_dim, teacher_dim, bias=False) if student_dim != teacher_dim else None

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """student [B, D_s], teacher [B, D_t] -> scalar."""
        s = self.adapter(student) if self.adapter is not None else student
        s, t = F.normalize(s, dim=1), F.normalize(teacher.detach(), dim=1)
        if self.metric == "cosine":
            return (1.0 - (s * t).sum(dim=1)).mean()
        return ((s - t) ** 2).sum(dim=1).mean()


def _normalised_distances(x: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances [B, B] divided by the mean of the off-diagonal ones."""
    d = torch.cdist(x, x)
    off = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    return d / d[off].mean().clamp_min(1e-12)


def rkd_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Distance-wise RKD: smooth L1 between the mean-normalised distance matrices. [B, D_s], [B, D_t] -> scalar."""
    if len(student) < 2:
        return student.sum() * 0.0
    with torch.no_grad():
        t = _normalised_distances(teacher.float())
    s = _normalised_distances(student)
    off = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
    return F.smooth_l1_loss(s[off], t[off])


def _angles(x: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j of every (i, j, k): <e_ij, e_kj> with unit e_ij = (x_i - x_j)/|.|. [B, B, B]"""
    e = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), p=2, dim=2)  # e[j, i] = unit(x_i - x_j)
    return torch.bmm(e, e.transpose(1, 2))


def rkd_angle(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Angle-wise RKD: smooth L1 between the triplet angle cosines. [B, D_s], [B, D_t] -> scalar."""
    if len(student) < 3:
        return student.sum() * 0.0
    with torch.no_grad():
        t = _angles(teacher.float())
    return F.smooth_l1_loss(_angles(student), t)


class RKDLoss(nn.Module):
    """``distance_weight * rkd_distance + angle_weight * rkd_angle`` (Park et al. use 25 and 50 on raw features;
    on L2-normalised embeddings weights near 1 and 2 give losses of the size of a metric loss)."""

    def __init__(self, distance_weight: float = 1.0, angle_weight: float = 0.0) -> None:
        super().__init__()
        if distance_weight < 0 or angle_weight < 0:
            raise ConfigError(f"RKD weights must be >= 0, got {distance_weight}, {angle_weight}")
        self.distance_weight, self.angle_weight = distance_weight, angle_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """student [B, D_s], teacher [B, D_t] (dims may differ) -> scalar."""
        loss = student.sum() * 0.0
        if self.distance_weight > 0:
            loss = loss + self.distance_weight * rkd_distance(student, teacher)
        if self.angle_weight > 0:
            loss = loss + self.angle_weight * rkd_angle(student, teacher)
        return loss


class CosineClassifier(nn.Module):
    """logits = scale * cos(embedding, W_c) over C classes. [B, D] -> [B, C].

    Args:
        dim: D.
        classes: C.
        scale: the logit scale (inverse temperature) s; cosines in [-1, 1] become logits in [-s, s].
        weight: optional initial class vectors [C, D] (e.g. class means); random otherwise.
    """

    def __init__(self, dim: int, classes: int, scale: float = 16.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        init = torch.randn(classes, dim) * 0.01 if weight is None else weight.detach().clone().float()
        if init.shape != (classes, dim):
            raise ConfigError(f"classifier weight must be [{classes}, {dim}], got {list(init.shape)}")
        self.weight = nn.Parameter(init)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).T


def fit_teacher_classifier(
    embeddings: np.ndarray, labels: np.ndarray, kind: str = "cosine", scale: float = 16.0, seed: int = 0
) -> nn.Module:
    """A frozen identity classifier over the teacher's embeddings, for KD logits.

    Args:
        embeddings: teacher embeddings [N, D] of the training crops.
        labels: [N] class indices 0..C-1 (every class present).
        kind: "cosine" (normalised class means, logits scale * cos) or "linear" (scikit-learn multinomial
            logistic regression; its decision function as an nn.Linear).
        scale: logit scale of the cosine classifier.
        seed: random state of the logistic regression.

    Returns:
        A module [B, D] -> [B, C] with requires_grad off.
    """
    emb = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels, np.int64)
    classes = int(labels.max()) + 1
    if kind == "cosine":
        means = np.stack([emb[labels == c].mean(axis=0) if (labels == c).any() else emb[0] * 0 for c in range(classes)])
        head: nn.Module = CosineClassifier(emb.shape[1], classes, scale, torch.from_numpy(means))
    elif kind == "linear":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=10.0, max_iter=500, random_state=seed).fit(emb, labels)
        head = nn.Linear(emb.shape[1], classes)
        coef, bias = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: logits (0, z) give the same softmax
            coef, bias = np.concatenate([np.zeros_like(coef), coef]), np.concatenate([[0.0], bias])
        full_coef = np.zeros((classes, emb.shape[1]), np.float32)
        full_bias = np.full(classes, -30.0, np.float32)  # a class with no sample (image skipped): never predicted
        full_coef[clf.classes_], full_bias[clf.classes_] = coef, bias
        coef, bias = full_coef, full_bias
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(coef.astype(np.float32)))
            head.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))
    else:
        raise ConfigError(f"teacher classifier must be 'cosine' or 'linear', got {kind!r}")
    return head.requires_grad_(False).eval()
