"""What every command shares: the error guard, ``--version``, the compatibility group, flag checks.

Exit statuses of every command:

* ``0`` (:data:`EXIT_OK`): done.
* ``2`` (:data:`EXIT_INPUT`): bad input or flags; one line on stderr, nothing written.
* ``143`` (:data:`EXIT_PREEMPTED`): training was stopped by SIGTERM or SIGUSR1 (a batch system's
  preemption or time limit) after the current optimisation step, and a complete ``checkpoint-N``
  was written: run the same command with ``--should_continue`` to resume exactly (a job script
  requeues on it). A command stopped by one of those signals outside the training loop (while
  reading its data, evaluating or predicting) also ends with 128 + the signal number (143 for
  SIGTERM, 138 for SIGUSR1) after releasing its run lock, without a new checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable

from .. import __version__
from ..constants import MAX_POSITIONS
from ..preempt import EXIT_PREEMPTED, Preempted
from ..progress import DEFAULT_INTERVAL
from ..utils import InputError
from ..utils import check_fp16 as check_fp16_device

EXIT_OK, EXIT_INPUT = 0, 2  # EXIT_PREEMPTED (143) is m6abert.preempt's
TOKENIZERS = ("dna3", "dna4", "dna5", "dna6")
COMPAT_TITLE = "accepted for compatibility with the original and ignored"
SEED_MAX = 2**32 - 1  # NumPy's seeds


def _finite_above(low: float) -> Callable[[float], bool]:
    return lambda v: math.isfinite(v) and v > low


def _finite_from(low: float) -> Callable[[float], bool]:
    return lambda v: math.isfinite(v) and v >= low


# (flag, allowed values as the message says them, test): a comparison is False for NaN, so NaN is refused
SEED_RULE = ("seed", f"in 0..{SEED_MAX}", lambda v: 0 <= v <= SEED_MAX)
TRAINING_RULES = (
    SEED_RULE,
    ("learning_rate", "a finite number > 0", _finite_above(0.0)),
    ("weight_decay", "a finite number >= 0", _finite_from(0.0)),
    ("adam_epsilon", "a finite number > 0", _finite_above(0.0)),
    ("beta1", "in [0, 1)", lambda v: 0.0 <= v < 1.0),
    ("beta2", "in [0, 1)", lambda v: 0.0 <= v < 1.0),
    ("max_grad_norm", "> 0 (inf: no clipping)", lambda v: v > 0.0),
    ("warmup_steps", ">= 0", lambda v: v >= 0),
    ("warmup_percent", "in [0, 1]", lambda v: 0.0 <= v <= 1.0),
    ("logging_steps", ">= 0 (0: never)", lambda v: v >= 0),
    ("save_steps", ">= 0 (0: never)", lambda v: v >= 0),
    ("save_total_limit", ">= 0 (0 or unset: keep every checkpoint)", lambda v: v is None or v >= 0),
    ("early_stop", ">= 0 (0: off)", lambda v: v >= 0),
    ("hidden_dropout_prob", "in [0, 1)", lambda v: 0.0 <= v < 1.0),
    ("attention_probs_dropout_prob", "in [0, 1)", lambda v: 0.0 <= v < 1.0),
)


def command(run: Callable[..., object]) -> Callable[..., int]:
    """A command's ``main(argv=None) -> int`` from its ``run(argv=None)`` (which returns the library's result).

    ``main`` returns :data:`EXIT_OK` (0) after a successful run, never the result: a console script
    ends with ``sys.exit(main())``, and anything but 0 or None there would be a failure for ``&&``,
    ``set -e`` and SLURM's ``afterok``. An ``InputError`` ends the process with one line, status 2;
    a preempted training run (a checkpoint to resume from is written) with status 143.
    """

    def main(argv: list[str] | None = None) -> int:
        ok = False
        try:
            run_guarded(run, argv)
            ok = True
        finally:
            _end_distributed(ok)
        return EXIT_OK

    main.__module__, main.__qualname__ = run.__module__, "main"
    main.__doc__ = f"Run the command; 0 when done, SystemExit(2) for bad input. {(run.__doc__ or '').strip()}"
    return main


def _end_distributed(ok: bool) -> None:
    """Leave a torchrun process group the run joined (nothing to do when torch was never imported)."""
    if "torch.distributed" in sys.modules:
        from ..distributed import end_distributed

        end_distributed(ok)


def run_guarded(run: Callable[..., object], argv: list[str] | None = None) -> object:
    """``run(argv)`` as a command runs it, its result returned (a notebook's or a test's call): logging
    set up from ``argv``; bad input ends with one line on stderr and ``SystemExit(2)``, a preempted
    training run with ``SystemExit(143)``."""
    try:
        set_up_logging(argv)
        return run(argv)
    except InputError as err:
        prog = os.path.basename(sys.argv[0]) or "m6abert"
        msg = " ".join(str(err).split())  # exactly one line
        print(f"{prog}: error: {msg}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT) from None
    except OSError as err:  # a path or a write the system refused where no check foresaw it (a name too long)
        from ..io.files import os_error_message

        prog = os.path.basename(sys.argv[0]) or "m6abert"
        print(f"{prog}: error: {' '.join(os_error_message(err).split())}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT) from None
    except Preempted:  # the training loop logged its one line (checkpoint written)
        raise SystemExit(EXIT_PREEMPTED) from None


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description's line breaks kept, and every flag's default shown (``--help``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or action.default is argparse.SUPPRESS or not action.option_strings
                or action.required or action.nargs == 0):  # a switch is off unless given
            return text
        if action.default in (None, ""):
            return text if "default" in text else f"{text} (default: unset)".strip()
        return f"{text} (default: %(default)s)".strip()

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.option_strings and action.nargs != 0:
            action.help = ""  # still show the default of a flag without a help text
        return super()._format_action(action)

    def _expand_help(self, action: argparse.Action) -> str:
        return super()._expand_help(action) if action.help is not None else ""


def new_parser(description: str | None, raw: bool = False) -> argparse.ArgumentParser:
    """A parser with ``--version``, every default shown in ``--help``, and the logging flags every
    command has (``-q/--quiet``, ``-v/--verbose``, ``--progress_interval``; applied by :func:`command`)."""
    p = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"m6abert {__version__}")
    add_logging_args(p)
    return p


def add_logging_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("logging")
    loud = g.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only; no progress")
    loud.add_argument("-v", "--verbose", action="store_true",
                      help="debug messages too (find_motifs.py: the counts of each step, as DNABERT's --verbose)")
    g.add_argument("--progress_interval", type=float, default=DEFAULT_INTERVAL, metavar="SECONDS",
                   help="where stderr is not a terminal (a batch job's log), progress is one log line every this "
                        "many seconds instead of a bar")


class _LoggingFlags(argparse.ArgumentParser):
    """The logging flags alone, read ahead of a command's parser; its errors are left to that parser."""

    def error(self, message: str):
        raise ValueError(message)


