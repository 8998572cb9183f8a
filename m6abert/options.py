"""The command-line flags of run_finetune_degradation.py and run_predict_degradation.py.

Both original scripts share one argparse definition (DNABERT's run_finetune.py); so do ours. Every
original flag is accepted with its original default, so the README commands run unchanged. Flags of
DNABERT features this toolkit does not carry are refused by :func:`check_finetune_args`.
"""

from __future__ import annotations

import argparse

from .utils import InputError

UNSUPPORTED = {
    "do_visualize": "use visualize_all.py for attention and attribution scores",
    "do_ensemble_pred": "the 3/4/5/6-mer ensemble of DNABERT is not carried",
    "visualize_train": "use visualize_all.py --data_name train",
}


def add_optimizer_args(p: argparse.ArgumentParser) -> None:
    """AdamW and schedule flags shared by fine-tuning and pretraining, with DNABERT's defaults."""
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--learning_rate", type=float, default=5e-5)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--adam_epsilon", type=float, default=1e-8)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--max_grad_norm", type=float, default=1.0)


def finetune_parser(description: str) -> argparse.ArgumentParser:
    """The shared parser; defaults are the original's unless noted as new."""
    p = argparse.ArgumentParser(description=description)
    a = p.add_argument
    # required in the original
    a("--data_dir", type=str, required=True, help="folder with train.tsv / dev.tsv / test.tsv (or fold_{i}/)")
    a("--model_type", type=str, default="dna", help="must be 'dna' (BertForSequenceClassification)")
    a("--model_name_or_path", type=str, default=None,
      help="pretrained checkpoint folder (this toolkit's, DNABERT's or the original m6A-BERT's)")
    a("--task_name", type=str, default="dnaprom", help="must be 'dnaprom' (binary classification)")
    a("--output_dir", type=str, required=True, help="where checkpoints and results are written")
    # the original's optional flags
    a("--n_process", type=int, default=2, help="accepted for compatibility; tokenisation is vectorised")
    a("--should_continue", action="store_true", help="resume from the latest checkpoint-N in output_dir")
    a("--visualize_data_dir", type=str, default=None, help="accepted for compatibility (unused)")
    a("--result_dir", type=str, default=None, help="accepted for compatibility (unused)")
    a("--config_name", type=str, default="",
      help="with --from_scratch: bert-base (12x768x12), mini (4x256x4), tiny (2x64x2) or a config.json")
    a("--tokenizer_name", type=str, default="", help="dna3..dna6; must match the checkpoint's k")
    a("--cache_dir", type=str, default="", help="accepted for compatibility (no caches are written)")
    a("--predict_dir", type=str, default=None, help="output folder of predictions (--do_predict)")
    a("--max_seq_length", type=int, default=128, help="tokens incl. [CLS]/[SEP]; the README uses 512")
    a("--do_train", action="store_true")
    a("--do_eval", action="store_true")
    a("--do_predict", action="store_true")
    a("--do_visualize", action="store_true", help="not carried: use visualize_all.py")
    a("--visualize_train", action="store_true", help="not carried: use visualize_all.py")
    a("--do_ensemble_pred", action="store_true", help="not carried")
    a("--evaluate_during_training", action="store_true", help="evaluate on dev.tsv every --logging_steps")
    a("--do_lower_case", action="store_true", help="refused: the vocabulary is upper-case")
    a("--per_gpu_train_batch_size", type=int, default=8)
    a("--per_gpu_eval_batch_size", type=int, default=8)
    a("--per_gpu_pred_batch_size", type=int, default=8,
      help="prediction batch size (the original ignored the eval batch size here)")
    a("--early_stop", type=int, default=0, help="stop after this many consecutive AUC decreases (0 = off)")
    a("--predict_scan_size", type=int, default=1, help="accepted for compatibility (unused)")
    add_optimizer_args(p)
    a("--attention_probs_dropout_prob", type=float, default=0.1)
    a("--hidden_dropout_prob", type=float, default=0.1)
    a("--rnn_dropout", type=float, default=0.0, help="dnalong only; accepted, unused")
    a("--rnn", type=str, default="lstm", help="dnalong only; accepted, unused")
    a("--num_rnn_layer", type=int, default=2, help="dnalong only; accepted, unused")
    a("--rnn_hidden", type=int, default=768, help="dnalong only; accepted, unused")
    a("--num_train_epochs", type=float, default=3.0)
    a("--max_steps", type=int, default=-1, help="> 0: train exactly this many optimisation steps")
    a("--warmup_steps", type=int, default=0)
    a("--warmup_percent", type=float, default=0.0, help="if non-zero, warmup = int(percent * total steps)")
    a("--logging_steps", type=int, default=500)
    a("--save_steps", type=int, default=500)
    a("--save_total_limit", type=int, default=None, help="keep at most this many checkpoints (and the best)")
    a("--eval_all_checkpoints", action="store_true", help="--do_eval on every checkpoint-N too")
    a("--no_cuda", action="store_true")
    a("--overwrite_output_dir", action="store_true",
      help="allow a non-empty output_dir (its old checkpoints and results are removed)")
    a("--overwrite_cache", action="store_true", help="accepted for compatibility (no caches are written)")
    a("--visualize_models", type=int, default=None, help="accepted for compatibility (unused)")
    a("--seed", type=int, default=42)
    a("--fp16", action="store_true", help="float16 autocast on CUDA (apex is gone)")
    a("--fp16_opt_level", type=str, default="O1", help="accepted for compatibility (apex levels are gone)")
    a("--local_rank", type=int, default=-1, help="set by torchrun / torch.distributed.launch")
    a("--server_ip", type=str, default="", help="not carried (ptvsd remote debugging)")
    a("--server_port", type=str, default="", help="not carried")
    # new
    g = p.add_argument_group("new in m6abert")
    g.add_argument("--from_scratch", action="store_true",
                   help="no pretraining: a random model of --config_name (the no-pretraining baseline)")
    g.add_argument("--n_folds", type=int, default=None,
                   help="cross-validation over DATA_DIR/fold_{i}/ (get_input.py --n_folds)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU or GPU)")
    g.add_argument("--dnabert_compat", action="store_true",
                   help="reproduce the original's unmasked padding (pad to max_seq_length, +1/0 mask, eager)")
    g.add_argument("--predict_fasta", type=str, default=None,
                   help="predict the records of this FASTA instead of test.tsv (predictions.tsv by record id)")
    return p


