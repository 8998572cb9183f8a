"""The training loop shared by fine-tuning and pretraining, with DNABERT's semantics.

AdamW without decay on biases and LayerNorm weights, a linear schedule with warm-up, gradient
accumulation and clipping, evaluation every ``logging_steps``, ``checkpoint-{step}`` folders every
``save_steps`` with optimizer, scheduler, RNG and loop state, rotation by ``save_total_limit``
(never of the best checkpoint, chosen by a :class:`BestMetric`), early stopping on a falling
metric, exact resumption, DistributedDataParallel under ``torchrun`` (the process group and its
helpers are :mod:`m6abert.distributed`) and autocast mixed precision.

Resumption is exact because the data order of every epoch comes from a generator seeded with
``(seed, epoch)``, and the global RNG state (dropout) is saved in each checkpoint and restored
(the order, the schedule, AdamW and the RNG state are :mod:`m6abert.optim`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

import torch

from . import io
from .distributed import Dist, barrier, locked_run_dir, setup_distributed, weights_in_sync  # noqa: F401 (re-exported)
from .optim import (  # noqa: F401 (re-exported: train's public names as before)
    Schedule,
    bucket_lengths,
    check_optimizer,
    epoch_order,
    make_optimizer,
    padded_tokens,
    rng_state,
    schedule,
    set_rng_state,
)
from .preempt import EXIT_PREEMPTED, Preempted, StopSignals, signal_name
from .progress import progress_bar
from .utils import InputError, check_fp16, log


class TrainingDiverged(InputError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainArgs:
    """Optimisation settings; field names are the scripts' flags (``per_gpu_train_batch_size`` ...)."""

    seed: int = 42
    per_gpu_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    beta1: float = 0.9
    beta2: float = 0.999
    max_grad_norm: float = 1.0
    num_train_epochs: float = 3.0
    max_steps: int = -1
    warmup_steps: int = 0
    warmup_percent: float = 0.0
    logging_steps: int = 500
    save_steps: int = 500
    save_total_limit: int | None = None
    evaluate_during_training: bool = False
    early_stop: int = 0
    fp16: bool = False
    bf16: bool = False
    logging_dir: str | None = None  # TensorBoard event files (loss, learning rate, dev metrics, throughput)

    @property
    def precision(self) -> str | None:
        """"fp16", "bf16" or None (float32): the autocast of training and of its evaluations."""
        return "fp16" if self.fp16 else "bf16" if self.bf16 else None

    @classmethod
    def from_flags(cls, flags: dict) -> TrainArgs:
        """The fields of ``flags`` (a script's resolved arguments) that are optimisation settings."""
        return cls(**{f.name: flags[f.name] for f in fields(cls) if f.name in flags})


class TrainResult(NamedTuple):
    global_step: int
    average_loss: float
    best: dict | None  # {"checkpoint", "step", "metric", "metric_name", "greater_is_better", "metrics"} or None
    stopped_early: bool
    ranks_in_sync: bool | None  # under DDP: every rank ended with identical weights
    last_metrics: dict | None = None  # the evaluation's metrics at the last step, if it was evaluated


