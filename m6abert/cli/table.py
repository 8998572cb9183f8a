"""Reproduce the paper's comparison table: m6A-BERT-Deg against four baselines on the same folds.

Models (on the stratified folds of get_input.py --n_folds --group_overlap 30, seed 52: windows of
one locus never on both sides): m6A-BERT-Deg (pretrained once, then fine-tuned per fold), BERT-Deg
without pretraining, CNN+LSTM-Deg, k-mer frequency logistic regression (k chosen by a grouped inner
CV on the training folds) and GC-content logistic regression. --folds both adds the random folds.
The default pretraining corpus is the negatives that balanced sampling did not use (label-selected),
less every sequence sharing a 30-nt stretch with a fold window. E.g. a reduced run on a CPU:
  python reproduce_table.py --data_path $DATA_PATH --output_dir table_out --kmer 3 --config_name mini \\
    --folds both --pretrain_steps 1000 --finetune_epochs 3 --cnn_epochs 10 --bf16
Writes table.md, table.json, per_fold.tsv, oof_predictions.tsv, leakage.json, roc/auc_per_fold/
calibration .png/.pdf, table_args.json, timings.json; every model/fold result goes to runs/ as it
finishes (resume with --should_continue).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..table_models import model_names
from ..utils import InputError
from .common import SEED_RULE, _finite_above, check_n_folds, check_rules, command, new_parser

PRESETS = ("bert-base", "mini", "tiny")


RULES = (
    SEED_RULE,
    ("kmer", "in 3..6", lambda v: 3 <= v <= 6),
    ("pretrain_steps", "at least 1", lambda v: v >= 1),
    ("pretrain_batch_size", "at least 1", lambda v: v >= 1),
    ("batch_size", "at least 1", lambda v: v >= 1),
    ("pretrain_learning_rate", "a finite number > 0", _finite_above(0.0)),
    ("learning_rate", "a finite number > 0", _finite_above(0.0)),
    ("cnn_learning_rate", "a finite number > 0", _finite_above(0.0)),
    ("finetune_epochs", "a finite number > 0", _finite_above(0.0)),
    ("cnn_epochs", "a finite number > 0", _finite_above(0.0)),
    ("max_lr_k", "in 1..6", lambda v: 1 <= v <= 6),
    ("inner_folds", "at least 2", lambda v: v >= 2),
    ("n_bootstrap", "at least 100", lambda v: v >= 100),
    ("save_steps", ">= 0 (0: no checkpoints inside a fold)", lambda v: v >= 0),
    ("group_overlap", "in 1..32 nt", lambda v: 1 <= v <= 32),
)


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__, raw=True)
    a = p.add_argument
    a("--data_path", type=str, default="../shared/data/m6a_deg", help="folder with pos.fa and neg.fa")
    a("--pos_fasta", type=str, default=None, metavar="FILE",
      help="FASTA of the positives (degraded) to read instead of DATA_PATH/pos.fa (gzip/bgzip too)")
    a("--neg_fasta", type=str, default=None, metavar="FILE",
      help="FASTA of the negatives to read instead of DATA_PATH/neg.fa (gzip/bgzip too)")
    a("--output_dir", type=str, required=True, help="where the table, figures and runs/ are written")
    a("--kmer", type=int, default=3, help="k of the BERT models' k-mers (3..6)")
    a("--config_name", type=str, default="mini",
      help="BERT size: bert-base (12x768x12, the paper's), mini (4x256x4), tiny (2x64x2) or a config.json")
    a("--models", type=str, default=",".join(model_names()),
      help=f"comma-separated subset of {','.join(model_names())} (default: all; m6abert.table_models.register adds more)")
    a("--n_folds", type=int, default=5, help="stratified cross-validation folds (get_input.py --n_folds)")
    a("--folds", type=str, default="grouped", metavar="{grouped,random,both}",
      help="grouped: windows sharing an exact K-nt stretch (--group_overlap) in one fold, and in one inner fold of "
           "the k-mer LR; random: the earlier protocol (windows of one locus may sit in different folds); both: "
           "the two on the same windows, with what the leak does to each model (the mode to report)")
    a("--group_overlap", type=int, default=30, metavar="K",
      help="nt two windows must share exactly to be one locus (1..32): the grouped folds, the cluster bootstrap "
           "and the pretraining corpus (a corpus sequence sharing K nt with a fold window is dropped)")
    a("--seed", type=int, default=52, help="seed of the folds, the sampling and every model (52: the paper's data)")
    a("--pretrain_corpus", type=str, default=None,
      help="FASTA to pretrain on (default: the negatives balanced sampling did not use: label-selected)")
    a("--pretrain_per_fold", action="store_true",
      help="label-neutral pretraining: once per protocol and fold, on every positive and negative window that shares "
           "no K-nt stretch with the fold's held-out windows (5 pretrainings a protocol instead of 1)")
    a("--pretrain_steps", type=int, default=1000, help="masked-LM optimisation steps")
    a("--pretrain_batch_size", type=int, default=16)
    a("--pretrain_learning_rate", type=float, default=4e-4)
    a("--finetune_epochs", type=float, default=3.0, help="fine-tuning epochs of both BERTs")
    a("--learning_rate", type=float, default=5e-5, help="fine-tuning learning rate of both BERTs")
    a("--batch_size", type=int, default=16, help="fine-tuning and CNN+LSTM batch size (and prediction)")
    a("--cnn_epochs", type=float, default=10.0, help="CNN+LSTM training epochs")
    a("--cnn_learning_rate", type=float, default=1e-3)
    a("--max_lr_k", type=int, default=6, help="the k-mer LR chooses k in 1..MAX_LR_K by inner CV")
    a("--inner_folds", type=int, default=5, help="inner CV folds of the k-mer LR (training folds only)")
    a("--n_bootstrap", type=int, default=2000, help="paired bootstrap resamples of the AUC differences")
    a("--save_steps", type=int, default=0,
      help="checkpoint BERT pretraining/fine-tuning every N steps (resume inside a fold); 0: resume per fold")
    a("--bf16", action="store_true", help="bfloat16 autocast for the BERTs (the CNN+LSTM stays float32)")
    a("--no_cuda", action="store_true")
    a("--should_continue", action="store_true", help="resume a killed run in output_dir where it stopped")
    a("--overwrite_output_dir", action="store_true", help="allow a non-empty output_dir (its earlier table run is removed)")
    return p


def _models(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in model_names()]
    if bad or not names:
        raise InputError(f"--models must be a comma-separated subset of {','.join(model_names())}, not {text!r}")
    if len(set(names)) != len(names):
        raise InputError(f"--models names a model twice: {text!r}")
    return names


def check_args(args: argparse.Namespace) -> None:
    """Every flag's value, before any work: ranges, models, the BERT config, the data and corpus files."""
    check_rules(args, RULES)
    if args.folds not in ("grouped", "random", "both"):
        raise InputError(f"--folds must be grouped, random or both, not {args.folds!r}")
    check_n_folds(args)
    args.models = _models(args.models)
    if args.config_name not in PRESETS and not Path(args.config_name).is_file():
        raise InputError(f"--config_name must be bert-base, mini, tiny or a config.json file, not {args.config_name!r}")
    labelled_sources(args)  # a missing --pos_fasta / --neg_fasta, or pos.fa / neg.fa in --data_path
    if args.pretrain_per_fold and args.pretrain_corpus is not None:
        raise InputError("--pretrain_per_fold builds its own corpus per fold; drop --pretrain_corpus")
    if args.pretrain_corpus is not None and not Path(args.pretrain_corpus).is_file():
        raise InputError(f"--pretrain_corpus {args.pretrain_corpus}: file not found")


