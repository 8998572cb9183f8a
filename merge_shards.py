"""Merge the shards of a sharded prediction (new in m6abert; the code is ``m6abert/cli/merge.py``)."""

from m6abert.cli.merge import main

if __name__ == "__main__":
    raise SystemExit(main())
