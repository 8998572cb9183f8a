"""Fine-tune m6A-BERT into the degradation classifier (m6A-BERT-Deg).

Takes the original run_finetune_degradation.py flags unchanged, e.g.
  python run_finetune_degradation.py --model_type dna --tokenizer_name=dna$KMER \
    --model_name_or_path $MODEL_PATH --task_name dnaprom --do_train --do_eval --data_dir $DATA_PATH \
    --max_seq_length 512 --per_gpu_train_batch_size=40 --learning_rate 1e-6 --num_train_epochs 100 \
    --output_dir $OUTPUT_PATH --evaluate_during_training --weight_decay 0.01
Multi-GPU / multi-node: torchrun --nproc_per_node N run_finetune_degradation.py ...
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
    from m6abert.finetune import run

    return run(args)


if __name__ == "__main__":
    main()