def set_up_logging(argv: list[str] | None) -> None:
    """The log format, level (``-q``: WARNING, ``-v``: DEBUG, else INFO) and progress settings of a
    command's ``argv``, read before its parser runs (so that its checks log at the chosen level)."""
    from ..progress import configure

    p = _LoggingFlags(add_help=False)  # abbreviations as the command's parser takes them (--verb, --progress_int)
    add_logging_args(p)
    try:
        args, _ = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    except ValueError:  # e.g. -q with -v: the command's own parser says so, with its usage
        args = p.parse_args([])
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s -   %(message)s",
                        datefmt="%m/%d/%Y %H:%M:%S", level=level)
    logging.getLogger().setLevel(level)
    logging.getLogger("m6abert").setLevel(level)
    if not (math.isfinite(args.progress_interval) and args.progress_interval > 0):
        raise InputError(f"--progress_interval must be a finite number of seconds > 0, not {args.progress_interval}")
    configure(interval=args.progress_interval, enabled=not args.quiet)


def compat_group(p: argparse.ArgumentParser, *flags: tuple[str, dict]) -> argparse._ArgumentGroup:
    """The parser's one group of the original's flags that are accepted and ignored."""
    g = p.add_argument_group(COMPAT_TITLE, "these flags of the original do nothing here; they are accepted so "
                                           "that the original commands run unchanged")
    for flag, kw in flags:
        g.add_argument(flag, **kw)
    return g


def add_device_args(g: argparse._ArgumentGroup) -> None:
    """``--no_cuda``, ``--fp16`` and ``--bf16``, as the model commands share them."""
    g.add_argument("--no_cuda", action="store_true", help="run on the CPU even where a GPU is seen")
    g.add_argument("--fp16", action="store_true", help="float16 autocast on CUDA (apex is gone)")
    g.add_argument("--bf16", action="store_true", help="new: bfloat16 autocast (CPU or GPU)")


