"""Several processes through ``torchrun``: who this process is, and sharing results between ranks.

``torchrun --nproc-per-node N -m tascond_cli COMMAND ...`` starts N copies of the command with the
standard environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`init` joins them into one process group (``gloo`` on CPU, ``nccl`` on CUDA, each rank on GPU
``LOCAL_RANK``). Without ``torchrun`` (``WORLD_SIZE`` unset or 1) everything here is a no-op and the
single process is rank 0 of 1.

Results are shared as tensors (:func:`sum_tensor`): each rank fills its own rows of a zero tensor and an
all-reduce sums them. Nothing is pickled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from tascond_cli.errors import DeviceError

__all__ = ["World", "barrier", "finish", "init", "rank_device", "sum_tensor", "world"]


@dataclass(frozen=True)
class World:
    """This process's place: ``rank`` of ``size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that prints and writes."""
        return self.rank == 0

    def mine(self, n: int) -> range:
        """The items ``0 .. n - 1`` this rank takes: every ``size``-th, from ``rank``."""
        return range(self.rank, n, self.size)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DeviceError(f"environment variable {name} must be an integer (torchrun sets it), got {value!r}") from None


def world() -> World:
    """The process's rank and world size: from the process group when one is up, else ``torchrun``'s env."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return World(torch.distributed.get_rank(), torch.distributed.get_world_size(), _env_int("LOCAL_RANK", 0))
    return World(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))


def init(device: torch.device | None = None) -> World:
    """Join the ``torchrun`` process group when there is more than one process (once); returns :func:`world`.

    ``device``: what the ranks compute on; CUDA selects ``nccl`` and this rank's GPU (``LOCAL_RANK``).
    """
    w = world()
    if w.size > 1 and not torch.distributed.is_initialized():
        if not torch.distributed.is_available():
            raise DeviceError("this torch build has no torch.distributed; run without torchrun")
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(w.local_rank)
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return world()


def rank_device(device: torch.device) -> torch.device:
    """A CUDA device without an index becomes this rank's GPU (``LOCAL_RANK``) under torchrun."""
    w = world()
    if device.type == "cuda" and device.index is None and w.size > 1:
        return torch.device("cuda", w.local_rank)
    return device


def sum_tensor(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over ranks (``t`` itself with one process); reduced on the process group's device."""
    if world().size == 1 or not torch.distributed.is_initialized():
        return t
    backend = torch.distributed.get_backend()
    if backend == "nccl":
        out = t.to(torch.device("cuda", torch.cuda.current_device()))
        torch.distributed.all_reduce(out)
        return out.to(t.device)
    out = t.clone()
    torch.distributed.all_reduce(out)
    return out


def barrier() -> None:
    """Wait for every rank (no-op with one process)."""
    if world().size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def finish() -> None:
    """Leave the process group, if one is up (at the end of a command)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
