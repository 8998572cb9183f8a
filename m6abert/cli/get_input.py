"""FASTA (pos.fa, neg.fa) -> balanced, split, k-merised train/dev/test.tsv; or a pretraining corpus.

Same flags and defaults as the original get_input.py, plus --pos_fasta, --neg_fasta, --n_folds, --neg_ratio,
--group_overlap and --fasta; leakage.json reports the windows of one locus on both sides of the split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..utils import InputError
from .common import check_n_folds, check_seed, command, new_parser


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("--do_val", action="store_true", help="Whether to split validation data.")
    p.add_argument("--kmer", type=int, required=True, help="how many mer should be generated (3..6)")
    p.add_argument("--extend_len", type=int, required=True,
                   help="nt kept each side of the m6A site (250 keeps the 501-nt windows whole; the site rule: README, m6abert.sites)")
    p.add_argument("--task", type=str, required=True, choices=["finetune", "pretrain"],
                   help="data should be generated for which task, choose from pretrain or finetune")
    p.add_argument("--data_dir", type=str, required=True, help="load data from which dir")
    p.add_argument("--pos_fasta", type=str, default=None, metavar="FILE",
                   help="finetune: FASTA of the positives to read instead of DATA_DIR/pos.fa (gzip/bgzip too)")
    p.add_argument("--neg_fasta", type=str, default=None, metavar="FILE",
                   help="finetune: FASTA of the negatives to read instead of DATA_DIR/neg.fa (gzip/bgzip too)")
    p.add_argument("--save_dir", type=str, required=True, help="save data to which dir (created)")
    p.add_argument("--seed", type=int, default=52, help="random seed")
    p.add_argument("--n_folds", type=int, default=None,
                   help="write fold_{i}/train.tsv and fold_{i}/dev.tsv for stratified N-fold CV")
    p.add_argument("--neg_ratio", type=int, default=1, help="negatives kept per positive")
    p.add_argument("--group_overlap", type=int, default=0, metavar="K",
                   help="keep windows that share an exact K-nt stretch (1..32; 30 is a locus) in one split or fold, "
                        "class-stratified (scikit-learn's StratifiedGroupKFold), and write groups.tsv; 0: the "
                        "original's random split. leakage.json reports the split's cross-part pairs either way")
    p.add_argument("--fasta", type=str, default=None,
                   help="pretrain: read this FASTA instead of DATA_DIR/pretrain.fa")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    # sanity checks: one-line errors (exit 2 through @cli)
    if args.kmer not in (3, 4, 5, 6):
        raise InputError(f"--kmer must be 3, 4, 5 or 6, not {args.kmer}")
    if args.extend_len < 0:
        raise InputError("--extend_len must be >= 0")
    if args.neg_ratio < 1:
        raise InputError("--neg_ratio must be >= 1")
    if args.n_folds is not None and args.task != "finetune":
        raise InputError("--n_folds applies to --task finetune")
    if not 0 <= args.group_overlap <= 32:
        raise InputError(f"--group_overlap must be 0 (off) or in 1..32 nt, not {args.group_overlap}")
    if args.group_overlap and args.task != "finetune":
        raise InputError("--group_overlap applies to --task finetune")
    for flag in ("pos_fasta", "neg_fasta"):
        if getattr(args, flag) is not None and args.task != "finetune":
            raise InputError(f"--{flag} applies to --task finetune")
    check_n_folds(args)
    check_seed(args)
    if args.task == "finetune":
        labelled_sources(args)  # a missing file is refused before any work
    return args


def labelled_sources(args: argparse.Namespace):
    """The positives and negatives of the flags: ``--pos_fasta`` / ``--neg_fasta``, else ``--data_dir``'s
    ``pos.fa`` / ``neg.fa`` (one line naming a missing file)."""
    from ..io import LabelledSources

    return LabelledSources.from_args(args.data_dir, args.pos_fasta, args.neg_fasta)


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from ..commands.get_input import make_inputs
    from ..utils import set_seed

    set_seed(args.seed)

    finetune = args.task == "finetune"
    written = make_inputs(
        args.task, labelled_sources(args) if finetune else None, args.save_dir, args.kmer, seed=args.seed,
        do_val=args.do_val, extend_len=args.extend_len, n_folds=args.n_folds, neg_ratio=args.neg_ratio,
        fasta=None if finetune else args.fasta or str(Path(args.data_dir) / "pretrain.fa"), run_args=vars(args),
        group_overlap=args.group_overlap,
    )
    print(f"wrote {len(written)} files to {args.save_dir}")


main = command(run)
