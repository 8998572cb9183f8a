"""Predict degradation probabilities with a fine-tuned m6A-BERT-Deg model.

Takes the original run_predict_degradation.py command unchanged, e.g.
  python run_predict_degradation.py --model_type dna --tokenizer_name=dna$KMER \\
    --model_name_or_path $MODEL_PATH --task_name dnaprom --data_dir $DATA_PATH --do_predict \\
    --max_seq_length 512 --output_dir $OUTPUT_PATH/checkpoint-# --predict_dir $OUTPUT_PATH
Reads DATA_DIR/test.tsv (or --predict_fasta FILE) and writes PREDICT_DIR/pred_results.npy,
predictions.tsv and pred_metrics.json (and, with --variants, variant_effects.tsv). predictions.tsv names
each record (DATA_DIR/records.tsv's ids, or the FASTA's) with its genome coordinates when known, and
predictions.bed places the sites' P(degraded) in the genome. Training flags
the original README passed along (--save_steps, --logging_steps, --per_gpu_train_batch_size,
--learning_rate, --num_train_epochs) are accepted and ignored; other training flags (--do_train, ...)
are refused: this command only predicts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..utils import InputError
from .common import (
    add_device_args,
    check_at_least_one,
    check_common,
    check_fp16,
    command,
    compat_group,
    new_parser,
    resolve_max_seq_length,
)

IGNORED = (
    ("--model_name_or_path", dict(type=str, default=None,
                                  help="the pretrained model; the original loaded it and never used it")),
    ("--do_predict", dict(action="store_true", help="prediction always runs")),
    ("--do_eval", dict(action="store_true", help="metrics of a labelled test.tsv go to pred_metrics.json")),
    ("--evaluate_during_training", dict(action="store_true", help="nothing is trained")),
    ("--per_gpu_eval_batch_size", dict(type=int, default=8,
                                       help="as in the original, prediction uses --per_gpu_pred_batch_size")),
    ("--n_process", dict(type=int, default=2, help="tokenisation is vectorised")),
    ("--cache_dir", dict(type=str, default="", help="no feature caches are written")),
    ("--overwrite_cache", dict(action="store_true", help="no feature caches are written")),
    ("--config_name", dict(type=str, default="")),
    ("--visualize_data_dir", dict(type=str, default=None)),
    ("--result_dir", dict(type=str, default=None)),
    ("--predict_scan_size", dict(type=int, default=1)),
    ("--visualize_models", dict(type=int, default=None)),
    ("--fp16_opt_level", dict(type=str, default="O1", help="apex levels are gone")),
    ("--local_rank", dict(type=int, default=-1, help="prediction runs in one process")),
    ("--seed", dict(type=int, default=42, help="prediction draws no random numbers")),
    # training flags the original README's prediction command passes (nothing is trained here)
    ("--save_steps", dict(type=int, default=500, help="nothing is trained or saved")),
    ("--logging_steps", dict(type=int, default=500, help="nothing is trained")),
    ("--per_gpu_train_batch_size", dict(type=int, default=8, help="nothing is trained")),
    ("--learning_rate", dict(type=float, default=5e-5, help="nothing is trained")),
    ("--num_train_epochs", dict(type=float, default=3.0, help="nothing is trained")),
)


def build_parser() -> argparse.ArgumentParser:
    """The original's prediction flags (those marked "new" are m6abert's), grouped by purpose; the
    ignored ones (training flags the original README passed included) in one group."""
    p = new_parser(__doc__, raw=True)
    a = p.add_argument_group("data").add_argument
    a("--data_dir", type=str, default=None, help="folder with test.tsv (not needed with --predict_fasta)")
    a("--predict_fasta", type=str, default=None,
      help="new: predict the records of this FASTA instead of test.tsv (predictions.tsv by record id; with "
           "chrom:pos:strand headers also the coordinates and predictions.bed)")
    a("--variants", type=str, default=None,
      help="new: TSV of substitutions 'id pos ref alt' in --predict_fasta's records (optional header line): also "
           "write variant_effects.tsv (p_ref, p_alt, delta_p, delta_logodds)")
    a("--pos_relative_to_site", action="store_true",
      help="new: --variants positions count from the record's m6A site (0: the site, negative: upstream) instead "
           "of 1-based from the record's start")
    a("--task_name", type=str, default="dnaprom", help="must be 'dnaprom' (binary classification)")
    a("--max_seq_length", type=int, default=None,
      help="tokens incl. [CLS]/[SEP]; default: the model's max_position_embeddings (512 for DNABERT-style models)")
    a("--chunk_records", type=int, default=4096,
      help="new: --predict_fasta is streamed in chunks of this many records (the unit shards are cut in; give the "
           "same value to every shard)")
    a("--shard", type=int, default=None,
      help="new: with --predict_fasta, predict only shard I (0-based) of --num_shards, a contiguous block of the "
           "FASTA's records in whole --chunk_records chunks; join the shards with merge_shards.py")
    a("--num_shards", type=int, default=None, help="new: the number of shards (with --shard)")
    a = p.add_argument_group("model").add_argument
    a("--output_dir", type=str, required=True, help="the FINE-TUNED model folder (or a checkpoint-N in it)")
    a("--model_type", type=str, default="dna", help="must be 'dna' (BertForSequenceClassification)")
    a("--tokenizer_name", type=str, default="", help="dna3..dna6; must match the model's k (default: the model's)")
    a = p.add_argument_group("output").add_argument
    a("--predict_dir", type=str, default=None, help="output folder of the predictions (default: --output_dir)")
    g = p.add_argument_group("hardware")
    g.add_argument("--per_gpu_pred_batch_size", type=int, default=8, help="sequences per forward pass")
    add_device_args(g)
    a = p.add_argument_group("compatibility").add_argument
    a("--dnabert_compat", action="store_true",
      help="new: reproduce the original's unmasked padding (pad to max_seq_length, +1/0 mask, eager)")
    compat_group(p, *IGNORED)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    check_common(args)
    check_at_least_one(args, ("per_gpu_pred_batch_size",))
    if args.variants is not None and not args.predict_fasta:
        raise InputError("--variants needs --predict_fasta (the FASTA whose records the variants refer to)")
    if args.pos_relative_to_site and args.variants is None:
        raise InputError("--pos_relative_to_site needs --variants")
    from ..utils import check_shard

    check_shard(args.shard, args.num_shards)
    if args.shard is not None and not args.predict_fasta:
        raise InputError("--shard needs --predict_fasta (test.tsv is not sharded)")
    check_at_least_one(args, ("chunk_records",))
    check_fp16(args)
    if args.data_dir is None and not args.predict_fasta:
        raise InputError("--data_dir is required (the folder with test.tsv) unless --predict_fasta is given")
    resolve_max_seq_length(args, args.output_dir)
    return args


def run(argv: list[str] | None = None) -> dict | list[dict]:
    args = parse_args(argv)
    from ..commands.predict import run_prediction
    from ..utils import resolve_device
    from .common import log_start, precision_of, tokenizer_k

    device = resolve_device(args.no_cuda)
    args.runtime = log_start(args, device, 1, precision_of(args))
    common = dict(k=tokenizer_k(args.tokenizer_name), max_seq_length=args.max_seq_length,
                  batch_size=args.per_gpu_pred_batch_size, dnabert_compat=args.dnabert_compat, device=device,
                  precision=precision_of(args), run_args=vars(args))
    if args.predict_fasta:  # streamed in chunks (--variants, --shard), one output set
        common.update(variants=args.variants, shard=args.shard, num_shards=args.num_shards,
                      chunk_records=args.chunk_records, pos_relative_to_site=args.pos_relative_to_site)
        return run_prediction(args.output_dir, args.predict_dir or args.output_dir, fasta=args.predict_fasta, **common)
    return run_prediction(args.output_dir, args.predict_dir or args.output_dir,
                          tsv=Path(args.data_dir) / "test.tsv", **common)


main = command(run)
