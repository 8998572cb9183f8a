"""A run's outputs are replaced as a set (io.write_output_set, get_input.py), FASTA headers keep their
characters, and the demo script never deletes a user's folder.

Bad input of get_input.py (one line, exit status 2, nothing changed) is in tests/test_errors_get_input.py.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_errors import random_fasta, snapshot

from m6abert import io
from m6abert.io import outputs
from m6abert.utils import InputError

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ["train.tsv", "dev.tsv", "test.tsv", "fold_*/train.tsv", "fold_*/dev.tsv", "folds.json", "args.json"]


def text_writer(text: str):
    return lambda path: io.write_text(path, text)


def tree(folder: Path) -> list[str]:
    """Every file below ``folder`` (relative names), hidden ones included."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def removal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "m6abert" and "removed" in r.getMessage()]


# ---------------------------------------------------------------------------- write_output_set
def test_set_replaces_the_earlier_set_and_keeps_other_files(tmp_path, caplog):
    out = tmp_path / "out"
    io.write_output_set(out, {"train.tsv": text_writer("old train"), "dev.tsv": text_writer("old dev"),
                              "test.tsv": text_writer("old test")}, SPLITS, "splits")
    (out / "notes.txt").write_text("mine")
    (out / "test.tsv.bak").write_text("mine too")
    caplog.set_level(logging.INFO, logger="m6abert")
    report = io.write_output_set(out, {"train.tsv": text_writer("new train"), "dev.tsv": text_writer("new dev")},
                                 SPLITS, "splits")
    assert tree(out) == ["dev.tsv", "notes.txt", "test.tsv.bak", "train.tsv"]
    assert (out / "train.tsv").read_text() == "new train" and (out / "notes.txt").read_text() == "mine"
    assert report.written == (out / "train.tsv", out / "dev.tsv") and report.removed == (out / "test.tsv",)
    assert removal_lines(caplog) == [f"{out}: removed 1 earlier file not in the new splits: test.tsv"]


def test_nothing_removed_no_log_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="m6abert")
    for text in ("a", "b"):
        report = io.write_output_set(tmp_path, {"train.tsv": text_writer(text)}, SPLITS)
    assert report.removed == () and removal_lines(caplog) == [] and tree(tmp_path) == ["train.tsv"]


