"""Fine-tuning and prediction: parity with the original, resume, CV, DDP, the README commands.

Bad input (one line, exit status 2, nothing written, pickles refused) is in tests/test_errors.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from toy import planted_records, tiny_pretrained, write_fasta, write_split_dir

import get_input
import run_finetune_degradation as ft
import run_predict_degradation as pr
from m6abert import io
from m6abert.cli import finetune as ft_cli
from m6abert.cli.common import run_guarded
from m6abert.data import Collator, KmerDataset
from m6abert.kmer import encode_kmer_sentences
from m6abert.model import build_config, load_model

ROOT = Path(__file__).resolve().parents[1]

FAST = ["--model_type", "dna", "--task_name", "dnaprom", "--max_seq_length", "64",
        "--per_gpu_train_batch_size", "8", "--per_gpu_eval_batch_size", "16", "--learning_rate", "1e-3",
        "--logging_steps", "2", "--save_steps", "2", "--evaluate_during_training", "--seed", "7"]


def finetune(tmp_path: Path, data: Path, out: Path, *extra: str) -> dict:
    model = tiny_pretrained(tmp_path / "pre") if not (tmp_path / "pre").exists() else tmp_path / "pre"
    return run_guarded(ft_cli.run, [*FAST, "--tokenizer_name", "dna3", "--model_name_or_path", str(model), "--do_train",
                    "--do_eval", "--data_dir", str(data), "--output_dir", str(out), *extra])


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


# ---------------------------------------------------------------------------- parity with the original
def test_compat_logits_match_the_original(k3_fixture):
    """--dnabert_compat reproduces the fork's unmasked-padding logits; default masking the unpadded ones."""
    tsv = io.read_tsv(k3_fixture / "inputs.tsv")
    data = KmerDataset(encode_kmer_sentences(tsv.sentences, 3), tsv.labels, 512)
    for compat, expected, attn in ((True, "expected_logits.npy", "eager"),
                                   (False, "expected_logits_standard_mask.npy", "sdpa")):
        model, k = load_model(str(k3_fixture / "ckpt"), attn_implementation=attn)
        batch = Collator(512, compat)([data[i] for i in range(len(data))])
        if compat:  # identical inputs to the fork's
            assert np.array_equal(batch["input_ids"].numpy(), np.load(k3_fixture / "input_ids.npy"))
        batch.pop("labels")
        with torch.inference_mode():
            logits = model.eval()(**batch).logits.numpy()
        assert k == 3
        np.testing.assert_allclose(logits, np.load(k3_fixture / expected), atol=1e-4)
    # the two modes really differ on the padded rows: the switch matters
    assert np.abs(np.load(k3_fixture / "expected_logits.npy") - logits).max() > 1e-3