class BestMetric(NamedTuple):
    """The evaluation metric that chooses the best checkpoint, and its direction.

    >>> BestMetric("loss", greater_is_better=False).better(0.3, than=0.4)
    True
    """

    name: str
    greater_is_better: bool = True

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` beats ``than`` (None: nothing to beat). NaN (undefined) never does."""
        if math.isnan(value):
            return False
        return than is None or (value > than if self.greater_is_better else value < than)


# ---------------------------------------------------------------------------- helpers
def _autocast(a: TrainArgs, device: torch.device):
    if a.fp16:
        check_fp16(True, device.type)
        return torch.autocast("cuda", dtype=torch.float16)
    if a.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


# ---------------------------------------------------------------------------- the loop
@dataclass
class LoopState:
    """Where a run is: everything ``trainer_state.json`` records and a resumed run continues from."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tr_loss: float = 0.0
    logging_loss: float = 0.0
    stop_count: int = 0
    prev_metric: float | None = None
    best: dict | None = None  # {"checkpoint", "step", "metric", "metric_name", "greater_is_better", "metrics"}
    eval_lines: list[str] = field(default_factory=list)
    eval_records: list[dict] = field(default_factory=list)
    scaler: dict | None = None  # the fp16 GradScaler's state

    def to_json(self) -> dict:
        out = asdict(self)
        if out["scaler"] is None:
            out.pop("scaler")
        return out

    @classmethod
    def from_json(cls, obj: dict) -> LoopState:
        return cls(**{f.name: obj[f.name] for f in fields(cls) if f.name in obj})


@dataclass
class Run:
    """What a training run holds fixed: the model, its optimiser and what the loop calls."""

    model: torch.nn.Module
    ddp: torch.nn.Module  # the model, wrapped by DistributedDataParallel under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler
    args: TrainArgs
    dist: Dist
    out: Path
    k: int
    t_total: int
    evaluate: Callable[[torch.nn.Module, int], tuple[dict, str]] | None
    metric: str | None
    stats: Callable[[dict], dict] | None
    best_metric: BestMetric | None = None
    tokens: int = 0
    t0: float = 0.0
    stop: StopSignals | None = None  # SIGTERM / SIGUSR1 caught while the loop runs
    tb: object | None = None  # TensorBoard SummaryWriter (rank 0, --logging_dir)
    lengths: list[int] | None = None  # the examples' token counts, for length-bucketed batches


def _start(model, dataset, collate, a: TrainArgs, out: Path, k: int, evaluate, metric, dist: Dist,
           stats, best_metric: BestMetric | None = None) -> tuple[Run, Schedule]:
    """Move the model to the device and build its optimiser, schedule and gradient scaler."""
    from transformers import get_linear_schedule_with_warmup

    model.to(dist.device)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if dist.world_size > 1 else model
    sched = schedule(a, len(dataset), dist)
    optimizer = make_optimizer(model, a)
    scheduler = get_linear_schedule_with_warmup(optimizer, sched.warmup, sched.t_total)
    scaler = torch.amp.GradScaler("cuda", enabled=a.fp16 and dist.device.type == "cuda")
    run = Run(model, ddp, optimizer, scheduler, scaler, a, dist, out, k, sched.t_total, evaluate, metric, stats,
              best_metric or (BestMetric(metric) if metric else None))
    run.lengths = bucket_lengths(dataset, collate)
    if a.logging_dir and dist.is_main:
        run.tb = io.summary_writer(a.logging_dir)
    return run, sched


def _restore(run: Run, resume_from: str | Path | io.TrainingState | None) -> LoopState:
    """A fresh loop state, or the checkpoint's with optimiser, scheduler, scaler and RNG restored."""
    if resume_from is None:
        return LoopState()
    resumed = resume_from if isinstance(resume_from, io.TrainingState) else io.read_training_state(resume_from)
    state = LoopState.from_json(resumed.state)
    run.optimizer.load_state_dict(resumed.optimizer)
    for group in run.optimizer.param_groups:  # a state saved before fused AdamW must not switch it off
        group["fused"] = run.optimizer.defaults["fused"]
    run.scheduler.load_state_dict(resumed.scheduler)
    if state.scaler is not None:
        run.scaler.load_state_dict(state.scaler)
    # one RNG state per rank (dropout draws differ between ranks); older checkpoints hold one
    set_rng_state(resumed.rng["ranks"][run.dist.rank] if "ranks" in resumed.rng else resumed.rng)
    if run.dist.is_main:
        io.write_text(run.out / "eval_results.txt", "".join(line + "\n" for line in state.eval_lines))
        io.write_lines(run.out / "eval_results.jsonl", [_json(r) for r in state.eval_records])
    log.info("resuming from %s at step %d", resumed.path, state.global_step)
    return state


def train(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    collate: Callable[[list], dict],
    a: TrainArgs,
    output_dir: str | Path,
    k: int | None,
    evaluate: Callable[[torch.nn.Module, int], tuple[dict, str]] | None = None,
    metric: str | None = None,
    resume_from: str | Path | io.TrainingState | None = None,
    dist: Dist | None = None,
    stats: Callable[[dict], dict] | None = None,
    best_metric: BestMetric | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` and write checkpoints and evaluation logs to ``output_dir``.

    The loop needs only a model whose forward returns ``.loss`` given the collated batch.

    Parameters
    ----------
    model: torch.nn.Module
        Returns ``.loss`` from ``model(**batch)``.
    dataset, collate:
        Training examples and the function that pads a list of them into a batch. A collate with
        a ``batches_done`` attribute gets the run's batch number before each call, so random
        masking depends only on the batch's position in the run (exact resumption).
    a: TrainArgs
        Optimisation settings.
    output_dir: str or Path
        Receives ``checkpoint-{step}/``, ``eval_results.txt`` and ``eval_results.jsonl``.
    k: int or None
        k-mer length, for the tokenizer files of each checkpoint; None for a model that reads no
        k-mers (the CNN+LSTM baseline): its checkpoints hold the model and the training state only,
        and resume the same way.
    evaluate: callable or None
        ``evaluate(model, step) -> (metrics, line)``: called every ``logging_steps`` with
        ``evaluate_during_training``; ``line`` is appended to ``eval_results.txt`` and ``metrics``
        (plus ``step``, ``loss``, ``learning_rate``) to ``eval_results.jsonl``. Default is None.
    metric: str or None
        Metric for early stopping (``early_stop`` consecutive decreases) and, without
        ``best_metric``, for the best checkpoint (higher is better). Default is None.
    resume_from: str, Path, TrainingState or None
        A ``checkpoint-{step}`` folder to resume from exactly (its weights must already be in
        ``model``), or its :func:`~m6abert.io.read_training_state` read before anything was
        written. Default is None.
    dist: Dist or None
        Distributed setup; default single process on CPU/GPU.
    stats: callable or None
        ``stats(batch) -> {"tokens": n}`` for the throughput shown in the progress bar.
    best_metric: BestMetric or None
        The metric and direction that choose the best checkpoint (``TrainResult.best``), which is
        always saved and never rotated away; it is part of the loop state, so a resumed run picks
        the same one. Default is ``metric``, higher is better.

    Returns
    -------
    TrainResult
    """
    dist = dist or setup_distributed()
    run, sched = _start(model, dataset, collate, a, Path(output_dir), k, evaluate, metric, dist, stats, best_metric)
    state = _restore(run, resume_from)
    log.info("training: %d examples, %d epochs, %d optimisation steps, batch %d x %d accumulation x %d processes",
             len(dataset), sched.n_epochs, run.t_total, a.per_gpu_train_batch_size, a.gradient_accumulation_steps,
             dist.world_size)
    bar = progress_bar(run.t_total, "train", "step", initial=state.global_step, disable=not dist.is_main)
    run.t0 = time.perf_counter()
    model.train()
    done, stopped_early = state.global_step >= run.t_total, False
    try:
        with StopSignals() as run.stop:  # a stop signal ends the loop at a step, with a checkpoint
            while not done and state.epoch < sched.n_epochs:
                done, stopped_early = _run_epoch(run, state, dataset, collate, bar)
    finally:  # also before an error's line (a failed save), which then starts a line of its own
        bar.close()
        if run.tb is not None:
            run.tb.close()
    avg = state.tr_loss / max(state.global_step, 1)
    log.info(" global_step = %d, average loss = %s", state.global_step, avg)
    return TrainResult(state.global_step, avg, state.best, stopped_early, weights_in_sync(model, dist),
                       _metrics_at(state, state.global_step))


def _metrics_at(state: LoopState, step: int) -> dict | None:
    """The evaluation metrics recorded at ``step`` (without their ``eval_`` prefix), or None."""
    for record in reversed(state.eval_records):
        if record.get("step") == step:
            return {key[5:]: v for key, v in record.items() if key.startswith("eval_")}
    return None


def _run_epoch(run: Run, state: LoopState, dataset, collate, bar) -> tuple[bool, bool]:
    """The rest of ``state.epoch``'s batches; returns (done, stopped early)."""
    a = run.args
    order = epoch_order(len(dataset), a.seed, state.epoch, run.dist, run.lengths, a.per_gpu_train_batch_size)
    batches = [order[i : i + a.per_gpu_train_batch_size] for i in range(0, len(order), a.per_gpu_train_batch_size)]
    for b in range(state.batch_in_epoch, len(batches)):
        if hasattr(collate, "batches_done"):  # a random collator (MLM masking) follows the run's batch count
            collate.batches_done = state.epoch * len(batches) + b
        batch = {key: v.to(run.dist.device) for key, v in collate([dataset[i] for i in batches[b]]).items()}
        loss = _backward(run, state, batch, bar)
        state.batch_in_epoch = b + 1
        if (b + 1) % a.gradient_accumulation_steps:  # as DNABERT: a remainder carries over
            continue
        _optimizer_step(run)
        state.global_step += 1
        bar.update(1)
        elapsed = max(time.perf_counter() - run.t0, 1e-9)
        bar.set_postfix(loss=f"{loss * a.gradient_accumulation_steps:.4f}",
                        tok_s=f"{run.tokens * run.dist.world_size / elapsed:.0f}")
        stopped, saved = _after_step(run, state)
        if not stopped:
            _stop_if_signalled(run, state, saved, bar)
        if stopped or state.global_step >= run.t_total:
            return True, stopped
    state.epoch += 1
    state.batch_in_epoch = 0
    return False, False


