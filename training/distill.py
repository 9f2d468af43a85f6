"""`distill(teacher, train_config, distill_config, data, out)`: train a small student from a frozen teacher.

Objectives (weights in `DistillConfig`, any combination):
- Hinton KD on identity logits: the teacher gets a frozen classifier over the training identities (class
  means -> cosine classifier, or logistic regression), the student a learned cosine classifier; see
  `verify.distill_losses.kd_loss` (soft KL at temperature T, scaled by T^2, mixed with the hard CE at T=1);
- embedding regression onto the teacher's normalised embedding (a linear adapter when dims differ);
- relational KD (RKD distance-wise, optionally angle-wise) within each batch;
- the metric loss of the training config (`verify.losses.create_loss`) on the ground-truth labels.

The student sees the teacher's input size and preprocessing, so one crop feeds both networks. Without
augmentation the teacher's embeddings are computed once and looked up by sample index. Data loading, the
split, P x K batches (with skilled forgeries as their own classes when `train_forgeries`), optimizer and
schedule, validation, metrics.csv and curves.png are those of `verify train` (training.runs / trainer / loop /
evaluation / plots); the run folder holds the same files, minus state/ (no resume).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.augment import create_augment
from training.config import TrainConfig
from training.data import data_roots
from training.distributed import DistInfo, resolve_device
from training.loop import create_optimizer, create_scheduler
from training.plots import plot_curves
from training.runs import RunData, prepare_data, write_metrics_csv
from training.trainer import _batches
from training.validation import embed_crop_set, validate
from verify.distill_losses import CosineClassifier, EmbeddingDistillLoss, RKDLoss, fit_teacher_classifier, kd_loss
from verify.errors import ConfigError
from verify.models.card import load_network, new_card, read_card, save_model
from verify.models.runtime import crops_to_tensor

TERMS = ("kd", "embedding", "rkd", "metric")


@dataclass(frozen=True)
class DistillConfig:
    """Distillation objectives; every other setting (student backbone, epochs, lr, P x K, ...) is a TrainConfig."""

    kd_weight: float = 1.0  # weight of the Hinton KD term (0 = off)
    temperature: float = 4.0  # KD softmax temperature T
    kd_alpha: float = 0.9  # share of the soft (T^2-scaled KL) term; the hard-label CE gets 1 - alpha
    teacher_classifier: str = "cosine"  # "cosine" (class means) or "linear" (logistic regression)
    classifier_scale: float = 16.0  # logit scale of the cosine classifiers (teacher and student)
    embedding_weight: float = 1.0  # weight of regressing the teacher's embedding (0 = off)
    embedding_metric: str = "cosine"  # "cosine" or "l2"
    rkd_distance_weight: float = 1.0  # RKD distance-wise weight (0 = off)
    rkd_angle_weight: float = 0.0  # RKD angle-wise weight (0 = off; O(B^3) memory)
    metric_weight: float = 0.0  # weight of the training config's metric loss on ground truth (0 = off)
    cache_teacher: bool = True  # without augmentation, embed the training crops with the teacher once
    compatible_min_cosine: float = 0.9  # mean student-teacher cosine on val crops needed for compatible_with

    def __post_init__(self) -> None:
        weights = [self.kd_weight, self.embedding_weight, self.rkd_distance_weight, self.rkd_angle_weight]
        if min([*weights, self.metric_weight]) < 0:
            raise ConfigError("distillation weights must be >= 0")
        if sum(weights) + self.metric_weight == 0:
            raise ConfigError("every distillation objective has weight 0; set kd_weight, embedding_weight, ...")
        if self.temperature <= 0 or not 0 <= self.kd_alpha <= 1 or self.classifier_scale <= 0:
            raise ConfigError("need temperature > 0, 0 <= kd_alpha <= 1 and classifier_scale > 0")
        if self.teacher_classifier not in ("cosine", "linear"):
            raise ConfigError(f"teacher_classifier must be cosine or linear, got {self.teacher_classifier!r}")
        if self.embedding_metric not in ("cosine", "l2"):
            raise ConfigError(f"embedding_metric must be cosine or l2, got {self.embedding_metric!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def split_config_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a flat mapping of config keys into (TrainConfig values, DistillConfig values)."""
    names = {f.name for f in dataclasses.fields(DistillConfig)}
    return {k: v for k, v in values.items() if k not in names}, {k: v for k, v in values.items() if k in names}


