"""`train(config, data, out, ...)`: a whole metric-learning run, resumable, optionally fine-tuning a model.

The run folder holds: config.json, run.json (data / init / replay paths), split.json (identity-disjoint
train / val split), metrics.csv, curves.png, summary.json, state/ (resume) and the best model as
model.safetensors + model.json, loadable by `verify.load_model(RUN)`.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training import checkpointing, distributed
from training.augment import create_augment
from training.config import TrainConfig
from training.data import data_roots
from training.loop import EpochContext, create_optimizer, create_scheduler, train_one_epoch
from training.plots import plot_curves
from training.runs import RunData, prepare_data, write_json, write_metrics_csv, write_run_info
from training.synth_stream import stream_crop_set, stream_section, with_stream_writers
from training.validation import validate
from verify.data.sampler import PKBatchSampler
from verify.errors import ConfigError
from verify.losses import create_loss
from verify.mining import create_miner
from verify.models.card import load_network, new_card, save_model

log = logging.getLogger(__name__)


@dataclass
class Model:
    """The network being trained and its card (without weights / fingerprint yet)."""

    net: nn.Module
    card: dict[str, Any]
    init: dict[str, Any] | None = None


def build_model(config: TrainConfig, init: str | Path | None = None) -> Model:
    """A fresh `SiameseEmbedder`, or the network of model directory `init`: its architecture, normalisation and
    preprocessing, at the config's input height and width (`verify train --init` makes them the init model's
    unless set: the backbones pool globally, so a fine-tune may change the input size). The init network's
    backbone, embedding size and channels win over the config's (the command line refuses a config that differs).
    """
    if init is not None:
        net, old = load_network(init)
        if old["modality"] != config.modality:
            raise ConfigError(f"--init model is a {old['modality']} model, but --modality is {config.modality}")
        pre = {**old["preprocessing"], **config.preprocessing_params}
        size = {**old["input"], "height": config.height, "width": config.width}
        card = new_card(config.name, config.modality, old["architecture"], size, pre)
        return Model(net, card, {"path": str(init), "fingerprint": old.get("fingerprint"), "name": old.get("name")})
    from verify.models.network import SiameseEmbedder

    net = SiameseEmbedder(config.backbone, config.dim, config.channels, config.pretrained, config.pretrained_file)
    arch = {"kind": "timm", "backbone": config.backbone, "dim": config.dim, "in_chans": config.channels}
    size = {"height": config.height, "width": config.width, "channels": config.channels}
    pre = {"kind": config.preprocessing, **config.preprocessing_params}
    return Model(net, new_card(config.name, config.modality, arch, size, pre))


def _batches(config: TrainConfig, data: RunData, info: distributed.DistInfo) -> tuple[Any, int]:
    """epoch -> this rank's P x K batches (new identities, replay identities when asked, and with
    `train_forgeries` K skilled forgeries of each writer in the batch, P/2 writers then)."""
    forged = np.zeros(len(data.train), dtype=bool)
    for idx in data.forgery_of.values():
        forged[idx] = True
    writers = config.p // 2 if data.forgery_of else config.p
    if writers < 2:
        raise ConfigError(f"P={config.p} leaves {writers} writer(s) per batch with train_forgeries; use P >= 4")
    new_idx, old_idx = np.flatnonzero(~data.is_replay & ~forged), np.flatnonzero(data.is_replay & ~forged)
    p_old = max(1, round(config.replay_fraction * writers)) if len(old_idx) and config.replay_fraction > 0 else 0
    steps = config.steps_per_epoch or max(1, len(new_idx) // ((writers - p_old) * config.k) // info.world_size)
    labels = data.train.labels
    kw: dict[str, Any] = {"batches": steps, "seed": config.seed, "rank": info.rank, "world_size": info.world_size}
    samplers = [(new_idx, PKBatchSampler(labels[new_idx].tolist(), writers - p_old, config.k, **kw))]
    if p_old:
        samplers.append((old_idx, PKBatchSampler(labels[old_idx].tolist(), p_old, config.k, **kw)))

    def batches(epoch: int) -> list[list[int]]:
        parts = []
        for idx, sampler in samplers:
            sampler.set_epoch(epoch)
            parts.append([idx[b].tolist() for b in sampler])
        out = [[i for part in group for i in part] for group in zip(*parts, strict=True)]
        rng = np.random.default_rng([config.seed, info.rank, epoch, 7])
        for batch in out:
            for w in dict.fromkeys(labels[batch].tolist()):
                forg = data.forgery_of.get(w)
                if forg is not None:
                    batch.extend(rng.choice(forg, size=config.k, replace=len(forg) < config.k).tolist())
        return out

    return batches, steps


def _loss_and_miner(config: TrainConfig, n_classes: int, rank: int) -> tuple[nn.Module, Any]:
    loss_params = dict(config.loss_params)
    if config.loss == "margin" and loss_params.pop("per_class_beta", False):
        loss_params["num_classes"] = n_classes
    miner_params = dict(config.miner_params)
    if config.miner in ("curriculum", "distance_weighted"):
        miner_params.setdefault("seed", config.seed + 1000 * rank)
    if config.miner in ("curriculum", "semihard", "hard", "positive_margin") and config.loss == "triplet":
        miner_params.setdefault("margin", float(config.loss_params.get("margin", 0.2)))
    return create_loss(config.loss, **loss_params), create_miner(config.miner, **miner_params)


def _card_for(model: Model, config: TrainConfig, data: RunData, metrics: dict[str, Any]) -> dict[str, Any]:
    card = copy.deepcopy(model.card)
    card["training"] = {"config": config.to_dict(), "init": model.init, "task": "embedding"}
    card["data"] = data.card_section()
    if (stream := stream_section(config)) is not None:
        card["data"]["synth_stream"] = stream
    card["metrics"] = metrics
    return card


def _validate_all(net: nn.Module, data: RunData, card: dict, config: TrainConfig, device) -> dict[str, Any]:
    args = (card, device, config.max_impostor_pairs, config.seed, config.val_metric)
    out = {"new": validate(net, data.val, *args)}
    if data.old_val is not None:
        out["old"] = validate(net, data.old_val, *args)
    return out


def _row(epoch: int, stats: dict[str, Any], val: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch + 1, **stats, "epoch_time_s": round(seconds, 3)}
    for part, metrics in (val or {}).items():
        prefix = "" if part == "new" else f"{part}_"
        row.update({f"{prefix}{k}": v for k, v in metrics.items() if not k.endswith("_pairs")})
    return row


def train(
    config: TrainConfig,
    data: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    init: str | Path | None = None,
    resume: bool = False,
    replay: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) a training run and return its summary (also written to RUN/summary.json). Several `data`
    folders are pooled, their identities kept apart (`training.data.pool_datasets`)."""
    info = distributed.setup_distributed(config.device)
    try:
        return _train(config, data_roots(data), Path(out), init, resume, replay, progress, info)
    finally:
        distributed.cleanup(info)