def _backward(run: Run, state: LoopState, batch: dict, bar) -> float:
    """Forward and backward of one micro-batch; a non-finite loss on any rank stops every rank."""
    if run.stats is not None:
        run.tokens += run.stats(batch)["tokens"]
    with _autocast(run.args, run.dist.device):
        loss = run.ddp(**batch).loss / run.args.gradient_accumulation_steps
    finite = torch.isfinite(loss.detach()).to(torch.int32)
    if run.dist.world_size > 1:  # one rank's NaN stops every rank (none is left waiting)
        torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
    if not finite.item():
        kept = io.list_checkpoints(run.out)
        bar.close()  # the error line starts a line of its own, after the progress bar
        raise TrainingDiverged(
            f"loss became {'non-finite' if torch.isfinite(loss) else loss.item()} at step {state.global_step + 1}; "
            f"stopped, last good checkpoint: {kept[-1] if kept else 'none'}"
        )
    run.scaler.scale(loss).backward()
    value = loss.item()
    state.tr_loss += value
    return value


def _optimizer_step(run: Run) -> None:
    """Unscale, clip, step the optimiser and the schedule, clear the gradients."""
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.args.max_grad_norm)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)


def _after_step(run: Run, state: LoopState) -> tuple[bool, bool]:
    """Log and evaluate every ``logging_steps``, save every ``save_steps`` or at a new best.

    Returns (stop early, a checkpoint of this step was saved).
    """
    a, step = run.args, state.global_step
    stop = new_best = saved = False
    if a.logging_steps > 0 and step % a.logging_steps == 0:
        stop, new_best = _log_and_evaluate(run, state)
    if new_best or (not stop and a.save_steps > 0 and step % a.save_steps == 0):  # a best is always saved
        _save(run, state, step)
        saved = True
    return stop, saved


