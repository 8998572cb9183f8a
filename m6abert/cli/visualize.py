"""Per-nucleotide attention (attn), integrated-gradients attribution (attr) or in-silico saturation
mutagenesis (ism) scores of a fine-tuned model.

Takes the original visualize_all.py flags unchanged, e.g.
  python visualize_all.py --kmer $KMER --model_name_or_path $MODEL_PATH --model_path $FINE_TUNED \
    --output_dir $OUTPUT_PATH --data_dir $DATA_PATH --data_name $DATASET --vis_task $TASK --batch_size 50
Writes OUTPUT_DIR/atten_{data_name}.npy and pred_results_{data_name}.npy (attn) or
OUTPUT_DIR/attributions_{data_name}.npy (attr), heatmap and profile figures (PNG, PDF) and
visualize_args.json. New: --data_name all, --n_steps, --internal_batch_size, --dnabert_compat,
--no_plot, --site_index, --no_cuda, --shard I --num_shards N (a block of the rows; merge_shards.py joins
the shards), and --vis_task ism (OUTPUT_DIR/ism_{data_name}.npy, N x L x 4
Δ log-odds of every substitution, ism_summary_{data_name}.npy, N x L mean |Δ|, and mutation maps
ism_{data_name}_map_{row}.png), with --ism_window, --plot_ids and --ism_batch_size. Every score array
gets {stem}.ids.tsv (the record id of each row, from DATA_DIR/records.tsv), and rows with genome
coordinates bedGraph tracks. New: --fasta FILE scores one's own FASTA instead of a split (outputs named
by --data_name, default the FASTA's stem).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..constants import (
    IG_FIRST_STEPS,
    IG_MAX_STEPS,
    IG_STEPS_COMPAT,
    MAX_ABS_DELTA,
    MAX_REL_DELTA,
    N_BASELINES,
    SITE_INDEX,
)
from ..score_methods import METHODS, with_qc
from ..utils import InputError
from .common import (
    add_device_args,
    check_common,
    check_fp16,
    command,
    compat_group,
    new_parser,
    resolve_max_seq_length,
)

WINDOW_RE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*$")


def parse_window(text: str | None) -> tuple[int, int] | None:
    """``--ism_window START:END`` as a pair of ints (the library checks it against the sequences)."""
    if text is None:
        return None
    m = WINDOW_RE.match(text)
    if not m:
        raise InputError(f"--ism_window must be START:END (nt relative to the site, e.g. -150:50), not {text!r}")
    start, end = int(m.group(1)), int(m.group(2))
    if start >= end:
        raise InputError(f"--ism_window {text}: START must be less than END")
    return start, end


def parse_plot_ids(text: str | None) -> tuple[int, ...] | None:
    """``--plot_ids 0,3,7`` as row numbers; ``none`` draws no map; None (unset) is the library's default."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    parts = [t.strip() for t in text.split(",")]
    if not parts or not all(t.isdigit() for t in parts):
        raise InputError(f"--plot_ids must be row numbers separated by commas (e.g. 0,3,7) or none, not {text!r}")
    return tuple(int(t) for t in parts)


