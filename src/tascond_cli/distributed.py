"""Several processes through ``torchrun``: who this process is, and sharing results between ranks.

``torchrun --nproc-per-node N -m tascond_cli COMMAND ...`` starts N copies of the command with the
standard environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`init` joins them into one process group (``gloo`` on CPU, ``nccl`` on CUDA, each rank on GPU
``LOCAL_RANK``). Without ``torchrun`` (``WORLD_SIZE`` unset or 1) everything here is a no-op and the
single process is rank 0 of 1.

Results are shared as tensors, never pickled: :func:`sum_tensor` and :func:`sum_arrays` all-reduce sums
(each rank fills its own rows of a zero tensor, or adds its partial sums), and :func:`gather_arrays` copies
the bytes of each rank's arrays to every rank (an all-gather of padded byte tensors), exactly.

Engine code shards its work by :func:`joined`, the process group that is actually up, so that a process
started with ``torchrun``'s variables but no group (a script that never called :func:`init`) does all the
work itself instead of a silent share of it.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tascond_cli.errors import DeviceError

__all__ = [
    "World",
    "barrier",
    "finish",
    "gather_arrays",
    "init",
    "joined",
    "rank_device",
    "sum_arrays",
    "sum_tensor",
    "world",
]


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

    def share(self, sizes: Sequence[int]) -> list[int]:
        """The items this rank takes when items of these ``sizes`` (frames, say) are dealt so that the ranks'
        totals stay even: largest first (lowest index among equals), each to the rank with the smallest
        total so far (lowest rank among equals). Increasing indices; the same deal on every rank."""
        if self.size == 1:
            return list(range(len(sizes)))
        order = sorted(range(len(sizes)), key=lambda i: (-int(sizes[i]), i))
        totals = [(0, r) for r in range(self.size)]  # a heap of (total, rank)
        mine = []
        for i in order:
            total, r = heapq.heappop(totals)
            if r == self.rank:
                mine.append(i)
            heapq.heappush(totals, (total + int(sizes[i]), r))
        return sorted(mine)


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


def joined() -> World:
    """This process's place in the process group that is up: rank 0 of 1 when none is (what engine code
    shards its work by)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return world()
    return World()


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


def sum_arrays(*arrays):
    """Each array (or number) summed over ranks in float64, all by one all-reduce; the inputs themselves,
    untouched, with one process (so one process computes exactly what it did alone)."""
    if joined().size == 1:
        return arrays
    flat = [np.asarray(a, dtype=np.float64) for a in arrays]
    total = sum_tensor(torch.from_numpy(np.concatenate([a.reshape(-1) for a in flat]))).numpy()
    out, at = [], 0
    for a in flat:
        out.append(total[at : at + a.size].reshape(a.shape))
        at += a.size
    return tuple(o if o.ndim else float(o) for o in out)


_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
           "uint64")  # fmt: skip
"""The dtypes :func:`gather_arrays` carries (by their index in this tuple)."""


def _table(mine: Mapping[int, np.ndarray], n: int, rank: int) -> np.ndarray:
    """(n, 6) int64: per item, (owner + 1, dtype index, ndim, rows, columns, 1) where this rank owns it."""
    table = np.zeros((n, 6), dtype=np.int64)
    for i, arr in mine.items():
        if not 0 <= i < n:
            raise ValueError(f"item {i} is not in 0..{n - 1}")
        if arr.ndim > 2 or arr.dtype.name not in _DTYPES:
            raise ValueError(f"item {i}: can gather 1-d or 2-d arrays of {', '.join(_DTYPES)}, got {arr.dtype} "
                             f"{arr.shape}")  # fmt: skip
        shape = (*arr.shape, 1, 1)[:2]
        table[i] = (rank + 1, _DTYPES.index(arr.dtype.name), arr.ndim, shape[0], shape[1], 1)
    return table


def _all_gather_bytes(local: np.ndarray, longest: int) -> list[np.ndarray]:
    """Every rank's uint8 buffer (each at most ``longest`` bytes), padded to ``longest``, in rank order."""
    size = world().size
    device = torch.device("cpu")
    if torch.distributed.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    padded = torch.zeros(longest, dtype=torch.uint8, device=device)
    padded[: local.size] = torch.from_numpy(local).to(device)
    out = [torch.empty_like(padded) for _ in range(size)]
    torch.distributed.all_gather(out, padded)
    return [o.cpu().numpy() for o in out]


def gather_arrays(mine: Mapping[int, np.ndarray], n: int) -> list[np.ndarray]:
    """Items ``0 .. n - 1`` on every rank, item ``i`` being the 1-d or 2-d array that exactly one rank holds
    in ``mine`` (its key ``i``); exact copies, in item order.

    Two collectives whatever the items: a (n, 6) table of owners, dtypes and shapes summed over ranks, then
    each rank's items as one byte buffer, in item order, padded to the longest and all-gathered.
    """
    mine = {int(i): np.ascontiguousarray(a) for i, a in mine.items()}
    w = joined()
    table = _table(mine, n, w.rank)
    if w.size > 1:
        table = sum_tensor(torch.from_numpy(table)).numpy()
    missing = np.flatnonzero(table[:, 5] != 1)
    if missing.size:
        raise ValueError(f"item {int(missing[0])} is held by {int(table[missing[0], 5])} ranks, not one")
    if w.size == 1:
        return [mine[i] for i in range(n)]
    dtypes = [np.dtype(_DTYPES[k]) for k in table[:, 1]]
    nbytes = np.array([r * c * d.itemsize for (r, c), d in zip(table[:, 3:5].tolist(), dtypes)], dtype=np.int64)
    owner = table[:, 0] - 1
    longest = int(max(nbytes[owner == r].sum() for r in range(w.size)))
    local = [mine[i].reshape(-1).view(np.uint8) for i in range(n) if owner[i] == w.rank]
    buffers = _all_gather_bytes(np.concatenate(local) if local else np.zeros(0, np.uint8), longest) if longest else []
    out: list[np.ndarray] = [np.zeros(0)] * n
    at = np.zeros(w.size, dtype=np.int64)
    for i in range(n):
        r, (rows, cols), ndim = int(owner[i]), table[i, 3:5].tolist(), int(table[i, 2])
        raw = buffers[r][at[r] : at[r] + nbytes[i]] if longest else np.zeros(0, np.uint8)
        at[r] += nbytes[i]
        out[i] = raw.view(dtypes[i]).reshape((rows, cols)[:ndim] if ndim else ()).copy()
    return out


def barrier() -> None:
    """Wait for every rank (no-op with one process)."""
    if world().size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def finish() -> None:
    """Leave the process group, if one is up (at the end of a command)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
