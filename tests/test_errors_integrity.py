"""Silently wrong results and operating-system failures, as one-line errors (issue "nothing lost, nothing
stale, nothing silently wrong").

The table rows have the shape of tests/test_errors.py: the command runs on good inputs with one thing
spoilt and must exit with status 2, print the one line and leave every file as it was. Behaviour tests
below cover what is not an error: strict JSON for undefined metrics, score metadata, a full disk.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_errors import Case, run_case, snapshot
from toy import tiny_classifier, write_split_dir

from m6abert import io
from m6abert.kmer import seq2kmer

ROOT = Path(__file__).resolve().parents[1]


def inf_classifier(folder: Path) -> Path:
    """A classifier with finite weights whose logits overflow to infinity (so its probabilities are NaN)."""
    from m6abert.model import load_model

    tiny_classifier(folder)
    model, k = load_model(str(folder), "classification", fine_tuned=True)
    with torch.no_grad():
        model.classifier.weight.fill_(3e38)
    io.save_checkpoint(folder, model, k)
    return folder


# ---------------------------------------------------------------------------- run_predict_degradation.py
PREDICT = [
    Case("inf-outputs", "a model whose outputs overflow to infinity (FASTA)",
         "{file}: the model gives NaN or infinite outputs for 2 of 2 sequences (first: r1); the checkpoint is not usable",
         "OUTPUT_DIR"),
    Case("inf-outputs-tsv", "a model whose outputs overflow to infinity (labelled `test.tsv`)",
         "{file}: the model gives NaN or infinite outputs for 16 of 16 sequences (first: 0); the checkpoint is not "
         "usable", "OUTPUT_DIR"),
    Case("predict-dir-file", "`--predict_dir` is a file",
         "{file}: cannot create the folder: {file} is a file, not a folder", "PREDICT_DIR"),
]


def build_predict(case: str, tmp: Path) -> list[str]:
    data, model, pred = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "PREDICT_DIR"
    write_split_dir(data, n=32)
    tiny_classifier(model)
    argv = ["--data_dir", str(data), "--output_dir", str(model), "--predict_dir", str(pred), "--max_seq_length", "64"]
    if case == "inf-outputs":
        inf_classifier(model)
        (tmp / "new.fa").write_text(">r1\nACGTACGTACGT\n>r2\nGGGCCCAAATTT\n")
        argv += ["--predict_fasta", str(tmp / "new.fa")]
    elif case == "inf-outputs-tsv":
        inf_classifier(model)
    elif case == "predict-dir-file":
        pred.write_text("a file where the folder should be\n")
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- run_finetune_degradation.py
FINETUNE = [
    Case("positions", "a checkpoint of 32 positions for 61-token rows (`--max_seq_length 64`)",
         "--max_seq_length 64 exceeds the model's 32 positions ({file})", "MODEL_PATH"),
]


def build_finetune(case: str, tmp: Path) -> list[str]:
    from m6abert.model import build_config, new_model

    data, model, out = tmp / "DATA_DIR", tmp / "MODEL_PATH", tmp / "OUTPUT_DIR"
    write_split_dir(data, n=16)
    if case != "positions":
        raise AssertionError(case)
    io.save_checkpoint(model, new_model(build_config("tiny", 3, max_position_embeddings=32), "mlm"), 3)
    return ["--model_name_or_path", str(model), "--data_dir", str(data), "--output_dir", str(out), "--do_train",
            "--max_seq_length", "64", "--max_steps", "1"]


# ---------------------------------------------------------------------------- visualize_all.py
VISUALIZE = [
    Case("inf-attn", "attention of a model whose outputs overflow",
         "{file}: the model gives NaN or infinite probabilities for 16 of 16 sequences (first: 0); the checkpoint is not "
         "usable", "MODEL_PATH"),
    Case("inf-attr", "attributions of a model whose outputs overflow",
         "{file}: the model gives NaN or infinite attributions for 16 of 16 sequences (first: 0); the checkpoint is not "
         "usable", "MODEL_PATH"),
    Case("under-a-file", "`--output_dir` below a file",
         "{file}/sub: cannot create the folder: {file} is a file, not a folder", "OUTPUT_DIR"),
]


def build_visualize(case: str, tmp: Path) -> list[str]:
    data, model, out = tmp / "DATA_DIR", tmp / "MODEL_PATH", tmp / "OUTPUT_DIR"
    write_split_dir(data, n=32)
    tiny_classifier(model)
    argv = ["--model_path", str(model), "--data_dir", str(data), "--data_name", "dev", "--vis_task", "attn",
            "--output_dir", str(out), "--max_seq_length", "64", "--no_plot"]
    if case in ("inf-attn", "inf-attr"):
        inf_classifier(model)
        argv[7] = case[4:]
        argv += ["--n_steps", "4"] if case == "inf-attr" else []
    elif case == "under-a-file":
        out.write_text("a file\n")
        argv[9] = str(out / "sub")
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- find_motifs.py
FIND_MOTIFS = [
    Case("other-tsv", "scores of another TSV with the same number of rows",
         "{file}: computed from another dev.tsv (SHA-256 recorded in attributions_dev.npy.json differs from …); "
         "re-run visualize_all.py on these data", "NPY_DIR/attributions_dev.npy"),
    Case("npz", "an `.npz` archive saved under the `.npy` name",
         "{file}: a .npz archive of arrays, expected one .npy array (np.save, not np.savez)",
         "NPY_DIR/attributions_dev.npy"),
    Case("escape", "`--data_name x/../../escaped --do_plot` (a path outside `--save_file_dir`)",
         "--data_name 'x/../../escaped' must be a TSV stem such as train, dev, test or all (no folder parts): every "
         "output stays inside --save_file_dir"),
]


def _scored(tmp: Path, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.RandomState(seed)
    seqs = ["".join(rng.choice(list("ACGT"), 101)) for _ in range(6)]
    return seqs, rng.uniform(0, 1, (6, 110))


def build_find_motifs(case: str, tmp: Path) -> list[str]:
    data, npy, save = tmp / "DATA_DIR", tmp / "NPY_DIR", tmp / "SAVE_DIR"
    seqs, scores = _scored(tmp)
    io.write_tsv(data / "dev.tsv", [seq2kmer(s, 3) for s in seqs], [1, 0] * 3)
    io.save_npy(npy / "attributions_dev.npy", scores)
    io.write_json(npy / "attributions_dev.npy.json", {"sources": [{"tsv": "dev.tsv",
                                                                    "sha256": io.file_sha256(data / "dev.tsv")}]})
    argv = ["--data_dir", str(data), "--npy_dir", str(npy), "--data_name", "dev", "--vis_task", "attr",
            "--save_file_dir", str(save)]
    if case == "other-tsv":
        other, _ = _scored(tmp, seed=1)
        io.write_tsv(data / "dev.tsv", [seq2kmer(s, 3) for s in other], [1, 0] * 3)
    elif case == "npz":
        with open(npy / "attributions_dev.npy", "wb") as fh:
            np.savez(fh, scores=scores)
    elif case == "escape":
        argv[5] = "x/../../escaped"
        argv.append("--do_plot")
    else:
        raise AssertionError(case)
    return argv


CASES = ([("run_predict_degradation.py", c) for c in PREDICT] + [("run_finetune_degradation.py", c) for c in FINETUNE]
         + [("visualize_all.py", c) for c in VISUALIZE]
         + [("find_motifs.py", c) for c in FIND_MOTIFS])


BUILDERS = {"run_predict_degradation": (PREDICT, build_predict), "run_finetune_degradation": (FINETUNE, build_finetune),
            "visualize_all": (VISUALIZE, build_visualize), "find_motifs": (FIND_MOTIFS, build_find_motifs)}


@pytest.mark.parametrize("script, case", [pytest.param(script, c, id=f"{script}-{c.id}")
                                          for script, (table, _) in BUILDERS.items() for c in table])
def test_case(script, case, tmp_path, capsys):
    import importlib

    run_case(importlib.import_module(script).main, BUILDERS[script][1], case, tmp_path, capsys)


# ---------------------------------------------------------------------------- behaviour
def test_scores_carry_the_checksum_of_their_tsv(tmp_path):
    """visualize_all.py records what it scored; find_motifs.py accepts its own TSV."""
    import find_motifs
    import visualize_all

    data, model, out = tmp_path / "data", tmp_path / "model", tmp_path / "vis"
    write_split_dir(data, n=16)
    tiny_classifier(model)
    visualize_all.main(["--model_path", str(model), "--data_dir", str(data), "--data_name", "dev", "--vis_task", "attn",
                        "--output_dir", str(out), "--max_seq_length", "64", "--no_plot"])
    meta = json.loads((out / "atten_dev.npy.json").read_text())
    assert meta["sources"] == [{"tsv": "dev.tsv", "sha256": io.file_sha256(data / "dev.tsv")}]
    assert meta["rows"] == 8 and meta["vis_task"] == "attn"
    find_motifs.main(["--data_dir", str(data), "--npy_dir", str(out), "--data_name", "dev", "--vis_task", "attn",
                      "--save_file_dir", str(tmp_path / "motifs"), "--min_n_motif", "1", "--pval_cutoff", "1"])
    assert (tmp_path / "motifs" / "motifs_pos.tsv").exists()


def test_undefined_metrics_are_null_and_warned(tmp_path, caplog):
    """One class in test.tsv: AUC and AUPR are undefined, written as null (strict JSON), with a warning."""
    import run_predict_degradation

    data, model = tmp_path / "data", tmp_path / "model"
    write_split_dir(data, n=16)
    rows = io.read_tsv(data / "test.tsv")
    io.write_tsv(data / "test.tsv", rows.sentences, [1] * len(rows.sentences))
    tiny_classifier(model)
    run_predict_degradation.main(["--data_dir", str(data), "--output_dir", str(model), "--predict_dir",
                                  str(tmp_path / "pred"), "--max_seq_length", "64"])
    text = (tmp_path / "pred" / "pred_metrics.json").read_text()
    assert "NaN" not in text
    metrics = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert metrics["auc"] is None and metrics["aupr"] is None and metrics["acc"] is not None
    assert any("AUC and AUPR are undefined" in r.message for r in caplog.records)


def test_json_is_strict():
    assert io.json_dumps({"a": float("nan"), "b": [float("-inf"), 1.5], "c": np.float32(2.0)}) == \
        '{"a": null, "b": [null, 1.5], "c": 2.0}'


def test_permission_denied_is_one_line(tmp_path, monkeypatch, capsys):
    """A folder the user may not write (injected: the tests run as root, which no permission bit stops)."""
    import find_motifs

    data, npy, save = tmp_path / "DATA_DIR", tmp_path / "NPY_DIR", tmp_path / "SAVE_DIR"
    seqs, scores = _scored(tmp_path)
    io.write_tsv(data / "dev.tsv", [seq2kmer(s, 3) for s in seqs], [1, 0] * 3)
    io.save_npy(npy / "atten_dev.npy", scores)
    save.mkdir()
    real_mkdir = Path.mkdir

    def refuse(self, *a, **kw):
        if save in (self, *self.parents) and self != save:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", refuse)
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exc:
        find_motifs.main(["--data_dir", str(data), "--npy_dir", str(npy), "--data_name", "dev", "--vis_task", "attn",
                          "--save_file_dir", str(save), "--min_n_motif", "1", "--pval_cutoff", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].endswith(f"{save}/pos: cannot write (Permission denied)"), err[0]
    assert snapshot(tmp_path) == before


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root can mount one here); skipped where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk test is skipped")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_full_disk_is_one_line_and_leaves_no_partial_file(small_disk, tmp_path):
    """A full disk during a checkpoint save (torch.save's C++ error) and during an array save: one line
    that says "No space left on device", no partial checkpoint or array left behind."""
    data, model = tmp_path / "data", tmp_path / "model"
    write_split_dir(data, n=16)
    tiny_classifier(model)
    (small_disk / "filler").write_bytes(b"\0" * (256 * 1024 - 64 * 1024))  # leaves 64 KiB: too little for a model
    runs = [
        ["run_finetune_degradation.py", "--model_name_or_path", str(model), "--data_dir", str(data), "--do_train",
         "--max_seq_length", "64", "--max_steps", "1", "--save_steps", "1", "--output_dir", str(small_disk / "ft")],
        ["visualize_all.py", "--model_path", str(model), "--data_dir", str(data), "--data_name", "all", "--vis_task",
         "attn", "--max_seq_length", "512", "--output_dir", str(small_disk / "vis"), "--no_plot"],
    ]
    for argv in runs:
        proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and " - INFO - " not in ln
                 and " - WARNING - " not in ln and "%|" not in ln]
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert len(lines) == 1 and "No space left on device" in lines[0], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
    leftovers = [p.name for p in small_disk.rglob("*") if io.is_leftover(p.name) or p.name.startswith("checkpoint-")]
    assert leftovers == []
    # nor a truncated final model or score array under its real name
    assert not list(small_disk.rglob("*.safetensors")) and not list(small_disk.rglob("*.npy"))