def _glue_window(argv: list[str] | None) -> list[str]:
    """``--ism_window -150:50`` as ``--ism_window=-150:50`` (argparse takes ``-150:50`` for a flag)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(argv) - 1):
        if argv[i] == "--ism_window" and WINDOW_RE.match(argv[i + 1]):
            return [*argv[:i], f"--ism_window={argv[i + 1]}", *argv[i + 2 :]]
    return argv


def build_parser() -> argparse.ArgumentParser:
    """The original's flags (those marked "new" are m6abert's), grouped by purpose; the ignored ones in one group."""
    p = new_parser(__doc__, raw=True)
    a = p.add_argument_group("data").add_argument
    a("--data_dir", type=str, default=None, help="folder of train.tsv / dev.tsv / test.tsv (or give --fasta)")
    a("--data_name", type=str, default=None,
      help="DATA_DIR/{data_name}.tsv: train, dev, test, or all (train, dev and test concatenated in that order); "
           "with --fasta the name of the outputs (default: the FASTA's file name without .fa/.fasta/.gz)")
    a("--fasta", type=str, default=None,
      help="new: score the records of this FASTA instead of a split (ids and genome coordinates from the headers, "
           "each site from site=N or the window rule, labels from label=1/label=0 words). attn and ism need no "
           "labels; attr explains the true label, and for an unlabelled FASTA label 1 (degraded) for every record")
    a("--task_name", type=str, default="dnaprom", help="must be 'dnaprom' (binary classification)")
    a("--max_seq_length", type=int, default=None,
      help="tokens incl. [CLS]/[SEP]; the width of the attn scores; default: the model's max_position_embeddings "
           "(512 for DNABERT-style models)")
    a("--site_index", type=int, default=None,
      help=f"new: sequence index of the m6A site; figures show positions relative to it (default {SITE_INDEX}; "
           "not with --fasta, whose records give their own)")
    a("--shard", type=int, default=None,
      help="new: score only shard I (0-based) of --num_shards, a contiguous block of the rows of "
           "DATA_DIR/{data_name}.tsv; join the shards' arrays and tables with merge_shards.py")
    a("--num_shards", type=int, default=None, help="new: the number of shards (with --shard)")
    a = p.add_argument_group("model").add_argument
    a("--model_path", type=str, required=True, help="the FINE-TUNED checkpoint folder that is scored")
    a("--kmer", type=int, default=None, help="k of the model (3..6); checked against --model_path (default: the model's)")
    a("--model_type", type=str, default="dna", help="must be 'dna'")
    a = p.add_argument_group("scores").add_argument
    a("--vis_task", type=str, required=True, choices=list(METHODS),
      help="; ".join(f"{m.kind}: {m.help}" for m in METHODS.values()))
    a("--layer", type=int, default=None,
      help="attn: layer whose attention is used (default last); attr: encoder layer whose output is "
           "attributed (default: the embeddings). Outputs are named *_layer_{layer}.npy")
    a("--attr_target", type=str, default=None, choices=["prob", "logodds"],
      help="new, attr: explain the true label's probability (the original's; saturates) or its log-odds (logit "
           "difference; does not saturate). Default logodds; prob with --dnabert_compat")
    a("--baseline", type=str, default=None, choices=["pad", "shuffle"],
      help="new, attr: the reference the attributions are measured from: pad (the original's all-[PAD] sequence) "
           "or shuffle (--n_baselines dinucleotide-shuffled copies of each sequence, attributions averaged). "
           "Default shuffle; pad with --dnabert_compat")
    a("--n_baselines", type=int, default=None,
      help=f"new, attr: shuffled references per sequence with --baseline shuffle (default {N_BASELINES})")
    a("--n_steps", type=int, default=None,
      help=f"new, attr: a fixed number of integration steps (Gauss-Legendre) per reference ({IG_STEPS_COMPAT} "
           f"with --dnabert_compat, the original's). Default: adaptive, {IG_FIRST_STEPS} steps first, doubled for "
           "the sequences whose attributions do not yet add up, up to --max_ig_steps")
    a("--max_ig_steps", type=int, default=None,
      help=f"new, attr: the cap of adaptive integration (default {IG_MAX_STEPS}); sequences still above "
           "--max_rel_delta and --max_abs_delta there are flagged")
    a("--seed", type=int, default=None, help="new, attr: seed of the shuffled references (default 42)")
    a("--max_rel_delta", type=float, default=None,
      help="new, attr: relative completeness error |delta| / |F(x) - F(baseline)| above which a sequence's "
           f"attributions are integrated further and, at the cap, reported as unreliable (attributions_*_qc.tsv; "
           f"default {MAX_REL_DELTA}) ...")
    a("--max_abs_delta", type=float, default=None,
      help=f"new, attr: ... unless its absolute error |delta| (log-odds or probability) is at most this (default "
           f"{MAX_ABS_DELTA}): a gap F(x) - F(baseline) too small for a ratio")
    a("--skip_unreliable", action="store_true",
      help="new, attr: leave the rows above --max_rel_delta out of the heatmaps and profiles")
    a("--ism_window", type=str, default=None,
      help="new, ism: START:END in nt relative to the site, half-open (e.g. -150:50 mutates -150..49); "
           "default: the whole sequence")
    a("--plot_ids", type=str, default=None,
      help="new, ism: rows (0-based) whose mutation map is drawn, e.g. 0,3,7, or none (default: the first positive)")
    a = p.add_argument_group("output").add_argument
    a("--output_dir", type=str, default="./results/", help="where the arrays and figures go (created)")
    a("--letters", type=str, default="rna", choices=["rna", "dna"],
      help="new: the letters of the mutation maps, A C G U (the windows are mRNA) or A C G T; arrays keep ACGT")
    a("--no_plot", action="store_true", help="new: do not draw the heatmap and profile figures")
    g = p.add_argument_group("hardware")
    a = g.add_argument
    a("--batch_size", type=int, default=50, help="sequences per forward pass (attn) or per Captum call (attr)")
    a("--internal_batch_size", type=int, default=None,
      help="new, attr: rows per forward pass inside Captum (default: --batch_size)")
    a("--ism_batch_size", type=int, default=256, help="new, ism: mutants per forward pass")
    add_device_args(g)
    a = p.add_argument_group("compatibility").add_argument
    a("--dnabert_compat", action="store_true",
      help="new: reproduce the original's numbers: unmasked padding to --max_seq_length, its [SEP] rule")
    compat_group(p, ("--model_name_or_path", dict(type=str, default=None,
                                                  help="the pretrained model; the original only named its feature cache after it")),
                 ("--metric", dict(type=str, default="mean", help="unused, as in the original")),
                 ("--local_rank", dict(type=int, default=-1, help="one process")))
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(_glue_window(argv))
    # sanity checks: one-line errors (exit 2 through @cli)
    _check_data(args)
    if args.kmer is not None and args.kmer not in (3, 4, 5, 6):
        raise InputError(f"--kmer must be 3, 4, 5 or 6, not {args.kmer}")
    check_common(args)
    resolve_max_seq_length(args, args.model_path)
    from ..utils import check_shard

    check_shard(args.shard, args.num_shards)
    _attr_defaults(args)
    if args.batch_size < 1 or (args.n_steps is not None and args.n_steps < 1) or args.max_ig_steps < 1:
        raise InputError("--batch_size, --n_steps and --max_ig_steps must be >= 1")
    if args.internal_batch_size is not None and args.internal_batch_size < 1:
        raise InputError("--internal_batch_size must be >= 1")
    if args.ism_batch_size < 1:
        raise InputError("--ism_batch_size must be >= 1")
    args.ism_window, args.plot_ids = parse_window(args.ism_window), parse_plot_ids(args.plot_ids)
    if args.vis_task != "ism" and (args.ism_window is not None or args.plot_ids is not None):
        raise InputError("--ism_window and --plot_ids apply to --vis_task ism only")
    check_fp16(args)
    if args.vis_task == "attr" and (args.bf16 or args.fp16):
        raise InputError("--bf16/--fp16 with --vis_task attr: integrated gradients in half precision do not add up "
                         "(measured: relative completeness errors about 1,000 times float32's, also with only the "
                         "encoder's matmuls in bf16; benchmarks/bench_ig_precision.py); attributions run in float32, "
                         "drop the flag")
    if not args.max_rel_delta > 0:
        raise InputError(f"--max_rel_delta must be > 0, not {args.max_rel_delta}")
    if not args.max_abs_delta >= 0:
        raise InputError(f"--max_abs_delta must be >= 0, not {args.max_abs_delta}")
    if args.dnabert_compat and args.attr_target != "prob":
        raise InputError("--dnabert_compat reproduces the original's probability target: drop --attr_target logodds")
    from ..attribution import check_baseline

    check_baseline(args.baseline, args.n_baselines, args.dnabert_compat)
    return args


FASTA_SUFFIXES = (".gz", ".bgz", ".fa", ".fasta", ".fna")
DATA_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


def _check_data(args: argparse.Namespace) -> None:
    """``--data_dir`` with ``--data_name`` train|dev|test|all, or ``--fasta`` (its outputs named by ``--data_name``,
    default the file's stem); ``--site_index`` only for a split (250 unless given)."""
    if args.fasta is not None and args.data_dir is not None:
        raise InputError("--fasta and --data_dir: give one (a FASTA to score, or a folder of split TSVs)")
    if args.fasta is None:
        if args.data_dir is None or args.data_name is None:
            raise InputError("give --data_dir and --data_name (a split), or --fasta FILE")
        if args.data_name not in ("train", "dev", "test", "all"):
            raise InputError(f"--data_name must be train, dev, test or all with --data_dir, not {args.data_name!r}")
        args.site_index = SITE_INDEX if args.site_index is None else args.site_index
        return
    if args.site_index is not None:
        raise InputError("--site_index does not apply to --fasta: each record's site is its header's site=N or the "
                         "window rule's")
    args.data_name = fasta_data_name(args.fasta, args.data_name)


def fasta_data_name(fasta: str, data_name: str | None) -> str:
    """The name of a FASTA's score files: ``data_name``, checked, or the FASTA's file name without
    ``.gz``/``.fa``/``.fasta``/``.fna`` (``cands.fa.gz`` -> ``cands``)."""
    if data_name is None:
        data_name = Path(fasta).name
        while any(data_name.endswith(x) for x in FASTA_SUFFIXES) and "." in data_name[1:]:
            data_name = data_name[: data_name.rindex(".")]
    if not DATA_NAME.match(data_name) or data_name == "all":
        raise InputError(f"--data_name {data_name!r} must be a file name stem (letters, digits, _ . + -; not "
                         "all): it names the score files of --fasta")
    return data_name


def _attr_defaults(args: argparse.Namespace) -> None:
    """The attribution settings left unset: the original's with --dnabert_compat (probability, [PAD],
    50 steps), otherwise log-odds against N_BASELINES dinucleotide shuffles, integrated adaptively (IG_FIRST_STEPS
    doubled up to IG_MAX_STEPS) unless --n_steps fixes the count."""
    attr_only = ("attr_target", "baseline", "n_baselines", "n_steps", "max_ig_steps", "max_abs_delta", "seed",
                 "internal_batch_size")
    given = [f for f in attr_only if getattr(args, f) is not None]
    if args.vis_task != "attr" and given:
        raise InputError(f"--{given[0]} applies to --vis_task attr only")
    qc_only = (["max_rel_delta"] if args.max_rel_delta is not None else []) + (
        ["skip_unreliable"] if args.skip_unreliable else [])
    if args.vis_task not in with_qc() and qc_only:
        raise InputError(f"--{qc_only[0]} applies to --vis_task {' or '.join(with_qc())} only")
    if args.max_ig_steps is not None and (args.n_steps is not None or args.dnabert_compat):
        raise InputError("--max_ig_steps caps adaptive integration: drop --n_steps (a fixed count)"
                         + (" and --dnabert_compat (the original's 50 fixed steps)" if args.dnabert_compat else ""))
    args.seed = 42 if args.seed is None else args.seed
    args.max_rel_delta = MAX_REL_DELTA if args.max_rel_delta is None else args.max_rel_delta
    args.max_abs_delta = MAX_ABS_DELTA if args.max_abs_delta is None else args.max_abs_delta
    args.max_ig_steps = IG_MAX_STEPS if args.max_ig_steps is None else args.max_ig_steps
    compat = args.dnabert_compat
    if args.attr_target is None:
        args.attr_target = "prob" if compat else "logodds"
    if args.baseline is None:
        args.baseline = "pad" if compat else "shuffle"
    if args.n_baselines is None:
        args.n_baselines = N_BASELINES if args.baseline == "shuffle" else 1
    if args.n_steps is None and compat:
        args.n_steps = IG_STEPS_COMPAT  # otherwise None: adaptive


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from ..commands.visualize import VisualizeSettings, visualize
    from ..utils import resolve_device
    from .common import keep_freed_memory, log_start, precision_of

    device = resolve_device(args.no_cuda)
    args.runtime = log_start(args, device, 1, precision_of(args))
    keep_freed_memory(args.runtime, device)
    s = VisualizeSettings(
        model_path=args.model_path, data_dir=args.data_dir, data_name=args.data_name, vis_task=args.vis_task,
        output_dir=args.output_dir, k=args.kmer, max_seq_length=args.max_seq_length, layer=args.layer,
        batch_size=args.batch_size, n_steps=args.n_steps, max_ig_steps=args.max_ig_steps,
        internal_batch_size=args.internal_batch_size, max_abs_delta=args.max_abs_delta,
        dnabert_compat=args.dnabert_compat, plot=not args.no_plot,
        site_index=SITE_INDEX if args.site_index is None else args.site_index, run_args=vars(args),
        precision=precision_of(args),
        attr_target=args.attr_target, baseline=args.baseline, n_baselines=args.n_baselines, seed=args.seed,
        max_rel_delta=args.max_rel_delta, skip_unreliable=args.skip_unreliable,
        ism_window=args.ism_window, plot_ids=args.plot_ids, ism_batch_size=args.ism_batch_size, letters=args.letters,
        shard=args.shard, num_shards=args.num_shards, fasta=args.fasta,
    )
    return visualize(s, device)


main = command(run)