def _stop_if_signalled(run: Run, state: LoopState, saved: bool, bar) -> None:
    """After a step: if any rank caught a stop signal, save this step's checkpoint and raise ``Preempted``.

    The ranks agree through an all_reduce of the signal number, so all stop at the same step.
    """
    sig = int(run.stop.signum or 0) if run.stop is not None else 0
    if run.dist.world_size > 1:  # a tensor only under DDP: a single process checks a Python int, no device sync
        signum = torch.tensor([sig], dtype=torch.int64, device=run.dist.device)
        torch.distributed.all_reduce(signum, op=torch.distributed.ReduceOp.MAX)
        sig = int(signum.item())
    if not sig:
        return
    step = state.global_step
    if not saved:
        _save(run, state, step)
    if run.stop is not None:
        run.stop.consume()
    checkpoint = run.out / f"checkpoint-{step}"
    bar.close()  # the line below starts a line of its own
    if run.dist.is_main:
        log.warning("%s: stopped after step %d of %d; %s written; resume with --should_continue (exit status %d)",
                    signal_name(sig), step, run.t_total, checkpoint, EXIT_PREEMPTED)
    raise Preempted(sig, step, str(checkpoint))


def _save(run: Run, state: LoopState, step: int) -> None:
    """Every rank's RNG state goes to rank 0, which writes the checkpoint."""
    dist = run.dist
    rngs = [rng_state()]
    if dist.world_size > 1:
        rngs = [None] * dist.world_size
        torch.distributed.all_gather_object(rngs, rng_state())
    if dist.is_main:
        if run.scaler.is_enabled():
            state.scaler = run.scaler.state_dict()
        io.save_checkpoint(
            run.out / f"checkpoint-{step}", run.model, run.k,
            state={"optimizer.pt": run.optimizer.state_dict(), "scheduler.pt": run.scheduler.state_dict(),
                   "rng_state.pth": {"ranks": rngs}},
            extra_json={"trainer_state.json": state.to_json(), io.CHECKPOINT_MARKER: io.checkpoint_marker(step)},
        )
        io.rotate(run.out, run.args.save_total_limit, keep=(state.best or {}).get("checkpoint"))
    barrier(dist)