def test_fewer_folds_remove_the_extra_fold_folders(tmp_path, caplog):
    def folds(n):
        return {f"fold_{i}/{s}.tsv": text_writer(f"{n}:{i}") for i in range(n) for s in ("train", "dev")}

    io.write_output_set(tmp_path, folds(5), SPLITS)
    (tmp_path / "fold_0" / "my_plot.png").write_text("mine")
    caplog.set_level(logging.INFO, logger="m6abert")
    io.write_output_set(tmp_path, folds(3), SPLITS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold_0", "fold_1", "fold_2"]
    assert (tmp_path / "fold_2" / "dev.tsv").read_text() == "3:2" and (tmp_path / "fold_0" / "my_plot.png").exists()
    assert len(removal_lines(caplog)) == 1 and "4 earlier files" in removal_lines(caplog)[0]


def test_a_writer_failing_part_way_leaves_the_old_set(tmp_path):
    io.write_output_set(tmp_path, {"train.tsv": text_writer("old"), "dev.tsv": text_writer("old"),
                                   "test.tsv": text_writer("old")}, SPLITS)
    before = snapshot(tmp_path)

    def broken(path):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        io.write_output_set(tmp_path, {"train.tsv": text_writer("new"), "dev.tsv": text_writer("new"),
                                       "test.tsv": broken}, SPLITS)
    assert snapshot(tmp_path) == before  # no new file, no staging folder left


def test_a_writer_os_error_is_one_input_error_naming_the_final_path(tmp_path):
    def full(path):
        raise OSError(28, "No space left on device")

    def refused(path):
        raise InputError(f"{path}: cannot write (Permission denied)")

    with pytest.raises(InputError, match=r"out/b\.tsv: cannot write \(No space left on device\)"):
        io.write_output_set(tmp_path / "out", {"a.tsv": text_writer("a"), "b.tsv": full}, ["*.tsv"])
    with pytest.raises(InputError) as err:
        io.write_output_set(tmp_path / "out", {"a.tsv": refused}, ["*.tsv"])
    assert str(err.value) == f"{tmp_path / 'out' / 'a.tsv'}: cannot write (Permission denied)"
    assert not (tmp_path / "out").exists()  # the folder it created is gone again


@pytest.mark.parametrize("fail_at", [1, 3, 6])
def test_a_move_failing_part_way_restores_the_old_set(tmp_path, monkeypatch, fail_at):
    old = {"train.tsv": text_writer("old"), "dev.tsv": text_writer("old"), "test.tsv": text_writer("old"),
           "fold_0/train.tsv": text_writer("old")}
    io.write_output_set(tmp_path, old, SPLITS)
    before = snapshot(tmp_path)
    calls = []
    real_replace = os.replace

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", flaky)  # 4 old files parked, then 3 new ones moved in
    new = {name: (lambda path: path.write_text("new")) for name in ("train.tsv", "dev.tsv", "folds.json")}
    with pytest.raises(InputError, match="cannot write the splits .*the earlier files are unchanged"):
        io.write_output_set(tmp_path, new, SPLITS, "splits")
    assert len(calls) >= fail_at
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_input_error(tmp_path):
    io.write_output_set(tmp_path, {"train.tsv": text_writer("old")}, SPLITS)
    before = snapshot(tmp_path)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(InputError, match="cannot write"):
            io.write_output_set(tmp_path, {"dev.tsv": text_writer("new")}, SPLITS)
    finally:
        tmp_path.chmod(0o755)
    assert snapshot(tmp_path) == before


def test_a_folder_writer_and_per_set_patterns(tmp_path):
    """find_motifs.py's shape: motif files whose names depend on the results, one folder per --set."""
    def motifs(names):
        def write(folder):
            for name in names:
                io.write_text(folder / "pos" / name, name)
        return write

    owned = ["motifs_pos.tsv", "pos/motif_*_*.txt", "pos/find_motifs_args.json"]
    io.write_output_set(tmp_path, motifs(["motif_1_AAA.txt", "motif_2_CCC.txt"]), owned)
    io.write_text(tmp_path / "neg" / "motif_1_GGG.txt", "the other set")
    report = io.write_output_set(tmp_path, motifs(["motif_1_TTT.txt"]), owned)
    assert tree(tmp_path) == ["neg/motif_1_GGG.txt", "pos/motif_1_TTT.txt"]
    assert [p.name for p in report.removed] == ["motif_1_AAA.txt", "motif_2_CCC.txt"]


def test_names_must_be_owned_and_plain(tmp_path):
    for name in ("notes.txt", "../train.tsv", "/abs/train.tsv"):
        with pytest.raises(ValueError):
            io.write_output_set(tmp_path, {name: text_writer("x")}, SPLITS + ["/abs/train.tsv"])
    with pytest.raises(ValueError, match="notes.txt"):
        io.write_output_set(tmp_path, lambda folder: io.write_text(folder / "notes.txt", "x"), SPLITS)
    assert tree(tmp_path) == []


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(InputError, match="out: exists and is not a folder"):
        io.write_output_set(tmp_path / "out", {"train.tsv": text_writer("x")}, SPLITS, "splits")


def test_matches_owned_is_per_part():
    assert outputs.matches_owned(SPLITS, "fold_12/dev.tsv")
    assert not outputs.matches_owned(SPLITS, "fold_1/test.tsv")
    assert not outputs.matches_owned(["*.tsv"], "fold_1/dev.tsv")


# ---------------------------------------------------------------------------- get_input.py
@pytest.fixture
def data(tmp_path) -> Path:
    d = tmp_path / "DATA_DIR"
    random_fasta(d / "pos.fa", "p", 20, seed=1)
    random_fasta(d / "neg.fa", "n", 40, seed=2)
    return d


def get_input(data: Path, save: Path, *extra: str, task: str = "finetune", k: int = 3) -> None:
    import get_input as script

    script.main(["--kmer", str(k), "--extend_len", "250", "--task", task, "--data_dir", str(data),
                 "--save_dir", str(save), *extra])


def tsv_rows(path: Path) -> set[str]:
    return set(io.read_tsv(path).sentences)


def test_get_input_without_do_val_removes_the_old_test_split(data, tmp_path, caplog):
    save = tmp_path / "SAVE_DIR"
    get_input(data, save, "--do_val", "--seed", "1")
    old_test = tsv_rows(save / "test.tsv")
    (save / "my_notes.txt").write_text("mine")
    caplog.set_level(logging.INFO, logger="m6abert")
    get_input(data, save, "--seed", "2")
    assert sorted(p.name for p in save.iterdir()) == ["dev.tsv", "get_input_args.json", "leakage.json", "my_notes.txt",
                                                     "records.tsv", "train.tsv"]
    assert old_test & tsv_rows(save / "train.tsv")  # that is why the old test.tsv must not survive
    assert removal_lines(caplog) == [f"{save}: removed 1 earlier file not in the new fine-tuning splits: test.tsv"]
    assert io.read_json(save / "get_input_args.json")["seed"] == 2


def test_get_input_fewer_folds_and_then_no_folds(data, tmp_path):
    save = tmp_path / "SAVE_DIR"
    get_input(data, save, "--n_folds", "5")
    get_input(data, save, "--n_folds", "3")
    assert sorted(p.name for p in save.iterdir()) == ["fold_0", "fold_1", "fold_2", "folds.json",
                                                       "get_input_args.json", "leakage.json", "records.tsv"]
    assert io.read_json(save / "folds.json")["n_folds"] == 3
    get_input(data, save, "--do_val")
    assert sorted(p.name for p in save.iterdir()) == ["dev.tsv", "get_input_args.json", "leakage.json", "records.tsv",
                                                     "test.tsv", "train.tsv"]


def test_get_input_write_failing_part_way_keeps_the_old_splits(data, tmp_path, monkeypatch, capsys):
    save = tmp_path / "SAVE_DIR"
    get_input(data, save, "--do_val", "--seed", "1")
    before = snapshot(tmp_path)
    real_write_tsv, calls = io.write_tsv, []

    def third_fails(path, *args):
        calls.append(path)
        if len(calls) == 3:
            raise PermissionError(13, "Permission denied", str(path))
        real_write_tsv(path, *args)

    monkeypatch.setattr(io, "write_tsv", third_fails)
    with pytest.raises(SystemExit) as exc:
        get_input(data, save, "--do_val", "--seed", "2")
    assert exc.value.code == 2 and len(calls) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{save / 'test.tsv'}: cannot write (Permission denied)" in err[0]
    assert snapshot(tmp_path) == before


def test_get_input_pretrain_replaces_only_its_own_k(data, tmp_path):
    save = tmp_path / "SAVE_DIR"
    get_input(data, save, "--do_val")
    get_input(data, save, "--do_val", "--fasta", str(data / "neg.fa"), task="pretrain", k=3)
    get_input(data, save, "--fasta", str(data / "neg.fa"), task="pretrain", k=6)
    get_input(data, save, "--fasta", str(data / "neg.fa"), task="pretrain", k=3)
    assert sorted(p.name for p in (save / "pre").iterdir()) == ["3.txt", "6.txt"]  # 3_train, 3_val replaced
    assert {"train.tsv", "dev.tsv", "test.tsv"} <= {p.name for p in save.iterdir()}  # fine-tuning's stay


# ---------------------------------------------------------------------------- FASTA line ends
HEADER_CHARS = ["\u2028", "\x0c", "\x85", "\r", "\u2029", "\x1c"]


def header_fasta(path: Path) -> Path:
    """One record per character that ``str.splitlines`` would split at, inside its header; CRLF lines."""
    text = "".join(f">r{i} note{ch}acgt more\r\nACGT\r\nGG\r\n" for i, ch in enumerate(HEADER_CHARS))
    path.write_bytes(text.encode("utf-8"))
    return path


def test_read_fasta_splits_lines_only_at_newline(tmp_path):
    records = io.read_fasta(header_fasta(tmp_path / "h.fa"))
    assert records == [(f"r{i}", "ACGTGG") for i in range(len(HEADER_CHARS))]


def test_streamed_fasta_splits_lines_only_at_newline(tmp_path):
    path = header_fasta(tmp_path / "h.fa")
    records = [r for chunk in io.iter_fasta_chunks(path, chunk_records=4) for r in chunk]
    assert records == [(f"r{i}", "ACGTGG") for i in range(len(HEADER_CHARS))]


def test_fasta_line_numbers_count_newlines_only(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_bytes(">a x\x0cy\nACGT\n>b\u2028z\nAC-T\n>c\n\n".encode())
    for read in (io.read_fasta, lambda p: [r for c in io.iter_fasta_chunks(p) for r in c]):
        with pytest.raises(InputError, match=r"record b: illegal letter '-' at position 3"):
            read(path)
    path.write_bytes(">a x\x0cy\nACGT\n>c\x85d\n\n".encode())
    for read in (io.read_fasta, lambda p: [r for c in io.iter_fasta_chunks(p) for r in c]):
        with pytest.raises(InputError, match=r"record c \(line 3\): empty sequence"):
            read(path)


# ---------------------------------------------------------------------------- examples/demo/run_demo.sh
FAKE_PYTHON = '''
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_PY_LOG"], "a") as fh:
    fh.write(json.dumps(args) + "\\n")
if args[:1] == ["-"]:
    sys.stdin.read()
    sys.exit(0)
for flag in ("--save_dir", "--output_dir", "--predict_dir", "--save_file_dir"):
    if flag in args:
        os.makedirs(args[args.index(flag) + 1], exist_ok=True)
if args[0] == "find_motifs.py":
    with open(os.path.join(args[args.index("--save_file_dir") + 1], "motifs_pos.tsv"), "w") as fh:
        fh.write("motif\\tn\\n")
'''


def run_demo(tmp_path: Path, out: str | Path, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, list]:
    """Run the demo script with a PYTHON that only records its arguments (and makes the folders)."""
    tools = tmp_path / "tools"  # outside the folders the tests snapshot
    tools.mkdir(exist_ok=True)
    fake, log = tools / "fake python", tools / "python_calls.jsonl"
    fake.write_text(f"#!{sys.executable}\n{FAKE_PYTHON}")
    fake.chmod(0o755)
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHON": str(fake), "FAKE_PY_LOG": str(log)}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "demo" / "run_demo.sh"), str(out)], env=env,
                          cwd=cwd or tmp_path, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def test_demo_refuses_a_users_folder(tmp_path):
    work = tmp_path / "work"
    out = work / "my results"
    (out / "data").mkdir(parents=True)
    (out / "thesis.tex").write_text("months of work")
    before = snapshot(work)
    proc, calls = run_demo(tmp_path, out)
    assert proc.returncode == 2 and calls == []
    assert proc.stderr.strip() == (f"run_demo.sh: error: {out}: folder is not empty and is not an earlier demo "
                                   "output (no .m6abert-demo); give a new or empty folder")
    assert snapshot(work) == before
    (work / "a file").write_text("x")
    proc, calls = run_demo(tmp_path, work / "a file")
    assert proc.returncode == 2 and "exists and is not a folder" in proc.stderr and calls == []


def test_demo_path_with_a_space(tmp_path):
    out = tmp_path / "demo runs" / "out 1"
    proc, calls = run_demo(tmp_path, out)
    assert proc.returncode == 0, proc.stderr
    assert calls[0][0] == "get_input.py" and calls[0][calls[0].index("--save_dir") + 1] == str(out / "data")
    assert calls[2][calls[2].index("--train_data_file") + 1] == str(out / "data" / "pre" / "6_train.txt")
    assert [c[0] for c in calls] == ["get_input.py", "get_input.py", "run_pretrain.py", "run_finetune_degradation.py",
                                     "run_predict_degradation.py", "visualize_all.py", "visualize_all.py", "-",
                                     "visualize_all.py", "find_motifs.py", "-m", "run_predict_degradation.py", "-",
                                     "-m", "-m", "-m", "-", "-"]
    windows, sites = calls[10], calls[11]  # genome coordinates -> windows -> predictions
    assert windows[1] == "m6abert.cli.windows" and windows[windows.index("--gtf") + 1] == str(out / "genome" / "genes.gtf")
    assert sites[sites.index("--predict_fasta") + 1] == windows[windows.index("--out") + 1] == str(out / "sites" / "sites.fa")
    ism = calls[8]  # in-silico mutagenesis of a few test positives (written by the "-" step before it), in a window
    assert calls[7][1:3] == [str(out / "data" / "test.tsv"), str(out / "data" / "ism" / "test.tsv")]
    assert ism[ism.index("--vis_task") + 1] == "ism" and "--ism_window=-150:50" in ism
    assert ism[ism.index("--data_dir") + 1] == str(out / "data" / "ism")
    peaks = [(c[1], c[c.index("--vis_task") + 1], c[c.index("--data_dir") + 1]) for c in calls[-5:-2]]
    assert calls[-2][1] == str(out / "visualize" / "attributions_test_qc.tsv")  # the attribution QC summary
    assert peaks == [("m6abert.cli.profile_peak", "attn", str(out / "data")),
                     ("m6abert.cli.profile_peak", "attr", str(out / "data")),
                     ("m6abert.cli.profile_peak", "ism", str(out / "data" / "ism"))]
    assert "planted motif: -120..-80" in proc.stdout
    assert (out / ".m6abert-demo").is_file() and not (tmp_path / "demo").exists()


def test_demo_replaces_an_earlier_demo_output(tmp_path):
    out = tmp_path / "work" / "demo"
    assert run_demo(tmp_path, out)[0].returncode == 0
    (out / "data" / "stale.tsv").write_text("from the earlier run")
    proc, calls = run_demo(tmp_path, out)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "data" / "stale.tsv").exists() and (out / ".m6abert-demo").is_file() and len(calls) == 18
    (out / "my_notes.txt").write_text("mine")  # a demo output with a user's file in it is theirs now
    before = snapshot(out)
    proc, _ = run_demo(tmp_path, out)
    assert proc.returncode == 2 and "holds my_notes.txt" in proc.stderr and snapshot(out) == before


def test_demo_empty_folder_and_relative_path(tmp_path):
    (tmp_path / "empty").mkdir()
    assert run_demo(tmp_path, tmp_path / "empty")[0].returncode == 0
    assert (tmp_path / "empty" / ".m6abert-demo").is_file()
    proc, calls = run_demo(tmp_path, "rel/out", cwd=tmp_path)  # relative to where it is run from
    assert proc.returncode == 0, proc.stderr
    assert calls[0][calls[0].index("--save_dir") + 1] == str(tmp_path / "rel" / "out" / "data")


# ---------------------------------------------------------------------------- prediction and motifs
def test_fasta_prediction_removes_an_earlier_labelled_runs_metrics(tmp_path, caplog):
    """--predict_fasta into the folder of a labelled prediction: the old pred_metrics.json goes."""
    from toy import tiny_classifier, write_split_dir

    import run_predict_degradation

    data, model, pred = write_split_dir(tmp_path / "data", n=16), tiny_classifier(tmp_path / "model"), tmp_path / "p"
    (pred).mkdir()
    (pred / "notes.txt").write_text("mine\n")
    base = ["--data_dir", str(data), "--output_dir", str(model), "--predict_dir", str(pred), "--max_seq_length", "64"]
    run_predict_degradation.main(base)
    assert (pred / "pred_metrics.json").exists()
    (tmp_path / "new.fa").write_text(">r1\nACGTACGTACGTAC\n>r2\nGGGCCCAAATTTGG\n")
    with caplog.at_level(logging.INFO, logger="m6abert"):
        run_predict_degradation.main([*base, "--predict_fasta", str(tmp_path / "new.fa")])
    assert sorted(p.name for p in pred.iterdir()) == ["notes.txt", "pred_results.npy", "predict_args.json",
                                                        "predictions.tsv"]
    assert (pred / "predictions.tsv").read_text().splitlines()[0].startswith("id\t")
    assert any("pred_metrics.json" in line for line in removal_lines(caplog))


def test_find_motifs_rerun_removes_motif_files_the_new_table_does_not_list(tmp_path):
    import numpy as np

    import find_motifs
    from m6abert.kmer import seq2kmer

    rng = np.random.RandomState(0)
    seqs = ["".join(rng.choice(list("ACGT"), 101)) for _ in range(8)]
    io.write_tsv(tmp_path / "d" / "dev.tsv", [seq2kmer(s, 3) for s in seqs], [1, 0] * 4)
    io.save_npy(tmp_path / "n" / "atten_dev.npy", rng.uniform(0, 1, (8, 110)))
    save = tmp_path / "m"
    io.write_text(save / "pos" / "motif_AAAAA_9.txt", "an earlier run's motif\n")
    io.write_text(save / "pos" / "motif_AAAAA_9_logo.png", "an earlier run's logo\n")
    io.write_text(save / "pos" / "my_notes.txt", "mine\n")
    find_motifs.main(["--data_dir", str(tmp_path / "d"), "--npy_dir", str(tmp_path / "n"), "--data_name", "dev",
                      "--vis_task", "attn", "--save_file_dir", str(save), "--min_n_motif", "1", "--pval_cutoff", "1"])
    listed = {line.split("\t")[0] for line in (save / "motifs_pos.tsv").read_text().splitlines()[1:]}
    files = {p.name for p in (save / "pos").iterdir()}
    assert "motif_AAAAA_9.txt" not in files and "motif_AAAAA_9_logo.png" not in files and "my_notes.txt" in files
    assert {n.split("_")[1] for n in files if n.startswith("motif_")} == listed


def test_a_neg_run_keeps_the_pos_runs_heatmap(tmp_path):
    import numpy as np

    import find_motifs
    from m6abert.kmer import seq2kmer

    rng = np.random.RandomState(1)
    seqs = ["".join(rng.choice(list("ACGT"), 101)) for _ in range(8)]
    io.write_tsv(tmp_path / "d" / "dev.tsv", [seq2kmer(s, 3) for s in seqs], [1, 0] * 4)
    io.save_npy(tmp_path / "n" / "atten_dev.npy", rng.uniform(0, 1, (8, 110)))
    base = ["--data_dir", str(tmp_path / "d"), "--npy_dir", str(tmp_path / "n"), "--data_name", "dev", "--vis_task",
            "attn", "--save_file_dir", str(tmp_path / "m"), "--min_n_motif", "1", "--pval_cutoff", "1"]
    find_motifs.main([*base, "--set", "pos", "--do_plot"])
    assert (tmp_path / "m" / "heatmap_dev.png").exists()
    find_motifs.main([*base, "--set", "neg"])
    assert (tmp_path / "m" / "heatmap_dev.png").exists() and (tmp_path / "m" / "motifs_neg.tsv").exists()