def create_distill_config(values: dict[str, Any]) -> DistillConfig:
    """A validated `DistillConfig` from YAML-parsed values (ints accepted for floats, nothing lossy)."""
    from training.config import cast_value

    out = {
        f.name: cast_value(f.name, str(f.type), values[f.name])
        for f in dataclasses.fields(DistillConfig)
        if f.name in values
    }
    return DistillConfig(**out)


def teacher_defaults(teacher: str | Path, student: str) -> dict[str, Any]:
    """TrainConfig values implied by the teacher: modality, input size and channels, dim, preprocessing."""
    card = read_card(teacher)
    inp = card["input"]
    return {
        "modality": card["modality"],
        "height": int(inp["height"]),
        "width": int(inp["width"]),
        "channels": int(inp["channels"]),
        "dim": int(card["architecture"]["dim"]),
        "preprocessing": str((card.get("preprocessing") or {}).get("kind", "resize")),
        "backbone": student,
        "name": f"{card['modality']}-{student}-distilled",
    }


@dataclass
class _Parts:
    """Everything one step needs."""

    student: nn.Module
    teacher: nn.Module
    student_head: nn.Module | None
    teacher_head: nn.Module | None
    embedding: EmbeddingDistillLoss | None
    rkd: RKDLoss | None
    metric: nn.Module | None
    miner: Any
    cache: torch.Tensor | None  # teacher embeddings of the training crops [N, D_t], or None


def _student_card(teacher_card: Mapping[str, Any], config: TrainConfig) -> dict[str, Any]:
    arch = {"kind": "timm", "backbone": config.backbone, "dim": config.dim, "in_chans": config.channels}
    return new_card(config.name, config.modality, arch, teacher_card["input"], teacher_card["preprocessing"])


def _build_parts(
    teacher: nn.Module, t_emb: np.ndarray | None, data: RunData, config: TrainConfig, dc: DistillConfig
) -> _Parts:
    from verify.losses import create_loss
    from verify.mining import create_miner
    from verify.models.network import SiameseEmbedder

    torch.manual_seed(config.seed)
    student = SiameseEmbedder(config.backbone, config.dim, config.channels, config.pretrained, config.pretrained_file)
    classes = int(data.train.labels.max()) + 1
    t_dim = int(t_emb.shape[1]) if t_emb is not None else config.dim
    s_head = t_head = None
    if dc.kd_weight > 0:
        if t_emb is None:
            raise ConfigError("kd_weight > 0 needs the teacher's embeddings of the training crops")
        t_head = fit_teacher_classifier(t_emb, data.train.labels, dc.teacher_classifier, dc.classifier_scale)
        s_head = CosineClassifier(config.dim, classes, dc.classifier_scale)
    emb = EmbeddingDistillLoss(config.dim, t_dim, dc.embedding_metric) if dc.embedding_weight > 0 else None
    rkd = RKDLoss(dc.rkd_distance_weight, dc.rkd_angle_weight) if dc.rkd_distance_weight + dc.rkd_angle_weight else None
    metric = miner = None
    if dc.metric_weight > 0:
        metric = create_loss(config.loss, **config.loss_params)
        miner = create_miner(config.miner, **config.miner_params)
    cache = torch.from_numpy(t_emb) if t_emb is not None and dc.cache_teacher and not config.augment else None
    return _Parts(student, teacher, s_head, t_head, emb, rkd, metric, miner, cache)


