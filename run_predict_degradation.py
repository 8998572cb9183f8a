"""Predict degradation probabilities with a fine-tuned m6A-BERT-Deg model.

Takes the original run_predict_degradation.py flags unchanged, e.g.
  python run_predict_degradation.py --model_type dna --tokenizer_name=dna$KMER \
    --model_name_or_path $MODEL_PATH --task_name dnaprom --data_dir $DATA_PATH --do_predict \
    --max_seq_length 512 --output_dir $OUTPUT_PATH/checkpoint-# --predict_dir $OUTPUT_PATH
Reads DATA_DIR/test.tsv (or --predict_fasta FILE) and writes PREDICT_DIR/pred_results.npy,
predictions.tsv and pred_metrics.json.
"""

from __future__ import annotations

import argparse

from m6abert.utils import cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from m6abert.options import check_finetune_args, finetune_parser

    args = finetune_parser(__doc__).parse_args(argv)
    check_finetune_args(args)
    return args


@cli
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from m6abert.predict import run

    return run(args, split="test")


if __name__ == "__main__":
    main()