def test_predict_script_reproduces_expected_probs(k3_fixture, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(k3_fixture / "inputs.tsv", data / "test.tsv")
    pred = tmp_path / "pred"
    pr.main(["--model_type", "dna", "--tokenizer_name=dna3", "--model_name_or_path", str(k3_fixture / "ckpt"),
             "--task_name", "dnaprom", "--data_dir", str(data), "--do_predict", "--max_seq_length", "512",
             "--per_gpu_eval_batch_size=50", "--output_dir", str(k3_fixture / "ckpt"), "--n_process", "1",
             "--predict_dir", str(pred), "--dnabert_compat", "--per_gpu_pred_batch_size", "4"])
    probs = np.load(pred / "pred_results.npy")
    assert probs.dtype == np.float32 and probs.shape == (10,)
    np.testing.assert_allclose(probs, np.load(k3_fixture / "expected_probs.npy"), atol=1e-5)
    rows = (pred / "predictions.tsv").read_text().splitlines()
    assert rows[0] == "row\tprobability\tpredicted_label\ttrue_label" and len(rows) == 11
    metrics = json.loads((pred / "pred_metrics.json").read_text())
    assert set(metrics) >= {"acc", "f1", "mcc", "auc", "precision", "recall", "aupr", "f1_pos"}


# ---------------------------------------------------------------------------- training behaviour
def test_training_writes_the_original_outputs_and_learns(tmp_path):
    data = write_split_dir(tmp_path / "data", n=64)
    out = tmp_path / "out"
    res = finetune(tmp_path, data, out, "--num_train_epochs", "6", "--save_total_limit", "2")
    lines = (out / "eval_results.txt").read_text().splitlines()
    steps = 6 * (64 // 8)
    assert res["global_step"] == steps
    assert len(lines) == steps // 2 + 1  # every logging step + the final --do_eval
    assert all(line.startswith("data ") and len(line.split()) == 7 for line in lines)
    records = [json.loads(x) for x in (out / "eval_results.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(2, steps + 1, 2))
    best = json.loads((out / "best_checkpoint.json").read_text())
    assert best["metric"] == max(r["eval_auc"] for r in records)
    assert (out / best["checkpoint"] / "model.safetensors").exists()  # kept despite rotation
    ckpts = sorted(p.name for p in out.glob("checkpoint-*"))
    assert len(ckpts) <= 3 and f"checkpoint-{steps}" in ckpts
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
                 "all_results.json", "finetune_args.json"):
        assert (out / name).exists(), name
    assert not list(out.rglob("*.bin"))  # no pickles written
    # the planted motif is learnt: dev AUC of the final model well above chance
    assert res["eval_auc"] > 0.8


def test_resume_ends_identical_to_an_uninterrupted_run(tmp_path):
    data = write_split_dir(tmp_path / "data", n=32)
    full, part = tmp_path / "full", tmp_path / "part"
    finetune(tmp_path, data, full, "--max_steps", "8")
    # the interrupted run: the checkpoints up to step 4 survived (the best on dev among them included)
    part.mkdir()
    for ckpt in full.glob("checkpoint-*"):
        if int(ckpt.name.split("-")[1]) <= 4:
            shutil.copytree(ckpt, part / ckpt.name)
    finetune(tmp_path, data, part, "--max_steps", "8", "--should_continue")
    a, b = weights(full), weights(part)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert (full / "eval_results.txt").read_bytes() == (part / "eval_results.txt").read_bytes()
    assert (full / "eval_results.jsonl").read_bytes() == (part / "eval_results.jsonl").read_bytes()


def test_same_seed_same_metrics(tmp_path):
    data = write_split_dir(tmp_path / "data", n=32)
    r1 = finetune(tmp_path, data, tmp_path / "a", "--max_steps", "4")
    r2 = finetune(tmp_path, data, tmp_path / "b", "--max_steps", "4")
    assert r1["eval"] == r2["eval"] and r1["train_loss"] == r2["train_loss"]
    assert (tmp_path / "a" / "eval_results.txt").read_bytes() == (tmp_path / "b" / "eval_results.txt").read_bytes()


def test_early_stop(tmp_path):
    data = write_split_dir(tmp_path / "data", n=32)
    res = finetune(tmp_path, data, tmp_path / "o", "--num_train_epochs", "50", "--early_stop", "1",
                   "--learning_rate", "5e-2")
    assert res["stopped_early"] and res["global_step"] < 50 * 4


def test_non_empty_output_dir_needs_overwrite(tmp_path):
    data = write_split_dir(tmp_path / "data", n=16)
    out = tmp_path / "o"
    finetune(tmp_path, data, out, "--max_steps", "2")
    before = sorted(p.name for p in out.iterdir())
    proc = subprocess.run([sys.executable, "run_finetune_degradation.py", *FAST, "--model_name_or_path",
                           str(tmp_path / "pre"), "--do_train", "--data_dir", str(data), "--output_dir", str(out),
                           "--max_steps", "2"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--overwrite_output_dir" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == before
    res = finetune(tmp_path, data, out, "--max_steps", "4", "--overwrite_output_dir")
    assert res["global_step"] == 4
    # the old run's results are gone: 2 evaluations during training + the final --do_eval
    assert len((out / "eval_results.txt").read_text().splitlines()) == 3


def test_from_scratch_configs(tmp_path):
    cfg = build_config("bert-base", 6)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
            cfg.vocab_size) == (12, 768, 12, 3072, 4101)
    data = write_split_dir(tmp_path / "data", n=16)
    out = tmp_path / "o"
    ft.main([*FAST, "--tokenizer_name", "dna3", "--from_scratch", "--config_name", "tiny", "--do_train",
             "--data_dir", str(data), "--output_dir", str(out), "--max_steps", "2"])
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"]) == (2, 64, 69)
    assert "rnn" not in cfg and "split" not in cfg  # the fork's extra keys are not emitted


def test_predict_fasta(tmp_path):
    data = write_split_dir(tmp_path / "data", n=16)
    out = tmp_path / "o"
    finetune(tmp_path, data, out, "--max_steps", "2")
    pos, _ = planted_records(3, 0, length=50)
    fasta = write_fasta(tmp_path / "new.fa", pos)
    pr.main(["--data_dir", str(data), "--output_dir", str(out), "--predict_fasta", str(fasta),
             "--predict_dir", str(tmp_path / "p"), "--max_seq_length", "64"])
    rows = [r.split("\t") for r in (tmp_path / "p" / "predictions.tsv").read_text().splitlines()]
    assert rows[0] == ["id", "probability", "predicted_label"] and [r[0] for r in rows[1:]] == ["p1", "p2", "p3"]
    assert all(0 <= float(r[1]) <= 1 for r in rows[1:])


def test_cross_validation(tmp_path):
    pos, neg = planted_records(25, 40, length=61)
    raw = tmp_path / "raw"
    write_fasta(raw / "pos.fa", pos), write_fasta(raw / "neg.fa", neg)
    get_input.main(["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--data_dir", str(raw),
                    "--save_dir", str(tmp_path / "cv"), "--n_folds", "5"])
    out = tmp_path / "out"
    tiny_pretrained(tmp_path / "pre")
    ft.main([*FAST, "--model_name_or_path", str(tmp_path / "pre"), "--do_train", "--do_eval",
             "--data_dir", str(tmp_path / "cv"), "--output_dir", str(out), "--max_steps", "2", "--n_folds", "5"])
    cv = json.loads((out / "cv_results.json").read_text())
    assert cv["n_folds"] == 5 and [f["fold"] for f in cv["folds"]] == list(range(5))
    aucs = [f["metrics"]["auc"] for f in cv["folds"]]
    assert cv["summary"]["auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert cv["summary"]["auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    md = (out / "cv_results.md").read_text().splitlines()
    assert len(md) == 2 + 5 + 1 and "±" in md[-1]
    for i in range(5):
        assert (out / f"fold_{i}" / "model.safetensors").exists()


# ---------------------------------------------------------------------------- the README commands on the real data
def test_readme_commands_on_real_data(real_data_dir, tmp_path):
    data = tmp_path / "3_decay_250"
    get_input.main(["--do_val", "--kmer", "3", "--extend_len", "250", "--task", "finetune",
                    "--data_dir", str(real_data_dir), "--save_dir", str(data), "--seed", "52"])
    model = tiny_pretrained(tmp_path / "pre")
    out = tmp_path / "ft"
    ft.main(["--model_type", "dna", "--tokenizer_name=dna3", "--model_name_or_path", str(model),
             "--task_name", "dnaprom", "--do_train", "--do_eval", "--data_dir", str(data), "--save_steps", "50",
             "--logging_steps", "50", "--max_seq_length", "512", "--per_gpu_eval_batch_size=40",
             "--per_gpu_train_batch_size=40", "--learning_rate", "1e-6", "--num_train_epochs", "100",
             "--output_dir", str(out), "--n_process", "10", "--hidden_dropout_prob", "0.1",
             "--evaluate_during_training", "--weight_decay", "0.01",
             # only added: stop after 2 steps and log/save at 1 instead of 50
             "--max_steps", "2", "--save_steps", "1", "--logging_steps", "1"])
    assert (out / "checkpoint-2" / "model.safetensors").exists()
    assert len((out / "eval_results.txt").read_text().splitlines()) == 3
    pr.main(["--model_type", "dna", "--tokenizer_name=dna3", "--model_name_or_path", str(model),
             "--task_name", "dnaprom", "--data_dir", str(data), "--save_steps", "50", "--logging_steps", "50",
             "--do_predict", "--max_seq_length", "512", "--per_gpu_eval_batch_size=50",
             "--per_gpu_train_batch_size=50", "--learning_rate", "1e-6", "--num_train_epochs", "100",
             "--output_dir", str(out / "checkpoint-2"), "--n_process", "1", "--evaluate_during_training",
             "--predict_dir", str(out)])
    probs = np.load(out / "pred_results.npy")
    assert probs.shape == (194,) and probs.dtype == np.float32


# ---------------------------------------------------------------------------- DDP
def test_ddp_two_cpu_processes(tmp_path):
    data = write_split_dir(tmp_path / "data", n=32)
    model = tiny_pretrained(tmp_path / "pre")
    out = tmp_path / "o"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
         "run_finetune_degradation.py", *FAST, "--model_name_or_path", str(model), "--do_train",
         "--data_dir", str(data), "--output_dir", str(out), "--max_steps", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "all_results.json").read_text())
    assert res["world_size"] == 2 and res["ddp_weights_identical"] is True
    assert res["global_step"] == 4


def test_bf16_autocast_on_cpu(tmp_path):
    data = write_split_dir(tmp_path / "data", n=16)
    res = finetune(tmp_path, data, tmp_path / "o", "--max_steps", "2", "--bf16")
    assert res["global_step"] == 2 and np.isfinite(res["train_loss"]) and 0 <= res["eval"]["auc"] <= 1
    assert json.loads((tmp_path / "o" / "finetune_args.json").read_text())["runtime"]["precision"] == "bfloat16"
