"""Pretrain m6A-BERT: masked-LM training of a k-mer BERT (DNABERT's examples/run_pretrain.py).

Takes DNABERT's flags, e.g. its README recipe (k=6):
  python run_pretrain.py --output_dir $OUTPUT_PATH --model_type dna --tokenizer_name dna$KMER \
    --config_name bert-base --do_train --train_data_file $TRAIN_FILE --do_eval --eval_data_file $TEST_FILE \
    --mlm --gradient_accumulation_steps 25 --per_gpu_train_batch_size 10 --per_gpu_eval_batch_size 6 \
    --save_steps 500 --save_total_limit 20 --max_steps 200000 --evaluate_during_training --logging_steps 500 \
    --line_by_line --learning_rate 4e-4 --block_size 512 --adam_epsilon 1e-6 --weight_decay 0.01 --beta1 0.9 \
    --beta2 0.98 --mlm_probability 0.025 --warmup_steps 10000 --overwrite_output_dir --n_process 24
The corpus is get_input.py --task pretrain's pre/{k}.txt (one k-mer sentence per line), or a FASTA
file (--train_fasta / --eval_fasta). The final model in --output_dir is a --model_name_or_path for
run_finetune_degradation.py. Multi-GPU / multi-node: torchrun --nproc_per_node N run_pretrain.py ...
"""

from __future__ import annotations

import argparse

from ..utils import InputError
from .common import (
    add_device_args,
    add_optimizer_args,
    check_common,
    check_logging_dir,
    check_optimizer_args,
    command,
    compat_group,
    new_parser,
    run_training,
    settings_of,
)

IGNORED = (
    ("--line_by_line", dict(action="store_true", help="one sentence per line: always on (block mode is not carried)")),
    ("--mlm", dict(action="store_true", help="masked-LM objective: always on (the only objective)")),
    ("--cache_dir", dict(type=str, default=None, help="no caches are written")),
    ("--overwrite_cache", dict(action="store_true", help="no caches are written")),
    ("--n_process", dict(type=int, default=1, help="tokenisation is vectorised")),
    ("--fp16_opt_level", dict(type=str, default="O1", help="apex levels are gone")),
)


def build_parser() -> argparse.ArgumentParser:
    """DNABERT's run_pretrain.py flags with its defaults (those marked "new" are this toolkit's), grouped by
    purpose; the ignored ones in one group."""
    p = new_parser(__doc__, raw=True)
    a = p.add_argument_group("data").add_argument
    a("--train_data_file", type=str, default=None, help="line-by-line corpus of k-mer sentences")
    a("--eval_data_file", type=str, default=None, help="corpus for perplexity (--do_eval, --evaluate_during_training)")
    a("--train_fasta", type=str, default=None, help="new: train on the records of this FASTA (needs k)")
    a("--eval_fasta", type=str, default=None, help="new: evaluate on the records of this FASTA")
    a("--mlm_probability", type=float, default=None,
      help="probability of a k-mer span CENTRE; default per k so that ~15%% of tokens are masked "
           "(k=3 0.0527, 4 0.0398, 5 0.032, 6 0.0267; DNABERT's README uses 0.025 for k=6)")
    a("--block_size", type=int, default=-1,
      help="max tokens per sentence incl. [CLS]/[SEP] (-1: 512); longer sentences are refused")
    a = p.add_argument_group("model").add_argument
    a("--model_type", type=str, default="dna", help="must be 'dna' (BertForMaskedLM on DNABERT's k-mer vocabulary)")
    a("--config_name", type=str, default=None,
      help="new model: bert-base (default; 12x768x12), mini (4x256x4), tiny (2x64x2) or a config.json")
    a("--tokenizer_name", type=str, default=None, help="dna3..dna6; default: the checkpoint's or the corpus' k")
    a("--model_name_or_path", type=str, default=None,
      help="continue from this checkpoint (this toolkit's, DNABERT's or m6A-BERT's); default: a new model")
    g = p.add_argument_group("optimisation")
    a = g.add_argument
    a("--do_train", action="store_true", help="train (implied unless only --do_eval is given)")
    a("--per_gpu_train_batch_size", type=int, default=4, help="sentences per step and process")
    add_optimizer_args(g)
    a("--num_train_epochs", type=float, default=1.0, help="epochs over the corpus (unless --max_steps)")
    a("--seed", type=int, default=42, help="seeds Python, NumPy and torch (and the masking)")
    a = p.add_argument_group("evaluation and checkpoints").add_argument
    a("--do_eval", action="store_true", help="evaluate the final model on --eval_data_file")
    a("--evaluate_during_training", action="store_true", help="evaluate every --logging_steps")
    a("--per_gpu_eval_batch_size", type=int, default=4, help="sentences per evaluation batch")
    a("--logging_steps", type=int, default=500, help="evaluate and log every this many steps (0: never)")
    a("--save_steps", type=int, default=500, help="write checkpoint-N every this many steps (0: never)")
    a("--save_total_limit", type=int, default=None, help="keep at most this many checkpoint-N folders")
    a("--should_continue", action="store_true", help="resume exactly from the latest checkpoint-N in output_dir")
    a = p.add_argument_group("output").add_argument
    a("--output_dir", type=str, required=True, help="checkpoints, eval_results.txt and the final model")
    a("--overwrite_output_dir", action="store_true",
      help="allow a non-empty output_dir (its old checkpoints and results are removed)")
    a("--logging_dir", type=str, default=None,
      help="new: write TensorBoard logs here (loss, learning rate, dev metrics, throughput); needs the "
           "tensorboard package; off when unset")
    g = p.add_argument_group("hardware")
    add_device_args(g)
    a = g.add_argument
    a("--local_rank", type=int, default=-1, help="set by torchrun / torch.distributed.launch")
    a("--server_ip", type=str, default="", help="not carried (ptvsd remote debugging)")
    a("--server_port", type=str, default="", help="not carried")
    a = p.add_argument_group("compatibility").add_argument
    a("--dnabert_compat", action="store_true",
      help="new: pass no attention mask, so padding is attended to, as DNABERT's pretraining did")
    compat_group(p, *IGNORED)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    check_common(args)
    for a, b in (("train_data_file", "train_fasta"), ("eval_data_file", "eval_fasta")):
        if getattr(args, a) and getattr(args, b):
            raise InputError(f"give --{a} or --{b}, not both")
    has_eval = bool(args.eval_data_file or args.eval_fasta)
    if (args.do_train or not args.do_eval) and not (args.train_data_file or args.train_fasta):
        raise InputError("training needs --train_data_file (a k-mer corpus) or --train_fasta")
    if (args.do_eval or args.evaluate_during_training) and not has_eval:
        raise InputError("--do_eval and --evaluate_during_training need --eval_data_file or --eval_fasta")
    if args.mlm_probability is not None and not 0.0 < args.mlm_probability <= 1.0:
        raise InputError(f"--mlm_probability must be in (0, 1], not {args.mlm_probability}")
    if args.block_size > 0 and args.block_size < 3:
        raise InputError(f"--block_size must be at least 3 ([CLS] k-mer [SEP]) or -1, not {args.block_size}")
    if args.per_gpu_train_batch_size < 1 or args.per_gpu_eval_batch_size < 1 or args.gradient_accumulation_steps < 1:
        raise InputError("batch sizes and --gradient_accumulation_steps must be at least 1")
    check_optimizer_args(args)
    check_logging_dir(args)
    return args


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from ..commands.pretrain import PretrainSettings, run_pretrain

    return run_training(args, run_pretrain, settings_of(PretrainSettings, args))


main = command(run)
