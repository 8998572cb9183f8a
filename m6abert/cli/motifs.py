"""Find motifs enriched in high-score regions of positives (or negatives) from saved score arrays.

Reads DATA_DIR/{data_name}.tsv and NPY_DIR/atten_{data_name}.npy (--vis_task attn) or
NPY_DIR/attributions_{data_name}.npy (--vis_task attr), as written by visualize_all.py; or, with
--fasta FILE, the FASTA that visualize_all.py --fasta scored (labelled by label=1/label=0 headers).
Writes SAVE_FILE_DIR/motifs_{set}.tsv, motifs_{set}.json and, in SAVE_FILE_DIR/{set}/,
motif_{MOTIF}_{N}.txt with a sequence logo motif_{MOTIF}_{N}_logo.png for each motif.
Flags are the original visualize_find_motif_{pos,neg}.py's, plus --set, --site_index and --background.
"""

from __future__ import annotations

import argparse

from ..constants import MAX_ABS_DELTA, MAX_REL_DELTA, SITE_INDEX
from ..score_methods import METHODS, with_qc
from ..utils import InputError
from .common import command, compat_group, new_parser


def build_parser() -> argparse.ArgumentParser:
    from ..motifs import MIN_LEN, MIN_N_MOTIF, PVAL_CUTOFF, WINDOW_SIZE

    p = new_parser(__doc__, raw=True)
    p.add_argument("--set", type=str, default="pos", choices=["pos", "neg"],
                   help="pos: motifs enriched in label-1 sequences (their scores); neg: in label-0 sequences")
    p.add_argument("--data_dir", type=str, default=None, help="folder of {data_name}.tsv (or give --fasta)")
    p.add_argument("--fasta", type=str, default=None,
                   help="new: the FASTA that visualize_all.py --fasta scored, instead of --data_dir; its records are "
                        "labelled by label=1/label=0 header words and positions count from each record's own site")
    p.add_argument("--npy_dir", type=str, required=True, help="folder of atten_*.npy / attributions_*.npy / ism_summary_*.npy")
    p.add_argument("--window_size", type=int, default=WINDOW_SIZE, help="length of the motif windows")
    p.add_argument("--min_len", type=int, default=MIN_LEN, help="shortest high-score region")
    p.add_argument("--pval_cutoff", type=float, default=PVAL_CUTOFF,
                   help="keep motifs with Benjamini-Hochberg adjusted p below this")
    p.add_argument("--min_n_motif", type=int, default=MIN_N_MOTIF, help="fewest windows a reported motif has")
    p.add_argument("--align_all_ties", action="store_true",
                   help="merge a motif into every best-scoring key, not only the first")
    p.add_argument("--save_file_dir", type=str, default=".", help="output folder (created)")
    p.add_argument("--data_name", type=str, default=None,
                   help="train, dev or test (the TSV stem), or all (train + dev + test); with --fasta the name "
                        "visualize_all.py --fasta gave (default: the FASTA's stem)")
    p.add_argument("--do_plot", action="store_true", help="also draw heatmap_{data_name}.png of all scores")
    p.add_argument("--vis_task", type=str, required=True, choices=list(METHODS),
                   help="; ".join(f"{m.kind}: {m.stem}_{{data_name}}.npy" for m in METHODS.values())
                   + " (ism: use a smaller --min_len, its peaks are sharp)")
    p.add_argument("--site_index", type=int, default=SITE_INDEX,
                   help="sequence index of the m6A site; reported positions are relative to it")
    p.add_argument("--background", type=str, default="sequences", choices=["sequences", "motif_counts"],
                   help="hypergeometric background: sequences (DNABERT) or motif_counts (the m6A original)")
    p.add_argument("--skip_unreliable", action="store_true",
                   help="attr: leave out the target sequences whose attributions do not add up (relative "
                        "completeness error above --max_rel_delta in visualize_all.py's attributions_*_qc.tsv)")
    p.add_argument("--max_rel_delta", type=float, default=MAX_REL_DELTA,
                   help="with --skip_unreliable: the relative completeness error above which a row is left out ...")
    p.add_argument("--max_abs_delta", type=float, default=MAX_ABS_DELTA,
                   help="... unless its absolute error (target units) is at most this (a gap too small for a ratio)")
    p.add_argument("--letters", type=str, default="rna", choices=["rna", "dna"],
                   help="new: the logos' letters, A C G U (the windows are mRNA) or A C G T; tables keep ACGT")
    compat_group(p, ("--return_idx", dict(action="store_true", help="it crashed the original")))
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    # sanity checks: one-line errors (exit 2 through @cli)
    check_data_or_fasta(args)
    if args.window_size < 1 or args.min_len < 1 or args.min_n_motif < 1:
        raise InputError("--window_size, --min_len and --min_n_motif must be >= 1")
    if not 0 < args.pval_cutoff <= 1:
        raise InputError("--pval_cutoff must be in (0, 1]")
    if not args.max_rel_delta > 0:
        raise InputError(f"--max_rel_delta must be > 0, not {args.max_rel_delta}")
    if not args.max_abs_delta >= 0:
        raise InputError(f"--max_abs_delta must be >= 0, not {args.max_abs_delta}")
    if args.skip_unreliable and args.vis_task not in with_qc():
        raise InputError(f"--skip_unreliable applies to --vis_task {' or '.join(with_qc())} (the completeness of "
                         "attributions)")
    return args


def check_data_or_fasta(args: argparse.Namespace) -> None:
    """``--data_dir`` with ``--data_name``, or ``--fasta`` (``--data_name`` defaulting to its stem)."""
    if args.fasta is not None and args.data_dir is not None:
        raise InputError("--fasta and --data_dir: give one (the FASTA that visualize_all.py --fasta scored, or the "
                         "folder of split TSVs)")
    if args.fasta is None and (args.data_dir is None or args.data_name is None):
        raise InputError("give --data_dir and --data_name (a split), or --fasta FILE")
    if args.fasta is not None:
        from .visualize import fasta_data_name

        args.data_name = fasta_data_name(args.fasta, args.data_name)


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from ..commands.motifs import find_motifs

    motifs = find_motifs(
        args.data_dir, args.npy_dir, args.data_name, args.vis_task, save_dir=args.save_file_dir,
        set_name=args.set, window_size=args.window_size, min_len=args.min_len,
        pval_cutoff=args.pval_cutoff, min_n_motif=args.min_n_motif, align_all_ties=args.align_all_ties,
        background=args.background, site_index=args.site_index, do_plot=args.do_plot,
        verbose=args.verbose, run_args=vars(args), skip_unreliable=args.skip_unreliable,
        max_rel_delta=args.max_rel_delta, max_abs_delta=args.max_abs_delta, letters=args.letters, fasta=args.fasta,
    )
    print(f"{len(motifs)} {args.set} motifs written to {args.save_file_dir}")


main = command(run)