def _step(parts: _Parts, dc: DistillConfig, x: torch.Tensor, labels: torch.Tensor, idx: list[int]) -> dict:
    """The weighted loss of one batch and its terms (floats)."""
    if parts.cache is not None:
        t = parts.cache[idx].to(x.device)
    else:
        with torch.no_grad():
            t = parts.teacher(x).float()
    s = parts.student(x)
    terms: dict[str, torch.Tensor] = {}
    if parts.student_head is not None and parts.teacher_head is not None:
        terms["kd"] = dc.kd_weight * kd_loss(
            parts.student_head(s), parts.teacher_head(t), labels, dc.temperature, dc.kd_alpha
        )
    if parts.embedding is not None:
        terms["embedding"] = dc.embedding_weight * parts.embedding(s, t)
    if parts.rkd is not None:
        terms["rkd"] = parts.rkd(s, t)
    if parts.metric is not None:
        mined = parts.miner(s, labels) if parts.miner is not None else None
        terms["metric"] = dc.metric_weight * parts.metric(s, labels, mined)
    terms["loss"] = sum(terms.values())  # type: ignore[assignment]
    return terms


def _train_epoch(parts, dc, config, data, card, batches, optimizer, scheduler, device, epoch, progress) -> dict:
    parts.student.train()
    augment = create_augment(config.modality, np.random.default_rng([config.seed, epoch])) if config.augment else None
    sums: dict[str, list[float]] = {}
    bar = tqdm(batches, desc=f"distill {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
    for idx in bar:
        crops = [data.train.crops[i] for i in idx]
        crops = [augment(c) for c in crops] if augment is not None else crops
        x = crops_to_tensor(crops, card).to(device)
        labels = torch.as_tensor(data.train.labels[idx], device=device)
        terms = _step(parts, dc, x, labels, idx)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], config.grad_clip)
        optimizer.step()
        scheduler.step()
        for key, value in terms.items():
            sums.setdefault(key, []).append(float(value.detach()))
        bar.set_postfix(loss=f"{sums['loss'][-1]:.4f}")
    row = {key: float(np.mean(sums.get(key, [np.nan]))) if key in sums else None for key in ("loss", *TERMS)}
    return {**row, "lr": float(optimizer.param_groups[0]["lr"]), "steps": len(batches)}


def _teacher_section(teacher: Path, card: dict[str, Any]) -> dict[str, Any]:
    return {"name": card.get("name"), "fingerprint": card.get("fingerprint"), "path": str(teacher)}


