"""What a training run's steps are made of, apart from the loop: the data order of each epoch (seeded by
``(seed, epoch)``, length-bucketed where it saves padding, strided under DDP), the step schedule as
DNABERT computes it, AdamW with its parameter groups, and the global RNG state a checkpoint keeps.
:mod:`m6abert.train` runs the loop with them.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from .distributed import Dist
from .utils import InputError

if TYPE_CHECKING:
    from .train import TrainArgs

BUCKETING_MIN_SAVING = 0.05  # length-bucketed batches only when they compute at least 5 % fewer tokens


def epoch_order(n: int, seed: int, epoch: int, dist: Dist, lengths: list[int] | None = None,
                batch_size: int = 1) -> list[int]:
    """This rank's example order for ``epoch``: a permutation seeded by (seed, epoch).

    With the examples' ``lengths``, batches are length-bucketed as transformers' ``group_by_length``
    does (the permutation is cut into mega-batches of up to 50 batches of ``batch_size`` x world
    size, each sorted by length, longest batch first) when that saves at least
    ``BUCKETING_MIN_SAVING`` of the tokens the plain permutation's batches compute; otherwise (equal
    lengths, a few short rows) the order is the plain permutation: batches of changing widths
    cost the allocator page faults (bert-base bf16, 80 real windows of which 6 short: 66-69 s
    bucketed, 63.6 s plain) that a saving of a few tokens does not pay for.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    if lengths is not None and len(lengths) != n:
        raise ValueError(f"{len(lengths)} lengths for {n} examples")
    if lengths is not None and len(set(lengths)) > 1:
        from transformers.trainer_pt_utils import get_length_grouped_indices

        g.manual_seed(seed * 1_000_003 + epoch)  # the same permutation, then grouped
        width = batch_size * dist.world_size
        grouped = [int(i) for i in get_length_grouped_indices(lengths, width, generator=g)]
        if padded_tokens(grouped, lengths, width) <= (1 - BUCKETING_MIN_SAVING) * padded_tokens(order, lengths, width):
            order = grouped
    if dist.world_size > 1:  # pad to a multiple of world size, then stride, as DistributedSampler
        order += order[: (-len(order)) % dist.world_size]
        order = order[dist.rank :: dist.world_size]
    return order


def padded_tokens(order: list[int], lengths: list[int], batch_size: int) -> int:
    """Tokens the batches of ``order`` compute, each padded to its longest row.

    >>> padded_tokens([0, 1, 2, 3], [5, 1, 5, 1], 2), padded_tokens([0, 2, 1, 3], [5, 1, 5, 1], 2)
    (20, 12)
    """
    if not order:
        return 0
    rows = np.asarray(lengths)[order]
    starts = np.arange(0, len(rows), batch_size)
    return int((np.maximum.reduceat(rows, starts) * np.diff(np.append(starts, len(rows)))).sum())


def bucket_lengths(dataset, collate) -> list[int] | None:
    """Token counts of the examples, for length-bucketed batches; None under ``--dnabert_compat``
    (every batch padded to ``--max_seq_length``, in the original's order) or for a collate that
    does not say (``dnabert_compat`` attribute)."""
    if getattr(collate, "dnabert_compat", True):
        return None
    if hasattr(dataset, "lengths"):  # KmerDataset: from its offsets, without building the items
        return dataset.lengths().tolist()
    return [len(dataset[i]["input_ids"]) for i in range(len(dataset))]


class Schedule(NamedTuple):
    n_batches: int  # batches of one epoch on this rank
    steps_per_epoch: int  # optimisation steps per epoch
    t_total: int  # optimisation steps of the run
    n_epochs: int
    warmup: int


def schedule(a: TrainArgs, n_examples: int, dist: Dist | None = None) -> Schedule:
    """The run's step counts, as DNABERT computes them; raises ``InputError`` for impossible settings.

    ``--max_steps N`` trains exactly N steps; otherwise ``int(steps_per_epoch * num_train_epochs)``
    steps (a fractional epoch count ends part-way through the last epoch).
    """
    dist = dist or Dist(0, 1, -1, torch.device("cpu"))
    if a.per_gpu_train_batch_size < 1 or a.gradient_accumulation_steps < 1:
        raise InputError("--per_gpu_train_batch_size and --gradient_accumulation_steps must be at least 1")
    if n_examples < 1:
        raise InputError("no training examples")
    n_batches = math.ceil(len(epoch_order(n_examples, a.seed, 0, dist)) / a.per_gpu_train_batch_size)
    if n_batches < a.gradient_accumulation_steps:
        raise InputError(f"--gradient_accumulation_steps {a.gradient_accumulation_steps} exceeds the {n_batches} "
                         "batches of an epoch: no optimisation step would ever be taken")
    steps_per_epoch = n_batches // a.gradient_accumulation_steps
    if a.max_steps <= 0 and not math.isfinite(a.num_train_epochs):
        raise InputError(f"--num_train_epochs must be a finite number > 0, not {a.num_train_epochs}")
    if a.max_steps > 0:
        t_total, n_epochs = a.max_steps, a.max_steps // steps_per_epoch + 1
    else:
        t_total, n_epochs = int(steps_per_epoch * a.num_train_epochs), math.ceil(a.num_train_epochs)
    if t_total < 1:
        raise InputError("--num_train_epochs/--max_steps give no optimisation step")
    warmup = int(a.warmup_percent * t_total) if a.warmup_percent else a.warmup_steps
    return Schedule(n_batches, steps_per_epoch, t_total, n_epochs, warmup)


def check_optimizer(model: torch.nn.Module, a: TrainArgs, n_examples: int, dist: Dist | None = None) -> Schedule:
    """Everything the loop will build from ``a``, built once now: the schedule, AdamW, the warm-up
    schedule and the clipping norm. Call it before the first write, so that no setting fails after
    an old run was cleared; raises ``InputError`` naming the flag.
    """
    from transformers import get_linear_schedule_with_warmup

    sched = schedule(a, n_examples, dist)
    if not a.max_grad_norm > 0:  # nan, 0 or negative (a negative norm flips the gradients)
        raise InputError(f"--max_grad_norm must be > 0 (inf: no clipping), not {a.max_grad_norm}")
    try:
        optimizer = make_optimizer(model, a)
        get_linear_schedule_with_warmup(optimizer, sched.warmup, sched.t_total)
    except ValueError as err:  # AdamW's own checks (learning rate, epsilon, betas, weight decay)
        raise InputError(f"optimiser settings (--learning_rate, --adam_epsilon, --beta1/--beta2, --weight_decay): "
                         f"{err}") from None
    return sched


def make_optimizer(model: torch.nn.Module, a: TrainArgs) -> torch.optim.Optimizer:
    """AdamW with no weight decay on biases and LayerNorm weights (DNABERT's two groups)."""
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
         "weight_decay": a.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
         "weight_decay": 0.0},
    ]
    # torch's fused AdamW (one kernel over all parameters) where it has one: on a CPU a bert-base step's
    # update took 0.04-0.06 s instead of 0.11-0.14 s; the same update up to rounding
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in model.parameters()) or None
    return torch.optim.AdamW(groups, lr=a.learning_rate, eps=a.adam_epsilon, betas=(a.beta1, a.beta2), fused=fused)


def rng_state() -> dict:
    """Python, NumPy and torch RNG states as tensors and plain lists (loadable with weights_only)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