def _train(config, data_root, out, init, resume, replay, progress, info) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(config, init)
    if info.is_main:
        write_json(out / "config.json", config.to_dict())
        if not resume:
            write_run_info(out, data_root, init, replay)
    data = prepare_data(config, data_root, out, model.card, replay, resume, info.is_main, progress)
    batches, steps = _batches(config, data, info)
    loss_fn, miner = _loss_and_miner(config, int(data.train.labels.max()) + 1, info.rank)
    net = model.net.to(info.device)
    cuda = info.device.type == "cuda"
    if cuda and config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    loss_fn = loss_fn.to(info.device)
    optimizer = create_optimizer(config, list(net.parameters()) + list(loss_fn.parameters()))
    scheduler = create_scheduler(config, optimizer, steps)
    state: dict[str, Any] = {"epoch": -1, "history": [], "best": None, "best_epoch": None, "bad_epochs": 0}
    if resume:
        state = checkpointing.load_state(out, net, loss_fn, optimizer, scheduler)
        if hasattr(miner, "load_curriculum_state") and state.get("miner"):
            miner.load_curriculum_state(state["miner"])
    elif info.is_main:
        state["untrained"] = _validate_all(net, data, model.card, config, info.device)
    ctx = EpochContext(
        config, distributed.wrap_model(net, info), loss_fn, miner, optimizer, scheduler,
        torch.amp.GradScaler(info.device.type, enabled=cuda and config.amp), batches, data.train.crops,
        data.train.labels, model.card, None, info.device, info.world_size, progress and info.is_main,
        create_loss("ntxent", temperature=config.simclr_temperature) if config.simclr_weight > 0 else None,
    )  # fmt: skip
    start = time.perf_counter()
    for epoch in range(state["epoch"] + 1, config.epochs):
        if config.augment:
            ctx.augment = create_augment(config.modality, np.random.default_rng([config.seed, info.rank, epoch]))
        t0 = time.perf_counter()
        if config.synth_writers:  # this epoch's new synthetic writers join the data's training identities
            epoch_data = with_stream_writers(data, stream_crop_set(config, model.card, epoch, ctx.progress))
            ctx.batches, _ = _batches(config, epoch_data, info)
            ctx.crops, ctx.labels = epoch_data.train.crops, epoch_data.train.labels
        stats = train_one_epoch(ctx, epoch)
        val = _validate_all(net, data, model.card, config, info.device) if info.is_main else None
        score = distributed.broadcast_float(val["new"]["val_eer"] if val else None, info)
        _end_epoch(state, epoch, stats, val, score, time.perf_counter() - t0, miner, config)
        if info.is_main:
            _save_epoch(state, out, model, config, data, net, loss_fn, optimizer, scheduler, miner)
        distributed.barrier(info)
        if config.early_stopping and state["bad_epochs"] >= config.early_stopping:
            log.info("early stopping after epoch %d (no improvement for %d epochs)", epoch + 1, state["bad_epochs"])
            break
    return _summary(state, out, data, config, time.perf_counter() - start, info)