def distill(
    teacher: str | Path,
    config: TrainConfig,
    dc: DistillConfig,
    folders: str | Path | Sequence[str | Path],
    out: str | Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Distill the model directory `teacher` into a `config.backbone` student on `folders` (one dataset folder,
    or several pooled with their identities kept apart); returns the run summary.

    Writes into `out`: config.json, split.json, metrics.csv, curves.png, summary.json, and the best student
    (by validation EER) as model.safetensors + model.json, whose card names the teacher (name, fingerprint),
    the distillation config, the mean student-teacher cosine on the validation crops, and
    ``compatible_with`` = teacher fingerprint when the student regresses the teacher's embedding at the same dim
    and that cosine reaches ``compatible_min_cosine`` (then its embeddings may share the teacher's gallery).
    """
    if config.synth_writers:
        raise ConfigError(
            "verify distill does not take synth_writers (its teacher targets are computed for a fixed crop set); "
            "write the writers to disk with `python -m training.synth_sets` and distil on that folder"
        )
    teacher, out, device = Path(teacher), Path(out), resolve_device(config.device)
    t_net, t_card = load_network(teacher)
    t_net = t_net.to(device).eval().requires_grad_(False)
    out.mkdir(parents=True, exist_ok=True)
    card = _student_card(t_card, config)
    (out / "config.json").write_text(json.dumps({**config.to_dict(), **dc.to_dict()}, indent=2) + "\n")
    data = prepare_data(config, data_roots(folders), out, card, None, False, True, progress)
    need_cache = dc.kd_weight > 0 or (dc.cache_teacher and not config.augment)
    t_emb = embed_crop_set(t_net, data.train.crops, card, device) if need_cache else None
    parts = _build_parts(t_net, t_emb, data, config, dc)
    parts.student.to(device)
    if parts.teacher_head is not None:
        parts.teacher_head.to(device)
    params = [p for m in (parts.student, parts.student_head, parts.embedding, parts.metric) if m is not None
              for p in m.to(device).parameters()]  # fmt: skip
    batches, steps = _batches(config, data, DistInfo(0, 1, 0, device))  # the P x K batches of `verify train`
    optimizer = create_optimizer(config, params)
    scheduler = create_scheduler(config, optimizer, steps)
    val_args = (card, device, config.max_impostor_pairs, config.seed, config.val_metric)
    teacher_val = validate(t_net, data.val, *val_args)
    t_val = embed_crop_set(t_net, data.val.crops, card, device) if config.dim == t_card["architecture"]["dim"] else None
    state: dict[str, Any] = {"history": [], "best": None, "best_epoch": None, "val": None, "bad": 0}
    start = time.perf_counter()
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        row = _train_epoch(parts, dc, config, data, card, batches(epoch), optimizer, scheduler, device, epoch, progress)
        val = validate(parts.student, data.val, *val_args)
        if t_val is not None and len(t_val):
            s_val = embed_crop_set(parts.student, data.val.crops, card, device)
            val["teacher_cosine"] = float(np.mean(np.sum(s_val * t_val, axis=1)))
        state["history"].append({"epoch": epoch + 1, **row, "epoch_time_s": round(time.perf_counter() - t0, 3),
                                 **{k: v for k, v in val.items() if not k.endswith("_pairs")}})  # fmt: skip
        score = val.get("val_eer")
        if state["best"] is None or (score is not None and score < state["best"] - 1e-6):
            state.update(best=score, best_epoch=epoch + 1, val=val, bad=0)
            metrics = {"best_epoch": epoch + 1, "val": val, "teacher_val": teacher_val}
            save_model(out, parts.student, _final_card(card, t_card, teacher, config, dc, data, metrics, parts))
        else:
            state["bad"] += 1
        write_metrics_csv(state["history"], out / "metrics.csv")
        plot_curves(state["history"], out / "curves.png", title=f"{config.name} <- {t_card.get('name')}")
        if config.early_stopping and state["bad"] >= config.early_stopping:
            break
    return _summary(state, out, teacher_val, parts, time.perf_counter() - start, teacher, t_card)


def _final_card(card, t_card, teacher, config, dc, data, metrics, parts) -> dict[str, Any]:
    card = copy.deepcopy(card)
    card["training"] = {"config": config.to_dict(), "init": None, "task": "distillation"}
    card["distillation"] = {
        "teacher": _teacher_section(teacher, t_card),
        "config": dc.to_dict(),
        "teacher_cached": parts.cache is not None,
    }
    card["data"] = data.card_section()
    card["metrics"] = metrics
    cosine = metrics["val"].get("teacher_cosine")
    card["distillation"]["teacher_cosine_val"] = cosine
    same_space = dc.embedding_weight > 0 and parts.embedding is not None and parts.embedding.adapter is None
    if same_space and cosine is not None and cosine >= dc.compatible_min_cosine:
        card["compatible_with"] = t_card.get("fingerprint")
    return card


def _summary(state, out: Path, teacher_val, parts: _Parts, seconds: float, teacher: Path, t_card) -> dict[str, Any]:
    history = state["history"]
    summary = {
        "run": str(out),
        "epochs": len(history),
        "best_epoch": state["best_epoch"],
        "best_val_eer": state["best"],
        "val": state["val"],
        "teacher_val": teacher_val,
        "teacher": _teacher_section(teacher, t_card),
        "teacher_cached": parts.cache is not None,
        "seconds_per_epoch": float(np.mean([r["epoch_time_s"] for r in history] or [0.0])),
        "seconds": round(seconds, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


__all__ = ["DistillConfig", "create_distill_config", "distill", "split_config_values", "teacher_defaults"]
