"""Operating-system and third-party failures, and bad ``site=N`` headers, as one-line errors (issue 18,
section 6: "positions, memory and escapes").

Every row used to end in a traceback (or, for a huge record, in gigabytes of memory first): a path
longer than the system allows, a full disk while ``--predict_fasta`` streams its table, a run lock
holding a pid no process can have, a shard table that is not UTF-8, a record of millions of
nucleotides. The rows have the shape of tests/test_errors.py: the command runs on good inputs with
one thing spoilt and must exit with status 2, print the one line and leave every file as it was.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from test_errors import Case, check_error, snapshot
from toy import random_seq, tiny_classifier, write_fasta, write_split_dir

from m6abert import io
from m6abert.io import shards as io_shards
from m6abert.kmer import seq2kmer

LONG = "x" * 300  # a file name longer than the 255 bytes Linux allows
TOO_LONG = "{file}/…File name too long…"  # the guard's "PATH: File name too long", or a writer's "PATH: cannot write (…)"


def window(rng: np.random.RandomState, length: int = 501) -> str:
    """A random window with DRACH's ``AC`` at index 250 (the site) and nowhere near 250 else."""
    seq = list(random_seq(rng, length))
    seq[250:252] = "AC"
    return "".join(seq)


# ---------------------------------------------------------------------------- get_input.py
GET_INPUT = [
    Case("site-not-index", "a `site=` header word that is not a 0-based index",
         "{file}: record p3: site=25x in its header is not a 0-based index (site=N with N = 0, 1, 2, ...)",
         "DATA_DIR/pos.fa"),
    Case("site-twice", "two `site=` words in one header", "{file}: record p3: 2 site= words in its header; give one",
         "DATA_DIR/pos.fa"),
    Case("site-outside", "`site=501` in a 501-nt record",
         "{file}: record n2: site=501 in its header lies outside its 501 nt (site=N is the 0-based index of the "
         "m6A A)", "DATA_DIR/neg.fa"),
    Case("site-not-a", "`site=N` on a letter other than A (a 1-based position given for the 0-based index)",
         "{file}: record p3: site=251 in its header is 'C', not the m6A A (site=N is the 0-based index: site=250 in "
         "a 501-nt window)", "DATA_DIR/pos.fa"),
    Case("save-dir-too-long", "`--save_dir` with a folder name of 300 characters", TOO_LONG, "SAVE_DIR"),
]
HEADERS = {"site-not-index": ("pos.fa", 3, "site=25x"), "site-twice": ("pos.fa", 3, "site=250 site=250"),
           "site-outside": ("neg.fa", 2, "site=501"), "site-not-a": ("pos.fa", 3, "site=251")}


def build_get_input(case: str, tmp: Path) -> list[str]:
    data, save = tmp / "DATA_DIR", tmp / "SAVE_DIR"
    rng = np.random.RandomState(0)
    for name, prefix, n in (("pos.fa", "p", 12), ("neg.fa", "n", 20)):
        headers = {i: "" for i in range(1, n + 1)}
        if case in HEADERS and HEADERS[case][0] == name:
            headers[HEADERS[case][1]] = " " + HEADERS[case][2]
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("".join(f">{prefix}{i}{headers[i]}\n{window(rng)}\n" for i in range(1, n + 1)))
    io.write_text(save / "train.tsv", "seq\tlabel\nACG CGT\t1\n")  # an earlier run's output
    argv = ["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--data_dir", str(data),
            "--save_dir", str(save)]
    if case == "save-dir-too-long":
        argv[-1] = str(save / LONG)
    elif case not in HEADERS:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- run_predict_degradation.py
LOCK_MESSAGE = ("{file}: in use by another run (unreadable lock file); wait for it or remove {file}/.m6abert.lock "
                "if no run is using the folder")
