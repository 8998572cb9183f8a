"""Merge the shards of a sharded prediction (run_predict_degradation.py --shard I --num_shards N) or of
sharded scores (visualize_all.py --shard I --num_shards N).

  python merge_shards.py --output_dir $OUT/merged $OUT/shard_*
joins every shard's pred_results.npy, predictions.tsv and variant_effects.tsv in the FASTA's
input order (the variants in table order): the files equal an unsharded run's byte for byte.
For visualize_all.py shards, the score arrays (atten_*, attributions_*, attributions_signed_*,
ism_*, ism_summary_*, pred_results_*) are joined in row order with their .npy.json and the
attributions_*_qc.tsv tables; figures are not merged (each shard drew its own rows').
Every shard of the run must be given, once; shards of another run (another model, data or flags
that change the results: each shard records them), tables that do not match their shard's record,
an --output_dir inside a shard and a shard that a live run is writing are refused.
"""

from __future__ import annotations

import argparse

from .common import command, new_parser


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__, raw=True)
    p.add_argument("shard_dirs", nargs="+", help="the --predict_dir (shard.json) or visualize_all.py --output_dir of every shard")
    p.add_argument("--output_dir", required=True, help="folder of the merged files (merge_args.json names the shards)")
    return p


def run(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    from ..commands.merge import merge

    return merge(args.shard_dirs, args.output_dir)


main = command(run)
