"""Fine-tune m6A-BERT into the degradation classifier (m6A-BERT-Deg).

Takes the original run_finetune_degradation.py flags unchanged, e.g.
  python run_finetune_degradation.py --model_type dna --tokenizer_name=dna$KMER \\
    --model_name_or_path $MODEL_PATH --task_name dnaprom --do_train --do_eval --data_dir $DATA_PATH \\
    --max_seq_length 512 --per_gpu_train_batch_size=40 --learning_rate 1e-6 --num_train_epochs 100 \\
    --output_dir $OUTPUT_PATH --evaluate_during_training --weight_decay 0.01
Multi-GPU / multi-node: torchrun --nproc_per_node N run_finetune_degradation.py ...
"""

from __future__ import annotations

import argparse

from ..utils import InputError
from .common import (
    add_device_args,
    add_optimizer_args,
    check_at_least_one,
    check_common,
    check_fp16,
    check_logging_dir,
    check_n_folds,
    check_optimizer_args,
    command,
    compat_group,
    new_parser,
    resolve_max_seq_length,
    run_training,
    settings_of,
)

# flags of DNABERT features that are not carried: accepted by the parser, refused by the checks
UNSUPPORTED = {
    "do_visualize": "use visualize_all.py for attention and attribution scores",
    "do_ensemble_pred": "the 3/4/5/6-mer ensemble of DNABERT is not carried",
    "visualize_train": "use visualize_all.py --data_name train",
}
IGNORED = (
    ("--n_process", dict(type=int, default=2, help="tokenisation is vectorised")),
    ("--visualize_data_dir", dict(type=str, default=None)),
    ("--result_dir", dict(type=str, default=None)),
    ("--cache_dir", dict(type=str, default="", help="no feature caches are written")),
    ("--overwrite_cache", dict(action="store_true", help="no feature caches are written")),
    ("--predict_scan_size", dict(type=int, default=1)),
    ("--visualize_models", dict(type=int, default=None)),
    ("--rnn_dropout", dict(type=float, default=0.0, help="dnalong only")),
    ("--rnn", dict(type=str, default="lstm", help="dnalong only")),
    ("--num_rnn_layer", dict(type=int, default=2, help="dnalong only")),
    ("--rnn_hidden", dict(type=int, default=768, help="dnalong only")),
    ("--fp16_opt_level", dict(type=str, default="O1", help="apex levels are gone")),
)


