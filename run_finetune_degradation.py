"""Fine-tune m6A-BERT into the degradation classifier (m6A-BERT-Deg) (the original's command; the code is ``m6abert/cli/finetune.py``)."""

from m6abert.cli.finetune import main

if __name__ == "__main__":
    raise SystemExit(main())