PREDICT = [
    Case("full-disk-stream", "the disk fills up while `--predict_fasta` streams `predictions.tsv` (simulated)",
         "{file}: cannot write (No space left on device)", "PREDICT_DIR/predictions.tsv"),
    Case("lock-huge-pid", "a run lock holding the pid 10**30 (it overflowed `os.kill`)", LOCK_MESSAGE, "PREDICT_DIR"),
    Case("lock-zero-pid", "a run lock holding the pid 0 (`os.kill(0)` signals the process group)", LOCK_MESSAGE,
         "PREDICT_DIR"),
    Case("predict-dir-too-long", "`--predict_dir` with a folder name of 300 characters", TOO_LONG, "PREDICT_DIR"),
    Case("huge-record", "a `--predict_fasta` record of 2,000,000 nt (refused from its length, never k-merised)",
         "{file}: row 2: 2000000 tokens with [CLS]/[SEP] exceed --max_seq_length 512", "new.fa"),
    Case("variants-site-not-a", "`--pos_relative_to_site`, a record whose header's `site=N` is not an A",
         "{file}: record r3: site=251 in its header is 'C', not the m6A A (site=N is the 0-based index: site=250 in "
         "a 501-nt window)", "new.fa"),
]


def build_predict(case: str, tmp: Path) -> list[str]:
    model, pred, fasta = tmp / "OUTPUT_DIR", tmp / "PREDICT_DIR", tmp / "new.fa"
    tiny_classifier(model)
    io.save_npy(pred / "pred_results.npy", np.zeros(3, dtype=np.float32))  # an earlier run's outputs
    io.write_text(pred / "predictions.tsv", "id\tprobability\tpredicted_label\nr0\t0.5\t0\n")
    rng = np.random.RandomState(1)
    seqs = [window(rng) for _ in range(3)]
    site = " site=251" if case == "variants-site-not-a" else ""
    fasta.write_text("".join(f">r{i}{site if i == 3 else ''}\n{s}\n" for i, s in enumerate(seqs, 1)))
    argv = ["--data_dir", str(tmp / "DATA_DIR"), "--output_dir", str(model), "--predict_dir", str(pred),
            "--max_seq_length", "512", "--predict_fasta", str(fasta)]
    if case in ("lock-huge-pid", "lock-zero-pid"):
        pid = 10**30 if case == "lock-huge-pid" else 0
        (pred / ".m6abert.lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    elif case == "predict-dir-too-long":
        argv[argv.index(str(pred))] = str(pred / LONG)
    elif case == "huge-record":
        with open(fasta, "w") as fh:
            fh.write(f">r1\n{seqs[0]}\n>r2\n")
            fh.writelines(f"{'ACGT' * 15}\n" for _ in range(2_000_000 // 60))
            fh.write("ACGTACGTACGTACGTACGT\n")  # 2,000,000 nt in all
    elif case == "variants-site-not-a":
        io.write_text(tmp / "variants.tsv", "r3\t0\tA\tG\n")
        argv += ["--variants", str(tmp / "variants.tsv"), "--pos_relative_to_site"]
    elif case != "full-disk-stream":
        raise AssertionError(case)
    return argv


class FullDisk:
    """A text file whose writes fail with ENOSPC once ``room`` characters are written (a disk filling up)."""

    def __init__(self, fh, room: int):
        self._fh, self._room = fh, room

    def write(self, text: str) -> int:
        if len(text) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(text)
        return self._fh.write(text)

    def close(self) -> None:
        self._fh.close()


class _OsWithFullDisk:
    """The ``os`` module as m6abert.io.shards sees it, its ``fdopen`` giving :class:`FullDisk` files."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fdopen(*args, **kwargs):
        return FullDisk(os.fdopen(*args, **kwargs), room=40)  # the header and a row


PATCHES = {"full-disk-stream": lambda mp: mp.setattr(io_shards, "os", _OsWithFullDisk())}


# ---------------------------------------------------------------------------- visualize_all.py, find_motifs.py
VISUALIZE = [Case("output-dir-too-long", "`--output_dir` with a folder name of 300 characters", TOO_LONG,
                  "OUTPUT_DIR")]
FIND_MOTIFS = [Case("save-dir-too-long", "`--save_file_dir` with a folder name of 300 characters", TOO_LONG,
                    "SAVE_DIR")]


def build_visualize(case: str, tmp: Path) -> list[str]:
    assert case == "output-dir-too-long", case
    write_split_dir(tmp / "DATA_DIR", n=8)
    tiny_classifier(tmp / "MODEL_PATH")
    return ["--model_path", str(tmp / "MODEL_PATH"), "--data_dir", str(tmp / "DATA_DIR"), "--data_name", "dev",
            "--vis_task", "attn", "--output_dir", str(tmp / "OUTPUT_DIR" / LONG), "--max_seq_length", "64",
            "--no_plot"]


def build_find_motifs(case: str, tmp: Path) -> list[str]:
    assert case == "save-dir-too-long", case
    rng = np.random.RandomState(0)
    seqs = [random_seq(rng, 40) for _ in range(6)]
    io.write_tsv(tmp / "DATA_DIR" / "dev.tsv", [seq2kmer(s, 3) for s in seqs], [1, 0] * 3)
    io.save_npy(tmp / "NPY_DIR" / "atten_dev.npy", rng.rand(6, 40).astype(np.float32))
    return ["--data_dir", str(tmp / "DATA_DIR"), "--npy_dir", str(tmp / "NPY_DIR"), "--data_name", "dev",
            "--vis_task", "attn", "--save_file_dir", str(tmp / "SAVE_DIR" / LONG), "--min_n_motif", "1"]


# ---------------------------------------------------------------------------- merge_shards.py
MERGE = [
    Case("not-utf8-table", "a shard's `predictions.tsv` with a byte that is not UTF-8",
         "{file}: not UTF-8 text after row …; not a table this toolkit wrote: re-run the shard",
         "shard_1/predictions.tsv"),
    Case("output-dir-too-long", "`--output_dir` with a folder name of 300 characters", TOO_LONG, "OUTPUT_DIR"),
]


def build_merge(case: str, tmp: Path) -> list[str]:
    import run_predict_degradation

    tiny_classifier(tmp / "model")
    rng = np.random.RandomState(2)
    write_fasta(tmp / "in.fa", [io.FastaRecord(f"r{i}", random_seq(rng, 30)) for i in range(1, 5)])
    for shard in (0, 1):
        run_predict_degradation.main(["--data_dir", str(tmp), "--output_dir", str(tmp / "model"), "--predict_fasta",
                                      str(tmp / "in.fa"), "--predict_dir", str(tmp / f"shard_{shard}"),
                                      "--max_seq_length", "64", "--chunk_records", "2", "--shard", str(shard),
                                      "--num_shards", "2"])
    argv = ["--output_dir", str(tmp / "OUTPUT_DIR"), str(tmp / "shard_0"), str(tmp / "shard_1")]
    if case == "not-utf8-table":
        table = tmp / "shard_1" / "predictions.tsv"
        table.write_bytes(table.read_bytes().replace(b"r4", b"r\xff"))
    elif case == "output-dir-too-long":
        argv[1] = str(tmp / "OUTPUT_DIR" / LONG)
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- the table
TABLES = {"get_input": (GET_INPUT, build_get_input), "run_predict_degradation": (PREDICT, build_predict),
          "visualize_all": (VISUALIZE, build_visualize), "find_motifs": (FIND_MOTIFS, build_find_motifs),
          "merge_shards": (MERGE, build_merge)}
CASES = [(f"{script}.py", c) for script, (table, _) in TABLES.items() for c in table]


@pytest.mark.parametrize("script, case", [pytest.param(script, c, id=f"{script}-{c.id}")
                                          for script, (table, _) in TABLES.items() for c in table])
def test_case(script, case, tmp_path, capsys, monkeypatch):
    """Exit status 2, one line, every file as it was (the temporary spool of a full disk removed too)."""
    import importlib

    argv = TABLES[script][1](case.id, tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    if case.id in PATCHES:
        PATCHES[case.id](monkeypatch)
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(script).main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    check_error(err, case, tmp_path)
    assert snapshot(tmp_path) == before, "files changed"


def test_case_ids_are_unique():
    assert len({(s, c.id) for s, c in CASES}) == len(CASES)
