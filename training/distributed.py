"""Single-process or DDP: the same code runs under `torchrun --nproc_per_node N verify train ...`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; the process group uses NCCL on GPUs and gloo on CPU. Each rank
draws its own P x K batches; only rank 0 validates, writes files and prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from verify.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """ "auto" -> cuda:<local_rank> when CUDA is available, else cpu; other names as given."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available; use --set device=cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def setup_distributed(device_name: str = "auto") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, device)


def wrap_model(net: nn.Module, info: DistInfo) -> nn.Module:
    """DistributedDataParallel around `net` when running with more than one rank."""
    if info.world_size <= 1:
        return net
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def unwrap(net: nn.Module) -> nn.Module:
    return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net


def broadcast_float(value: float | None, info: DistInfo) -> float | None:
    """Rank 0's value on every rank (None travels as NaN)."""
    if info.world_size <= 1:
        return value
    t = torch.tensor([float("nan") if value is None else float(value)], dtype=torch.float64)
    if info.device.type == "cuda":
        t = t.to(info.device)
    dist.broadcast(t, src=0)
    out = float(t.item())
    return None if out != out else out


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
