"""One training epoch over P x K batches, and the optimizer / LR schedule factories.

AMP and channels-last are used only on CUDA; on CPU the loop is plain float32 and, with a fixed seed,
deterministic.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from training.config import TrainConfig
from verify.mining import active_triplet_fraction
from verify.models.runtime import crops_to_tensor

log = logging.getLogger(__name__)


def create_optimizer(config: TrainConfig, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW, or SGD with (Nesterov) momentum, over `params` (network plus learned loss parameters)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the peak LR at optimizer step `step`: linear warm-up, then cosine / step / constant."""
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if config.scheduler == "cosine":
        total = max(1.0, config.epochs * steps_per_epoch - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / total)))
    if config.scheduler == "step":
        return config.gamma ** (step // (config.step_epochs * steps_per_epoch))
    return 1.0


def create_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR following `lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s, steps_per_epoch))


@dataclass
class EpochContext:
    """What one epoch needs: the model pieces, the data and the device."""

    config: TrainConfig
    net: nn.Module  # possibly DDP-wrapped
    loss_fn: nn.Module
    miner: Any  # a pml-style miner or None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    batches: Callable[[int], list[list[int]]]  # epoch -> this rank's batches of crop indices
    crops: Sequence[np.ndarray]
    labels: np.ndarray
    card: dict[str, Any]
    augment: Callable[[np.ndarray], np.ndarray] | None
    device: torch.device
    world_size: int = 1
    progress: bool = False
    simclr_loss: nn.Module | None = None  # NT-Xent over two augmented views, weighted by config.simclr_weight


def _step(ctx: EpochContext, index: list[int]) -> tuple[float, float, dict[str, Any]]:
    crops = [ctx.crops[i] for i in index]
    simclr = ctx.simclr_loss is not None and ctx.augment is not None and ctx.config.simclr_weight > 0
    if ctx.augment is not None:
        views = [ctx.augment(c) for c in crops]
        crops = views + [ctx.augment(c) for c in crops] if simclr else views
    x = crops_to_tensor(crops, ctx.card).to(ctx.device, non_blocking=True)
    cuda = ctx.device.type == "cuda"
    if cuda and ctx.config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.as_tensor(ctx.labels[index], device=ctx.device)
    amp = torch.autocast("cuda", dtype=torch.float16) if cuda and ctx.config.amp else contextlib.nullcontext()
    with amp:
        emb = ctx.net(x)
    emb = emb.float()
    if simclr:  # SimCLR: the two views of one image are the only positives (Winkens et al. 2020)
        view_ids = torch.arange(len(index), device=ctx.device).repeat(2)
        contrastive = ctx.simclr_loss(emb, view_ids)  # type: ignore[misc]
        emb = emb[: len(index)]
    mined = ctx.miner(emb, labels) if ctx.miner is not None else None
    loss = ctx.loss_fn(emb, labels, mined)
    if simclr:
        loss = loss + ctx.config.simclr_weight * contrastive
    ctx.optimizer.zero_grad(set_to_none=True)
    ctx.scaler.scale(loss).backward()
    _sync_loss_grads(ctx)
    ctx.scaler.unscale_(ctx.optimizer)
    if ctx.config.grad_clip > 0:
        nn.utils.clip_grad_norm_(ctx.net.parameters(), ctx.config.grad_clip)
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    ctx.scheduler.step()
    margin = float(ctx.config.loss_params.get("margin", 0.2)) if ctx.config.loss == "triplet" else 0.2
    active = active_triplet_fraction(emb.detach(), labels, margin=margin)
    return float(loss.detach()), active, dict(getattr(ctx.miner, "last_stats", {}) or {})


def _sync_loss_grads(ctx: EpochContext) -> None:
    """Average the gradients of the loss's own parameters (not inside DDP) over ranks."""
    if ctx.world_size <= 1:
        return
    for p in ctx.loss_fn.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ctx.world_size


def train_one_epoch(ctx: EpochContext, epoch: int) -> dict[str, Any]:
    """Train one epoch; returns mean loss, mean active-triplet fraction, mining mode and fallback counts."""
    ctx.net.train()
    if hasattr(ctx.miner, "set_epoch"):
        ctx.miner.set_epoch(epoch)
    losses, actives, empty, fallback = [], [], 0, 0
    batches = ctx.batches(epoch)
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{ctx.config.epochs}", disable=not ctx.progress, leave=False)
    for index in bar:
        loss, active, stats = _step(ctx, index)
        losses.append(loss)
        actives.append(active)
        empty += int(stats.get("triplets", 1) == 0)
        fallback += int(stats.get("fallback", 0))
        bar.set_postfix(loss=f"{loss:.4f}", active=f"{active:.2f}")
    if empty:
        log.warning("epoch %d: %d of %d batches had no triplet to learn from", epoch + 1, empty, len(batches))
    return {
        "loss": float(np.mean(losses)) if losses else float("nan"),
        "active_fraction": float(np.mean(actives)) if actives else float("nan"),
        "mining_mode": getattr(ctx.miner, "mode", ctx.config.miner),
        "hard_fraction": float(getattr(ctx.miner, "hard_fraction", 0.0)),
        "empty_batches": empty,
        "fallback_pairs": fallback,
        "lr": float(ctx.optimizer.param_groups[0]["lr"]),
        "steps": len(batches),
    }