def _tensorboard(run: Run, scalars: dict, step: int) -> None:
    """Scalars to TensorBoard; with the loss, the throughput since the start (tokens/s, all ranks)."""
    rate = run.tokens * run.dist.world_size / max(time.perf_counter() - run.t0, 1e-9) if "loss" in scalars else None
    io.log_scalars(run.tb, scalars, step, rate)


def _json(obj: dict) -> str:
    """One strict JSON line (undefined metrics as ``null``)."""
    return io.json_dumps(obj)


def _track_metric(run: Run, state: LoopState, metrics: dict) -> tuple[bool, bool]:
    """Update the best checkpoint and the early-stop count from ``metrics``; returns (stop, new_best)."""
    new_best = _track_best(run, state, metrics)
    if run.metric is None or run.metric not in metrics:
        return False, new_best
    value = float(metrics[run.metric])
    prev = state.prev_metric
    state.stop_count = state.stop_count + 1 if prev is not None and value < prev else 0
    state.prev_metric = value
    stop = bool(run.args.early_stop and state.stop_count >= run.args.early_stop)
    if stop:
        log.info("Early stop")
    return stop, new_best


def _track_best(run: Run, state: LoopState, metrics: dict) -> bool:
    """Make this step the best if ``run.best_metric`` beats the best so far; returns whether it did."""
    by = run.best_metric
    if by is None or by.name not in metrics:
        return False
    value, step = float(metrics[by.name]), state.global_step
    if not by.better(value, None if state.best is None else state.best["metric"]):
        return False
    state.best = {"checkpoint": f"checkpoint-{step}", "step": step, "metric": value, "metric_name": by.name,
                  "greater_is_better": by.greater_is_better, "metrics": metrics}
    return True


def _log_and_evaluate(run: Run, state: LoopState) -> tuple[bool, bool]:
    """Log loss and lr; evaluate if asked; track best and early stop. Returns (stop, new_best)."""
    a, dist, step = run.args, run.dist, state.global_step
    logs = {"learning_rate": run.scheduler.get_last_lr()[0],
            "loss": (state.tr_loss - state.logging_loss) / a.logging_steps}
    state.logging_loss = state.tr_loss
    stop = new_best = False
    evaluating = a.evaluate_during_training and run.evaluate is not None
    if run.tb is not None:
        _tensorboard(run, logs, step)
    if dist.is_main and not evaluating:
        print(_json({**logs, "step": step}))  # as DNABERT: loss and lr at every logging step
    if evaluating and dist.is_main:
        run.model.eval()
        metrics, line = run.evaluate(run.model, step)
        run.model.train()
        record = {**{f"eval_{key}": v for key, v in metrics.items()}, **logs, "step": step}
        state.eval_lines.append(line)
        state.eval_records.append(record)
        io.append_line(run.out / "eval_results.txt", line)
        io.append_line(run.out / "eval_results.jsonl", _json(record))
        print(_json(record))
        if run.tb is not None:
            _tensorboard(run, {f"eval_{key}": v for key, v in metrics.items()}, step)
        stop, new_best = _track_metric(run, state, metrics)
    if dist.world_size > 1:
        flags = torch.tensor([int(stop), int(new_best)], device=dist.device)
        torch.distributed.broadcast(flags, 0)
        stop, new_best = bool(flags[0]), bool(flags[1])
    return stop, new_best
