"""Distributed runs under ``torchrun``: the process group, this rank's device, barriers, the run lock
held by rank 0 for every rank, and the check that every rank ended with identical weights.

A single process (no ``torchrun``) is a world of one: every helper is then a no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch

from .preempt import held_run_dir
from .utils import InputError, log


class Dist(NamedTuple):
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(local_rank: int = -1, no_cuda: bool = False) -> Dist:
    """Initialise torch.distributed when launched by ``torchrun`` (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", local_rank))
    use_cuda = torch.cuda.is_available() and not no_cuda
    if world > 1 or local_rank != -1:
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
        if use_cuda:
            torch.cuda.set_device(max(local_rank, 0))
        device = torch.device("cuda", max(local_rank, 0)) if use_cuda else torch.device("cpu")
        return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(), local_rank, device)
    return Dist(0, 1, -1, torch.device("cuda" if use_cuda else "cpu"))


def end_distributed(ok: bool) -> None:
    """Leave the process group, if this process joined one: after a barrier when the run succeeded, so
    that no rank exits (and tears down its gloo/nccl connections) while another still writes its
    outputs; a rank that exits first with a live group can abort (SIGABRT) in the group's destructor."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    try:
        if ok:
            torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def barrier(dist: Dist) -> None:
    if dist.world_size > 1:
        torch.distributed.barrier()


@contextlib.contextmanager
def locked_run_dir(out: str | Path, dist: Dist) -> Iterator[None]:
    """Hold the run folder ``out`` (:func:`m6abert.preempt.held_run_dir`: its lock) while the block runs.

    Only rank 0 takes it (the other ranks of the run are not refused by it); whether it got it is
    broadcast, so a refused run stops every rank with the same ``InputError`` (none is left waiting).
    """
    with contextlib.ExitStack() as stack:
        error = None
        if dist.is_main:
            try:
                stack.enter_context(held_run_dir(out))
            except InputError as err:
                error = str(err)
        if dist.world_size > 1:
            box = [error]
            torch.distributed.broadcast_object_list(box, src=0)
            error = box[0]
        if error is not None:
            raise InputError(error)
        yield


def weights_in_sync(model: torch.nn.Module, dist: Dist) -> bool | None:
    """Under DDP, whether every rank holds bit-identical weights (None in a single process)."""
    if dist.world_size == 1:
        return None
    import hashlib

    h = hashlib.sha256()
    for p in model.state_dict().values():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    mine = torch.tensor(list(h.digest()), dtype=torch.int64, device=dist.device)
    gathered = [torch.zeros_like(mine) for _ in range(dist.world_size)]
    torch.distributed.all_gather(gathered, mine)
    same = all(torch.equal(g, gathered[0]) for g in gathered)
    log.info("DDP: weights of all %d ranks identical: %s", dist.world_size, same)
    return same