def build_parser() -> argparse.ArgumentParser:
    """The original's flags with its defaults (those marked "new" are m6abert's), grouped by purpose;
    the ignored ones in one group."""
    p = new_parser(__doc__, raw=True)
    a = p.add_argument_group("data").add_argument
    a("--data_dir", type=str, required=True, help="folder with train.tsv / dev.tsv / test.tsv (or fold_{i}/)")
    a("--task_name", type=str, default="dnaprom", help="must be 'dnaprom' (binary classification)")
    a("--max_seq_length", type=int, default=None,
      help="tokens incl. [CLS]/[SEP]; default: the model's max_position_embeddings (512 for DNABERT-style models)")
    a("--n_folds", type=int, default=None, help="new: cross-validation over DATA_DIR/fold_{i}/ (get_input.py --n_folds)")
    a("--fold", type=int, default=None,
      help="new: with --n_folds, train only fold I (0-based) into OUTPUT_DIR/fold_I (one task of a job array); a "
           "later --n_folds N --should_continue run keeps the finished folds and writes cv_results.json")
    a = p.add_argument_group("model").add_argument
    a("--model_type", type=str, default="dna", help="must be 'dna' (BertForSequenceClassification)")
    a("--model_name_or_path", type=str, default=None,
      help="pretrained checkpoint folder (this toolkit's, DNABERT's or the original m6A-BERT's)")
    a("--config_name", type=str, default="",
      help="with --from_scratch: bert-base (12x768x12), mini (4x256x4), tiny (2x64x2) or a config.json")
    a("--tokenizer_name", type=str, default="", help="dna3..dna6; must match the checkpoint's k")
    a("--from_scratch", action="store_true",
      help="new: no pretraining, a random model of --config_name (the no-pretraining baseline)")
    a("--do_lower_case", action="store_true", help="refused: the vocabulary is upper-case")
    a("--attention_probs_dropout_prob", type=float, default=0.1,
      help="the original's 0.1; on a CPU 0 makes a bert-base step 1.6x (bf16) to 2.5x faster (no fused attention "
           "kernel with dropout)")
    a("--hidden_dropout_prob", type=float, default=0.1, help="dropout of the hidden layers and the head")
    g = p.add_argument_group("optimisation")
    a = g.add_argument
    a("--do_train", action="store_true", help="fine-tune on train.tsv")
    a("--per_gpu_train_batch_size", type=int, default=8, help="sequences per step and process")
    add_optimizer_args(g)
    a("--num_train_epochs", type=float, default=3.0, help="epochs over train.tsv (unless --max_steps)")
    a("--warmup_percent", type=float, default=0.0, help="if non-zero, warmup = int(percent * total steps)")
    a("--early_stop", type=int, default=0, help="stop after this many consecutive AUC decreases (0 = off)")
    a("--seed", type=int, default=42, help="seeds Python, NumPy and torch")
    a = p.add_argument_group("evaluation and checkpoints").add_argument
    a("--do_eval", action="store_true", help="evaluate the final model on dev.tsv (eval_results.txt)")
    a("--evaluate_during_training", action="store_true", help="evaluate on dev.tsv every --logging_steps")
    a("--metric_for_best_model", type=str, default="auc", metavar="METRIC",
      help="new: with --evaluate_during_training the final model is the best checkpoint by this dev metric "
           "(Hugging Face's load_best_model_at_end): auc, acc, f1, mcc, precision, recall, aupr, precision_pos, "
           "recall_pos, f1_pos or loss (lower is better); default auc. --dnabert_compat exports the last step")
    a("--per_gpu_eval_batch_size", type=int, default=8, help="sequences per evaluation batch")
    a("--logging_steps", type=int, default=500, help="evaluate and log every this many steps (0: never)")
    a("--save_steps", type=int, default=500, help="write checkpoint-N every this many steps (0: never)")
    a("--save_total_limit", type=int, default=None, help="keep at most this many checkpoints (and the best)")
    a("--eval_all_checkpoints", action="store_true", help="--do_eval on every checkpoint-N too")
    a("--should_continue", action="store_true", help="resume from the latest checkpoint-N in output_dir")
    a = p.add_argument_group("output").add_argument
    a("--output_dir", type=str, required=True, help="where checkpoints and results are written")
    a("--overwrite_output_dir", action="store_true",
      help="allow a non-empty output_dir (its old checkpoints and results are removed)")
    a("--do_predict", action="store_true", help="predict dev.tsv with the final model")
    a("--predict_dir", type=str, default=None, help="output folder of predictions (--do_predict)")
    a("--per_gpu_pred_batch_size", type=int, default=8,
      help="prediction batch size (the original ignored the eval batch size here)")
    a("--logging_dir", type=str, default=None,
      help="new: write TensorBoard logs here (loss, learning rate, dev metrics, throughput); needs the "
           "tensorboard package; off when unset")
    a("--do_visualize", action="store_true", help="not carried: use visualize_all.py")
    a("--visualize_train", action="store_true", help="not carried: use visualize_all.py")
    a("--do_ensemble_pred", action="store_true", help="not carried")
    g = p.add_argument_group("hardware")
    add_device_args(g)
    a = g.add_argument
    a("--local_rank", type=int, default=-1, help="set by torchrun / torch.distributed.launch")
    a("--server_ip", type=str, default="", help="not carried (ptvsd remote debugging)")
    a("--server_port", type=str, default="", help="not carried")
    a = p.add_argument_group("compatibility").add_argument
    a("--dnabert_compat", action="store_true",
      help="new: reproduce the original's unmasked padding (pad to max_seq_length, +1/0 mask, eager) and its "
           "export of the last step")
    compat_group(p, *IGNORED)
    return p


def check_args(args: argparse.Namespace) -> None:
    """Refuse flags of DNABERT features that are not carried, values out of range and impossible combinations."""
    for flag, why in UNSUPPORTED.items():
        if getattr(args, flag):
            raise InputError(f"--{flag} is not supported by m6abert: {why}")
    check_common(args)
    if args.do_lower_case:
        raise InputError("--do_lower_case would map every k-mer to [UNK]; the vocabulary is upper-case")
    check_optimizer_args(args)
    check_n_folds(args)
    if args.fold is not None and (args.n_folds is None or not 0 <= args.fold < args.n_folds):
        raise InputError(f"--fold needs --n_folds N and must be in 0..N-1, not {args.fold}"
                         + ("" if args.n_folds is None else f" (--n_folds {args.n_folds})"))
    check_at_least_one(args, ("per_gpu_train_batch_size", "per_gpu_eval_batch_size", "per_gpu_pred_batch_size",
                              "gradient_accumulation_steps"))
    check_fp16(args)
    check_logging_dir(args)
    if args.early_stop and args.do_train and not args.evaluate_during_training:
        raise InputError("--early_stop needs --evaluate_during_training (it watches the dev AUC)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    check_args(args)
    resolve_max_seq_length(args, args.config_name if args.from_scratch else args.model_name_or_path)
    return args


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import functools

    from ..commands.crossval import run_finetune_command
    from ..finetune import FinetuneSettings

    settings = settings_of(FinetuneSettings, args)
    return run_training(args, functools.partial(run_finetune_command, fold=args.fold), settings)


main = command(run)