def add_optimizer_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """AdamW and schedule flags shared by fine-tuning and pretraining, with DNABERT's defaults."""
    p.add_argument("--gradient_accumulation_steps", type=int, default=1, help="batches per optimisation step")
    p.add_argument("--learning_rate", type=float, default=5e-5, help="AdamW's peak learning rate")
    p.add_argument("--weight_decay", type=float, default=0.0, help="AdamW's decoupled weight decay")
    p.add_argument("--adam_epsilon", type=float, default=1e-8, help="AdamW's epsilon")
    p.add_argument("--beta1", type=float, default=0.9, help="AdamW's beta1")
    p.add_argument("--beta2", type=float, default=0.999, help="AdamW's beta2")
    p.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping norm (inf: none)")
    p.add_argument("--max_steps", type=int, default=-1, help="> 0: train exactly this many optimisation steps")
    p.add_argument("--warmup_steps", type=int, default=0, help="linear warm-up steps of the learning rate")


def check_common(args: argparse.Namespace) -> None:
    """The checks shared by the model commands: model and task type, tokenizer, lengths, precision."""
    if getattr(args, "model_type", "dna") != "dna":
        note = " (dnalong models are not carried)" if args.model_type.startswith("dnalong") else ""
        raise InputError(f"--model_type {args.model_type!r} is not supported: only 'dna'{note}")
    if getattr(args, "task_name", "dnaprom").lower() != "dnaprom":
        raise InputError(f"--task_name {args.task_name!r} is not supported: only 'dnaprom' (binary)")
    if getattr(args, "server_ip", "") or getattr(args, "server_port", ""):
        raise InputError("--server_ip/--server_port (ptvsd remote debugging) are not supported")
    if getattr(args, "tokenizer_name", None) and args.tokenizer_name not in TOKENIZERS:
        raise InputError(f"--tokenizer_name must be dna3..dna6, not {args.tokenizer_name!r}")
    if getattr(args, "max_seq_length", None) is not None and not 3 <= args.max_seq_length <= MAX_POSITIONS:
        raise InputError(f"--max_seq_length must be in 3..{MAX_POSITIONS} (BERT positions), not {args.max_seq_length}")
    if getattr(args, "fp16", False) and getattr(args, "bf16", False):
        raise InputError("choose one of --fp16 and --bf16")


def resolve_max_seq_length(args: argparse.Namespace, model_dir: str | None) -> None:
    """An unset ``--max_seq_length`` becomes what fits the model: its ``max_position_embeddings``
    (512 for every DNABERT-style model; at most 512). Where ``model_dir`` has no readable config.json
    yet, 512: loading the model then says what is wrong with it. An explicit value is kept."""
    if args.max_seq_length is not None:
        return
    args.max_seq_length = MAX_POSITIONS
    if model_dir:
        from ..io import read_config

        path = model_dir if str(model_dir).endswith(".json") else os.path.join(model_dir, "config.json")
        try:
            positions = read_config(path, "config.json").get("max_position_embeddings")
        except InputError:
            return
        if isinstance(positions, int) and not isinstance(positions, bool) and 3 <= positions < MAX_POSITIONS:
            args.max_seq_length = positions


def check_logging_dir(args: argparse.Namespace) -> None:
    """``--logging_dir`` needs the optional tensorboard package (checked before any work)."""
    if getattr(args, "logging_dir", None):
        from ..io import summary_writer_class

        summary_writer_class()


def check_fp16(args: argparse.Namespace) -> None:
    """``--fp16`` needs CUDA (imports torch: call after the cheap checks)."""
    if getattr(args, "fp16", False):
        import torch

        check_fp16_device(True, "cpu" if args.no_cuda or not torch.cuda.is_available() else "cuda")


def settings_of(cls, args: argparse.Namespace):
    """A library settings dataclass (``FinetuneSettings``, ``PretrainSettings``) of parsed flags: the
    fields named as flags, the optimisation settings, k of ``--tokenizer_name`` and the flags to record."""
    from ..train import TrainArgs

    flags = vars(args)
    fields = {f: flags[f] for f in cls.__dataclass_fields__ if f in flags}
    return cls(train=TrainArgs.from_flags(flags), k=tokenizer_k(args.tokenizer_name), run_args=dict(flags), **fields)


