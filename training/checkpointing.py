"""Resumable training state without pickle: tensors in a safetensors file, everything else in JSON.

`RUN/state/last.safetensors` holds the model, the loss's own parameters (a learned margin beta), the
optimizer's per-parameter tensors and the torch RNG state; `RUN/state/last.json` holds the epoch, optimizer
param groups and scalar state, the LR scheduler, the sampler/miner state and the metric history, plus the
sha256 of the tensor file, so a half-written pair is detected. Both are written atomically.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from verify.errors import ConfigError
from verify.fsutil import atomic_path, atomic_write_json

STATE_DIR = "state"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt/{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}/{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in meta["scalars"].items():
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_state(
    run_dir: Path,
    net: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    extra: dict[str, Any],
) -> Path:
    """Write the resumable state of a run; `extra` (JSON-able: epoch, history, ...) is returned by `load_state`."""
    directory = Path(run_dir) / STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_meta = _flatten_optimizer(optimizer)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors.update({f"loss/{k}": v.detach().cpu().contiguous() for k, v in loss_fn.state_dict().items()})
    tensors.update(opt_tensors)
    tensors["rng/torch"] = torch.get_rng_state()
    weights = directory / "last.safetensors"
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    meta = {"optimizer": opt_meta, "scheduler": scheduler.state_dict(), "extra": extra, "sha256": _sha256(weights)}
    atomic_write_json(directory / "last.json", meta)
    return directory


def has_state(run_dir: Path) -> bool:
    return (Path(run_dir) / STATE_DIR / "last.json").is_file()


def load_state(
    run_dir: Path, net: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Restore what `save_state` wrote into the given objects; returns its `extra`.

    Raises:
        ConfigError: no state in `run_dir`, or the two files do not belong together.
    """
    directory = Path(run_dir) / STATE_DIR
    if not has_state(run_dir):
        raise ConfigError(f"{run_dir}: nothing to resume (no {STATE_DIR}/last.json); start without --resume")
    meta = json.loads((directory / "last.json").read_text())
    weights = directory / "last.safetensors"
    if not weights.is_file() or _sha256(weights) != meta["sha256"]:
        raise ConfigError(f"{directory}: last.safetensors is missing or does not match last.json; cannot resume")
    tensors = load_file(str(weights))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    loss_state = {k[5:]: v for k, v in tensors.items() if k.startswith("loss/")}
    if loss_state:
        loss_fn.load_state_dict(loss_state)
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    return meta["extra"]
