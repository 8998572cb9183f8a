"""Leakage report of an existing split folder: pairs of windows in different parts that share an
exact K-nt stretch (overlapping windows of one locus), by label pair.

Reads fold_{i}/dev.tsv (folds) or train/dev/test.tsv in --data_dir, as get_input.py writes them,
and writes leakage.json (by default into --data_dir) and one log line. A split made with
get_input.py --group_overlap K reports 0 pairs at that K.
  m6abert-leakage --data_dir $DATA_PATH --group_overlap 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..utils import InputError
from .common import command, new_parser


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__, raw=True)
    p.add_argument("--data_dir", type=str, required=True, help="folder with train/dev/test.tsv or fold_*/dev.tsv")
    p.add_argument("--group_overlap", type=int, default=30, metavar="K",
                   help="the stretch length (nt, 1..32) two windows must share to count as one locus")
    p.add_argument("--output", type=str, default=None, help="report file (default: DATA_DIR/leakage.json)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if not 1 <= args.group_overlap <= 32:
        raise InputError(f"--group_overlap must be in 1..32 nt, not {args.group_overlap}")
    if not Path(args.data_dir).is_dir():
        raise InputError(f"--data_dir {args.data_dir}: not a directory")
    return args


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from .. import io
    from ..commands.leakage import split_dir_leakage
    from ..groups import leakage_line
    from ..utils import log

    report = split_dir_leakage(args.data_dir, args.group_overlap)
    output = Path(args.output) if args.output else Path(args.data_dir) / "leakage.json"
    io.write_json(output, report)
    log.info(leakage_line(report, str(output)))
    return report


main = command(run)