def labelled_sources(args: argparse.Namespace):
    """The positives and negatives of the flags: ``--pos_fasta`` / ``--neg_fasta``, else ``--data_path``'s
    ``pos.fa`` / ``neg.fa``; a missing file is refused (one line naming it)."""
    from ..io import LabelledSources

    return LabelledSources.from_args(args.data_path, args.pos_fasta, args.neg_fasta)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    check_args(args)
    return args


def settings(args: argparse.Namespace):
    """The library's :class:`~m6abert.commands.table.TableSettings` of parsed flags."""
    from ..commands.table import TableSettings

    flags = dict(vars(args))
    fields = {f: flags[f] for f in TableSettings.__dataclass_fields__ if f in flags}
    return TableSettings(k=args.kmer, kmer_ks=tuple(range(1, args.max_lr_k + 1)),
                         run_args={**flags, "models": list(args.models)}, sources=labelled_sources(args), **fields)


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from ..commands.table import run_table
    from ..utils import resolve_device, set_seed
    from .common import keep_freed_memory, log_start, precision_of

    device = resolve_device(args.no_cuda)
    args.runtime = log_start(args, device, 1, precision_of(args))
    keep_freed_memory(args.runtime, device)
    set_seed(args.seed)
    return run_table(settings(args))


main = command(run)
