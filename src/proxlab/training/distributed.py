"""Data-parallel training through ``torch.distributed``, set up from the variables ``torchrun`` exports.

Run the same script under ``torchrun --nproc_per_node N script.py`` (or across machines with
``--nnodes``/``--rdzv-endpoint``): the Trainer sees ``WORLD_SIZE > 1``, joins the process group
(``nccl`` on GPUs, ``gloo`` on CPUs), wraps the model in ``DistributedDataParallel`` and gives
each rank an equal slice of every global batch. No code change for the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "setup_distributed", "resolve_device"]


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` is ``cuda:<local_rank>`` where a GPU exists, else ``cpu``."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string or torch.device, got {type(device).__name__}")
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        torch.device(device)
    except RuntimeError:
        hint = " (did you mean 'cuda'?)" if device.lower().startswith("gpu") else ""
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}{hint}") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA device is available")
    if device == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(device)


def setup_distributed(device: torch.device) -> DistributedContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``); otherwise a no-op."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world, local_rank=local_rank)