def check_finetune_args(args: argparse.Namespace) -> None:
    """Refuse flags of DNABERT features that are not carried, and impossible combinations."""
    for flag, why in UNSUPPORTED.items():
        if getattr(args, flag, False):
            raise InputError(f"--{flag} is not supported by m6abert: {why}")
    if args.model_type != "dna":
        raise InputError(f"--model_type {args.model_type!r} is not supported: only 'dna' (dnalong models are not carried)")
    if args.task_name.lower() != "dnaprom":
        raise InputError(f"--task_name {args.task_name!r} is not supported: only 'dnaprom' (binary)")
    if args.server_ip or args.server_port:
        raise InputError("--server_ip/--server_port (ptvsd remote debugging) are not supported")
    if args.do_lower_case:
        raise InputError("--do_lower_case would map every k-mer to [UNK]; the vocabulary is upper-case")
    if not 3 <= args.max_seq_length <= 512:
        raise InputError(f"--max_seq_length must be in 3..512 (BERT positions), not {args.max_seq_length}")
    if args.fp16 and args.bf16:
        raise InputError("choose one of --fp16 and --bf16")
    if args.tokenizer_name and args.tokenizer_name not in ("dna3", "dna4", "dna5", "dna6"):
        raise InputError(f"--tokenizer_name must be dna3..dna6, not {args.tokenizer_name!r}")
    if args.n_folds is not None and args.n_folds < 2:
        raise InputError("--n_folds must be at least 2")
    for flag in ("per_gpu_train_batch_size", "per_gpu_eval_batch_size", "per_gpu_pred_batch_size",
                 "gradient_accumulation_steps"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag} must be at least 1, not {getattr(args, flag)}")
    if args.fp16:
        import torch

        if args.no_cuda or not torch.cuda.is_available():
            raise InputError("--fp16 needs a CUDA device; use --bf16 on CPU")
    if args.early_stop and args.do_train and not args.evaluate_during_training:
        raise InputError("--early_stop needs --evaluate_during_training (it watches the dev AUC)")


def tokenizer_k(args: argparse.Namespace) -> int | None:
    """k named by ``--tokenizer_name dnaK``, or None."""
    return int(args.tokenizer_name[3:]) if args.tokenizer_name else None