def runtime_record(device, world_size: int = 1, precision: str | None = None) -> dict:
    """Where a command runs: device (with the GPU's name), precision, world size, the
    ``CUDA_VISIBLE_DEVICES`` it found (never set by the toolkit), host, torch and SLURM job ids."""
    import socket

    import torch

    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    slurm = {key.lower(): os.environ[key] for key in ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT")
             if key in os.environ}
    return {"device": str(device), "device_name": name, "precision": {"bf16": "bfloat16", "fp16": "float16"}.get(
                precision or "", "float32"), "world_size": world_size,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "host": socket.gethostname(),
            "torch": torch.__version__, **slurm}


def log_start(args: argparse.Namespace, device, world_size: int = 1, precision: str | None = None,
              rank: int = 0) -> dict:
    """Log the device, precision, world size and resolved arguments at a command's start (rank 0);
    returns :func:`runtime_record`, which the command records as ``runtime`` in its run JSON."""
    from ..utils import log

    record = runtime_record(device, world_size, precision)
    if rank == 0:
        where = record["device"] + (f" ({record['device_name']})" if record["device_name"] else "")
        log.info("device %s, precision %s, world size %d, CUDA_VISIBLE_DEVICES=%s", where, record["precision"],
                 world_size, record["cuda_visible_devices"] if record["cuda_visible_devices"] is not None else "unset")
        log.info("arguments: %s", " ".join(f"--{k}={v}" for k, v in sorted(vars(args).items()) if k != "runtime"))
        import torch

        log.debug("host %s, python %s, torch %s, %d CPU threads, m6abert %s", record["host"], sys.version.split()[0],
                  record["torch"], torch.get_num_threads(), __version__)
    return record


def precision_of(args: argparse.Namespace) -> str | None:
    """``"fp16"``, ``"bf16"`` or None (float32) from a command's ``--fp16``/``--bf16`` (those it has)."""
    return "fp16" if getattr(args, "fp16", False) else "bf16" if getattr(args, "bf16", False) else None


def keep_freed_memory(runtime: dict, device) -> None:
    """On a CPU, let glibc's malloc keep freed memory for the next batch or step (no page faults of the
    working set after the first ones: :func:`m6abert.memory.retain_freed_memory`), recorded in ``runtime``."""
    from ..memory import retain_freed_memory

    if device.type == "cpu":
        runtime["malloc_retains_freed_memory"] = retain_freed_memory()


def run_training(args: argparse.Namespace, run: Callable[..., dict], settings) -> dict:
    """Seed, set up the device (and the process group under torchrun), log them, then make the one library call."""
    from ..train import setup_distributed
    from ..utils import set_seed

    set_seed(args.seed)
    dist = setup_distributed(args.local_rank, args.no_cuda)
    settings.run_args["runtime"] = log_start(args, dist.device, dist.world_size, precision_of(args), dist.rank)
    keep_freed_memory(settings.run_args["runtime"], dist.device)
    return run(settings, dist)


def tokenizer_k(name: str | None) -> int | None:
    """k named by ``--tokenizer_name dnaK``, or None."""
    return int(name[3:]) if name else None


def check_at_least_one(args: argparse.Namespace, flags: tuple[str, ...]) -> None:
    for flag in flags:
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag} must be at least 1, not {getattr(args, flag)}")


def check_rules(args: argparse.Namespace, rules: tuple[tuple[str, str, Callable[[float], bool]], ...]) -> None:
    """Refuse the first flag of ``rules`` that ``args`` has and whose value fails its test (NaN fails)."""
    for flag, allowed, ok in rules:
        if hasattr(args, flag) and not ok(getattr(args, flag)):
            raise InputError(f"--{flag} must be {allowed}, not {getattr(args, flag)}")


def check_seed(args: argparse.Namespace) -> None:
    """``--seed`` in 0..2**32-1 (NumPy refuses any other seed, after work has started)."""
    check_rules(args, (SEED_RULE,))


def check_optimizer_args(args: argparse.Namespace) -> None:
    """The optimisation flags of fine-tuning and pretraining (those a command has), each in its range.

    ``--num_train_epochs`` must be finite, and > 0 unless ``--max_steps`` sets the run's length.
    """
    check_rules(args, TRAINING_RULES)
    epochs = args.num_train_epochs
    if not math.isfinite(epochs) or (epochs <= 0 and args.max_steps <= 0):
        raise InputError(f"--num_train_epochs must be a finite number > 0, not {epochs}")


def check_n_folds(args: argparse.Namespace) -> None:
    """``--n_folds``, if given, is at least 2."""
    if args.n_folds is not None and args.n_folds < 2:
        raise InputError(f"--n_folds must be at least 2, not {args.n_folds}")
