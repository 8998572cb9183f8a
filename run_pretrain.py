"""Pretrain m6A-BERT: masked-LM training of a k-mer BERT (DNABERT's examples/run_pretrain.py) (the original's command; the code is ``m6abert/cli/pretrain.py``)."""

from m6abert.cli.pretrain import main

if __name__ == "__main__":
    raise SystemExit(main())