def _end_epoch(state, epoch, stats, val, score, seconds, miner, config) -> None:
    state["epoch"] = epoch
    state["history"].append(_row(epoch, stats, val, seconds))
    if hasattr(miner, "report_validation") and score is not None:
        miner.report_validation(score)
    best = state["best"]
    state["improved"] = best is None or score is None or score < best - 1e-6
    if state["improved"]:
        state["best"], state["best_epoch"], state["bad_epochs"] = score, epoch + 1, 0
        state["best_val"] = val
    else:
        state["bad_epochs"] += 1
    if hasattr(miner, "curriculum_state"):
        state["miner"] = miner.curriculum_state()


def _save_epoch(state, out, model, config, data, net, loss_fn, optimizer, scheduler, miner) -> None:
    if state["improved"]:
        metrics = {"best_epoch": state["best_epoch"], "val": state["best_val"], "untrained": state.get("untrained")}
        save_model(out, net, _card_for(model, config, data, metrics))
    write_metrics_csv(state["history"], out / "metrics.csv")
    untrained = (state.get("untrained") or {}).get("new") or {}
    points = [{"epoch": 0, "val_eer": untrained.get("val_eer")}, *state["history"]]  # epoch 0: untrained
    plot_curves(points, out / "curves.png", title=f"{config.name}: {config.loss} / {config.miner}")
    saved = {k: v for k, v in state.items() if k != "improved"}
    checkpointing.save_state(out, net, loss_fn, optimizer, scheduler, json.loads(json.dumps(saved)))


def _summary(state, out: Path, data: RunData, config: TrainConfig, seconds: float, info) -> dict[str, Any]:
    summary = {
        "run": str(out),
        "epochs": len(state["history"]),
        "best_epoch": state["best_epoch"],
        "best_val_eer": state["best"],
        "val": (state.get("best_val") or {}).get("new"),
        "old_val": (state.get("best_val") or {}).get("old"),
        "untrained_val": (state.get("untrained") or {}).get("new"),
        "train_identities": len(data.split.get("train", [])),
        "val_identities": len(data.split.get("val", [])),
        "train_images": len(data.train),
        "skipped_images": len(data.train.skipped) + len(data.val.skipped),
        "seconds_per_epoch": float(np.mean([r["epoch_time_s"] for r in state["history"]] or [0.0])),
        "seconds": round(seconds, 2),
    }
    if info.is_main:
        write_json(out / "summary.json", summary)
    return summary


__all__ = ["Model", "build_model", "train"]
