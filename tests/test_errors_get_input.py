"""get_input.py's refusals of data it cannot split sensibly: too few positives for a split, record ids
twice, a --save_dir that is a file. The shape of tests/test_errors.py: exit status 2, one line on
stderr naming the file and problem, no traceback, nothing on disk changed.

``CASES`` lists ``(script, Case)`` rows for docs/errors.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_errors import LOG_RECORD, ROOT, Case, check_error, random_fasta, run_case, snapshot

from m6abert import io
from m6abert.io import FastaRecord
from m6abert.splits import finetune_splits
from m6abert.utils import InputError

VAL_HINT = "--do_val keeps 20 % for test.tsv and 10 % of the rest for dev.tsv; at least 3 positives are needed"
CASES = [("get_input.py", c) for c in [
    Case("two-positives", "`--do_val` with 2 positives",
         f"{{file}}: 2 positives and 2 negatives leave train.tsv empty ({VAL_HINT})", "DATA_DIR/pos.fa"),
    Case("one-positive", "1 positive, without `--do_val`",
         "{file}: 1 positive and 1 negative leave train.tsv empty (20 % is kept for dev.tsv; at least 2 positives "
         "are needed)", "DATA_DIR/pos.fa"),
    Case("one-class-train", "`--do_val --neg_ratio 2` with 2 positives",
         f"{{file}}: 2 positives and 4 negatives leave train.tsv without positives ({VAL_HINT})", "DATA_DIR/pos.fa"),
    Case("duplicate-id", "a record id twice in `pos.fa`",
         "{file}: duplicate record id p3 (records 3 and 7); record ids must be unique", "DATA_DIR/pos.fa"),
    Case("duplicate-id-folds", "a record id twice in `neg.fa`, with `--n_folds`",
         "{file}: duplicate record id n2 (records 2 and 15); record ids must be unique", "DATA_DIR/neg.fa"),
    Case("id-in-both", "a record id in both `pos.fa` and `neg.fa`",
         "{file}: record id p4 (record 9) is also record 4 of …pos.fa; record ids must be unique", "DATA_DIR/neg.fa"),
    Case("save-dir-file", "`--save_dir` is a file",
         "{file}: exists and is not a folder; cannot write fine-tuning splits there", "SAVE_DIR"),
]]


def rename_record(path: Path, number: int, new_id: str) -> None:
    """Give record ``number`` (1-based) of a FASTA file the id ``new_id``."""
    lines = path.read_text().splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith(">")]
    lines[headers[number - 1]] = f">{new_id} renamed"
    path.write_text("\n".join(lines) + "\n")


def build_get_input(case: str, tmp: Path) -> list[str]:
    data, save = tmp / "DATA_DIR", tmp / "SAVE_DIR"
    pos, neg = data / "pos.fa", data / "neg.fa"
    random_fasta(pos, "p", 10, seed=3)
    random_fasta(neg, "n", 15, seed=4)
    io.write_text(save / "train.tsv", "seq\tlabel\nstale output of an earlier run\t1\n")
    io.write_text(save / "test.tsv", "seq\tlabel\nstale output of an earlier run\t0\n")
    argv = ["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--do_val", "--data_dir", str(data),
            "--save_dir", str(save)]
    if case == "two-positives":
        random_fasta(pos, "p", 2, seed=3)
    elif case == "one-positive":
        random_fasta(pos, "p", 1, seed=3)
        argv.remove("--do_val")
    elif case == "one-class-train":
        random_fasta(pos, "p", 2, seed=3)
        argv += ["--neg_ratio", "2"]
    elif case == "duplicate-id":
        rename_record(pos, 7, "p3")
    elif case == "duplicate-id-folds":
        rename_record(neg, 15, "n2")
        argv += ["--n_folds", "5"]
    elif case == "id-in-both":
        rename_record(neg, 9, "p4")
    elif case == "save-dir-file":
        for p in save.iterdir():
            p.unlink()
        save.rmdir()
        save.write_text("not a folder\n")
    else:
        raise AssertionError(case)
    return argv


def _params() -> list:
    assert len({c.id for _, c in CASES}) == len(CASES)
    return [pytest.param(c, id=c.id) for _, c in CASES]


@pytest.mark.parametrize("case", _params())
def test_get_input(case, tmp_path, capsys):
    import get_input

    run_case(get_input.main, build_get_input, case, tmp_path, capsys)


def test_duplicate_ids_in_a_real_process(tmp_path):
    """With --n_folds a duplicate id was an AssertionError traceback: now the one line, exit status 2."""
    case = next(c for _, c in CASES if c.id == "duplicate-id-folds")
    argv = build_get_input(case.id, tmp_path)
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "get_input.py", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr and all(LOG_RECORD.match(ln) for ln in lines[:-1]), proc.stderr[-2000:]
    check_error(lines[-1], case, tmp_path, prog=re.escape("get_input.py"))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("do_val, need", [(True, 3), (False, 2)])
@pytest.mark.parametrize("neg_ratio", [1, 2])
def test_the_fewest_positives_named_are_enough(do_val, need, neg_ratio):
    """One positive fewer than the message names is refused; that many give both classes in every split."""
    def records(prefix, n):
        return [FastaRecord(f"{prefix}{i}", "ACGTACGTAC") for i in range(n)]

    with pytest.raises(InputError, match=f"at least {need} positives are needed"):
        finetune_splits(records("p", need - 1), records("n", 10), k=3, do_val=do_val, neg_ratio=neg_ratio)
    out = finetune_splits(records("p", need), records("n", 10), k=3, do_val=do_val, neg_ratio=neg_ratio)
    assert all(set(split.labels) == {0, 1} for split in out.values())


if __name__ == "__main__":
    for script, c in CASES:
        msg = c.message.replace("{file}", c.file or "").replace("|", "\\|")
        print(f"| `{script}` | {c.what} | `{msg}` |")
