"""The original README's four commands, read token for token from ``shared/spec/original-commands.sh``
and run by bash in real processes, one after the other, as a user pastes them.

Only the exported variables are ours (small synthetic 501-nt windows, a tiny pretrained model); the
flags a run needs to stay small (``--max_steps``, a checkpoint every 2 steps, fewer integration
steps) are appended at the END of a command, never edited into it. Every command must exit 0 and
write what the original writes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SHARED
from toy import random_seq, tiny_pretrained, write_fasta

from m6abert.io import FastaRecord

SPEC = SHARED / "spec" / "original-commands.sh"
SCRIPTS = ("get_input.py", "run_finetune_degradation.py", "run_predict_degradation.py", "visualize_all.py")


def original_commands() -> dict[str, str]:
    """The spec file's commands by script name: comment lines dropped, backslash continuations joined."""
    text = re.sub(r"\\\n", " ", SPEC.read_text(encoding="utf-8"))
    commands = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("python3 ")]
    return {cmd.split()[1]: cmd for cmd in commands}


def run_original(script: str, env: dict, *appended: str) -> subprocess.CompletedProcess:
    """Run the spec's command for ``script`` under bash, with ``appended`` flags after its last token."""
    cmd = " ".join([original_commands()[script], *appended])
    return subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    """The four commands in the README's order on 24 positive and 72 negative windows; their processes."""
    if not SPEC.exists():
        pytest.skip(f"the original commands are not at {SPEC} (set M6ABERT_SHARED)")
    tmp = tmp_path_factory.mktemp("original")
    rng = np.random.RandomState(3)
    raw = tmp / "raw"
    write_fasta(raw / "pos.fa", [FastaRecord(f"p{i}", random_seq(rng, 501)) for i in range(24)])
    write_fasta(raw / "neg.fa", [FastaRecord(f"n{i}", random_seq(rng, 501)) for i in range(72)])
    bindir = tmp / "bin"  # `python3` in the commands is this interpreter (a venv's, in CI)
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    out = tmp / "ft"
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "KMER": "3", "SEED": "52",
           "RAW_DATA_PATH": str(raw), "DATA_PATH": str(tmp / "3_decay_250"),
           "MODEL_PATH": str(tiny_pretrained(tmp / "pretrained")), "OUTPUT_PATH": str(out),
           "FINUE_TUNED_MODEL_PATH": str(out / "checkpoint-2"), "OMP_NUM_THREADS": "1"}
    procs = {"get_input.py": run_original("get_input.py", env)}
    procs["run_finetune_degradation.py"] = run_original("run_finetune_degradation.py", env,
                                                        "--max_steps", "2", "--save_steps", "2", "--logging_steps", "2")
    env_pred = {**env, "OUTPUT_PATH": str(tmp / "pred")}
    procs["run_predict_degradation.py"] = run_original("run_predict_degradation.py", env_pred)
    for task in ("attn", "attr"):
        env_vis = {**env, "OUTPUT_PATH": str(tmp / f"vis_{task}"), "DATASET": "dev", "TASK": task}
        procs[f"visualize_all.py {task}"] = run_original("visualize_all.py", env_vis,
                                                          *(["--n_steps", "4", "--n_baselines", "1"] if task == "attr" else []))
    return {"tmp": tmp, "env": env, "procs": procs}


def test_the_spec_holds_the_four_commands():
    if not SPEC.exists():
        pytest.skip(f"the original commands are not at {SPEC}")
    assert tuple(original_commands()) == SCRIPTS


@pytest.mark.parametrize("step", ["get_input.py", "run_finetune_degradation.py", "run_predict_degradation.py",
                                  "visualize_all.py attn", "visualize_all.py attr"])
def test_each_command_exits_0(pipeline, step):
    proc = pipeline["procs"][step]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_the_commands_write_what_the_original_writes(pipeline):
    """get_input's three k-merised splits, a checkpoint-2 to predict with, one probability per test row,
    attention and attribution arrays with one row per dev row."""
    tmp = pipeline["tmp"]
    data = tmp / "3_decay_250"
    rows = {}
    for split in ("train", "dev", "test"):
        lines = (data / f"{split}.tsv").read_text().splitlines()
        assert lines[0] == "seq\tlabel"
        kmers = lines[1].split("\t")[0].split()
        assert len(kmers) == 499 and all(len(km) == 3 for km in kmers)
        rows[split] = len(lines) - 1
    assert sum(rows.values()) == 48  # balanced: every positive and as many negatives
    assert (tmp / "ft" / "checkpoint-2" / "model.safetensors").exists()
    probs = np.load(tmp / "pred" / "pred_results.npy")
    assert probs.shape == (rows["test"],) and probs.dtype == np.float32 and np.all((probs >= 0) & (probs <= 1))
    atten = np.load(tmp / "vis_attn" / "atten_dev.npy")
    attr = np.load(tmp / "vis_attr" / "attributions_dev.npy")
    assert atten.shape[0] == attr.shape[0] == rows["dev"]
