"""The command line: one module per command, each with ``parse_args(argv=None)`` and ``main(argv=None)``.

This package is the only code that sees argparse. ``main`` parses and checks every flag, seeds,
picks the device, then makes one typed call into the library. The top-level scripts of the
original (``get_input.py``, ``run_finetune_degradation.py``, ...) and the installed commands
(``m6abert-get-input``, ``m6abert-finetune``, ...) call these ``main`` functions.
"""
