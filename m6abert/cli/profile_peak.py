"""Print where the smoothed mean score profile of positives (or negatives) peaks, relative to the site.

Reads DATA_DIR/{data_name}.tsv with NPY_DIR/atten_{data_name}.npy (--vis_task attn),
attributions_{data_name}.npy (attr) or ism_summary_{data_name}.npy (ism), as written by
visualize_all.py. Prints one line, e.g. "attribution profile of positives peaks at -98 nt".
Usage: python -m m6abert.cli.profile_peak --data_dir DATA --npy_dir VIS --data_name all --vis_task attr
"""

from __future__ import annotations

import argparse

from ..constants import SITE_INDEX
from ..score_methods import METHODS
from ..utils import InputError
from .common import command, new_parser


def build_parser() -> argparse.ArgumentParser:
    from ..profiles import SMOOTH

    p = new_parser(__doc__, raw=True)
    p.add_argument("--data_dir", type=str, default=None, help="folder of {data_name}.tsv (or give --fasta)")
    p.add_argument("--fasta", type=str, default=None,
                   help="the FASTA that visualize_all.py --fasta scored (labelled by label=1/label=0 headers; rows "
                        "aligned on each record's own site), instead of --data_dir")
    p.add_argument("--npy_dir", type=str, required=True, help="folder of the score arrays")
    p.add_argument("--data_name", type=str, default=None,
                   help="train, dev, test (the TSV stem) or all; with --fasta the name visualize_all.py --fasta gave "
                        "(default: the FASTA's stem)")
    p.add_argument("--vis_task", type=str, required=True, choices=sorted(METHODS),
                   help="; ".join(f"{m.kind}: {m.stem}_*.npy" for m in METHODS.values()))
    p.add_argument("--set", type=str, default="pos", choices=["pos", "neg"],
                   help="pos: the label-1 rows; neg: the label-0 rows")
    p.add_argument("--smooth", type=int, default=SMOOTH, help="width of the centred moving average (odd; 1: none)")
    p.add_argument("--site_index", type=int, default=SITE_INDEX, help="sequence index of the m6A site")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    from .motifs import check_data_or_fasta

    check_data_or_fasta(args)
    if args.smooth < 1 or args.smooth % 2 == 0:
        raise InputError(f"--smooth must be an odd number >= 1, not {args.smooth}")
    return args


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from ..commands.motifs import profile_peak_of_files

    label = 1 if args.set == "pos" else 0
    peak = profile_peak_of_files(args.data_dir, args.npy_dir, args.data_name, args.vis_task, label, args.smooth,
                                 args.site_index, args.fasta)
    who = "positives" if label else "negatives"
    print(f"{METHODS[args.vis_task].name} profile of {who} peaks at {peak:+d} nt")


main = command(run)

if __name__ == "__main__":
    raise SystemExit(main())
