"""What keeps runs from being mixed, beyond the error table of tests/test_errors_shards.py: the model's
identity, what every output records, and that content (not paths) decides what may be merged or resumed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from toy import planted_records, tiny_classifier, tiny_pretrained, write_fasta, write_split_dir

from m6abert import io
from m6abert.io.checkpoints import model_identity

PRED = ["--max_seq_length", "64", "--chunk_records", "4", "--no_cuda"]


def _predict(model: Path, fasta: Path, out: Path, *extra: str) -> None:
    import run_predict_degradation

    run_predict_degradation.main(["--data_dir", str(fasta.parent), "--output_dir", str(model), "--predict_fasta",
                                  str(fasta), "--predict_dir", str(out), *PRED, *extra])


def test_model_identity_follows_the_weights_and_config_not_the_path(tmp_path):
    a = tiny_classifier(tmp_path / "a")
    shutil.copytree(a, tmp_path / "copy")
    assert model_identity(tmp_path / "copy") == model_identity(a)
    tiny_classifier(tmp_path / "b", seed=1)  # other weights, same config
    assert (tmp_path / "b" / "config.json").read_bytes() == (a / "config.json").read_bytes()
    assert model_identity(tmp_path / "b") != model_identity(a)
    config = json.loads((a / "config.json").read_text())
    (tmp_path / "copy" / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.3}))
    assert model_identity(tmp_path / "copy") != model_identity(a)


def test_every_output_records_the_model_identity(tmp_path):
    """shard.json (with the data's SHA-256 and the flags), predict_args.json, the score .npy.json and
    visualize_args.json."""
    import visualize_all

    model = tiny_classifier(tmp_path / "model")
    pos, neg = planted_records(3, 3)
    fasta = write_fasta(tmp_path / "in.fa", pos + neg)
    _predict(model, fasta, tmp_path / "s0", "--shard", "0", "--num_shards", "2", "--bf16")
    ident = model_identity(model)
    record = json.loads((tmp_path / "s0" / "shard.json").read_text())
    assert record["model_identity"] == ident and record["fasta_sha256"] == io.file_sha256(fasta)
    assert (record["precision"], record["max_seq_length"], record["batch_size"]) == ("bf16", 64, 8)
    assert record["dnabert_compat"] is False and record["variants_sha256"] is None
    assert json.loads((tmp_path / "s0" / "predict_args.json").read_text())["model_identity"] == ident
    write_split_dir(tmp_path / "data", n=8)
    visualize_all.main(["--model_path", str(model), "--data_dir", str(tmp_path / "data"), "--data_name", "dev",
                        "--vis_task", "attn", "--output_dir", str(tmp_path / "vis"), "--max_seq_length", "64",
                        "--no_plot", "--batch_size", "2"])
    meta = json.loads((tmp_path / "vis" / "atten_dev.npy.json").read_text())
    assert meta["model_identity"] == ident and (meta["max_seq_length"], meta["batch_size"]) == (64, 2)
    assert json.loads((tmp_path / "vis" / "visualize_args.json").read_text())["model_identity"] == ident


def test_training_records_the_starting_and_the_exported_model(tmp_path):
    """finetune_args.json / pretrain_args.json: the starting model's identity; all_results.json: the
    identity of the model the results are of (the exported folder)."""
    from toy import write_corpus

    import run_finetune_degradation
    import run_pretrain

    pre = tiny_pretrained(tmp_path / "pre")
    write_split_dir(tmp_path / "data", n=16)
    out = tmp_path / "ft"
    run_finetune_degradation.main(["--model_name_or_path", str(pre), "--do_train", "--data_dir", str(tmp_path / "data"),
                                   "--output_dir", str(out), "--max_seq_length", "64", "--max_steps", "1",
                                   "--save_steps", "0", "--logging_steps", "0"])
    assert json.loads((out / "finetune_args.json").read_text())["base_model_identity"] == model_identity(pre)
    assert json.loads((out / "all_results.json").read_text())["model_identity"] == model_identity(out)
    write_corpus(tmp_path / "corpus.txt", 16)
    more = tmp_path / "more"
    run_pretrain.main(["--model_name_or_path", str(pre), "--train_data_file", str(tmp_path / "corpus.txt"),
                       "--output_dir", str(more), "--max_steps", "1", "--save_steps", "0", "--per_gpu_train_batch_size",
                       "8"])
    assert json.loads((more / "pretrain_args.json").read_text())["base_model_identity"] == model_identity(pre)
    assert json.loads((more / "all_results.json").read_text())["model_identity"] == model_identity(more)
    assert model_identity(more) != model_identity(pre)


def test_shards_of_copied_model_and_fasta_merge_like_one_run(tmp_path):
    """Shards computed on two "nodes" (the model and the FASTA at other paths, same bytes) merge, and the
    merge equals an unsharded run; a stale lock (its process gone) does not block the merge."""
    import merge_shards

    model = tiny_classifier(tmp_path / "model")
    pos, neg = planted_records(6, 6)
    fasta = write_fasta(tmp_path / "in.fa", pos + neg)
    shutil.copytree(model, tmp_path / "node2" / "model")
    shutil.copy(fasta, tmp_path / "node2" / "in.fa")
    _predict(model, fasta, tmp_path / "whole")
    _predict(model, fasta, tmp_path / "s0", "--shard", "0", "--num_shards", "2")
    _predict(tmp_path / "node2" / "model", tmp_path / "node2" / "in.fa", tmp_path / "s1", "--shard", "1",
             "--num_shards", "2")
    gone = subprocess.Popen(["true"])
    gone.wait()
    owner = {"pid": gone.pid, "host": socket.gethostname(), "since": "2024-05-01T10:00:00+00:00"}
    (tmp_path / "s1" / io.LOCK_NAME).write_text(json.dumps(owner))
    merge_shards.main(["--output_dir", str(tmp_path / "m"), str(tmp_path / "s0"), str(tmp_path / "s1")])
    for name in ("pred_results.npy", "predictions.tsv"):
        assert (tmp_path / "m" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert np.load(tmp_path / "m" / "pred_results.npy").shape == (12,)


def test_cv_resume_with_the_same_settings_keeps_the_finished_folds(tmp_path):
    """--n_folds --should_continue with unchanged settings (the model copied to another path) reuses fold 0
    untouched and trains the fold whose results are missing."""
    import run_finetune_degradation

    for i in range(2):
        write_split_dir(tmp_path / "data" / f"fold_{i}", n=16, seed=i)
    tiny_pretrained(tmp_path / "pre")
    args = ["--max_seq_length", "64", "--per_gpu_train_batch_size", "8", "--learning_rate", "1e-3", "--max_steps", "2",
            "--logging_steps", "0", "--save_steps", "0", "--do_train", "--do_eval", "--n_folds", "2",
            "--data_dir", str(tmp_path / "data"), "--output_dir", str(tmp_path / "out")]
    run_finetune_degradation.main([*args, "--model_name_or_path", str(tmp_path / "pre")])
    fold0 = tmp_path / "out" / "fold_0" / "model.safetensors"
    before = (fold0.read_bytes(), os.stat(fold0).st_mtime_ns)
    (tmp_path / "out" / "fold_1" / "all_results.json").unlink()  # killed before fold 1 finished
    shutil.copytree(tmp_path / "pre", tmp_path / "moved")
    run_finetune_degradation.main([*args, "--model_name_or_path", str(tmp_path / "moved"), "--should_continue"])
    assert (fold0.read_bytes(), os.stat(fold0).st_mtime_ns) == before
    assert (tmp_path / "out" / "fold_1" / "all_results.json").exists()
    settings = json.loads((tmp_path / "out" / "cv_settings.json").read_text())
    assert settings["learning_rate"] == 1e-3 and settings["model_identity"] == model_identity(tmp_path / "pre")
    assert set(settings["data_sha256"]) == {"fold_0/train.tsv", "fold_0/dev.tsv", "fold_1/train.tsv", "fold_1/dev.tsv"}


def test_array_tasks_of_one_cv_must_share_settings(tmp_path, capsys):
    """--fold I (one job-array task) records cv_settings.json, only once the fold's own checks pass; a task
    with another learning rate is refused (one line, exit 2, nothing written); the summary run (--n_folds N
    --should_continue) reuses both folds."""
    import run_finetune_degradation

    for i in range(2):
        write_split_dir(tmp_path / "data" / f"fold_{i}", n=16, seed=i)
    tiny_pretrained(tmp_path / "pre")
    args = ["--max_seq_length", "64", "--per_gpu_train_batch_size", "8", "--max_steps", "2", "--logging_steps", "0",
            "--save_steps", "0", "--do_train", "--do_eval", "--n_folds", "2", "--data_dir", str(tmp_path / "data"),
            "--output_dir", str(tmp_path / "out"), "--model_name_or_path", str(tmp_path / "pre")]
    (tmp_path / "out" / "fold_0").mkdir(parents=True)
    (tmp_path / "out" / "fold_0" / "notes.txt").write_text("a user's file\n")
    with pytest.raises(SystemExit) as exc:  # the fold's own check refuses: no cv_settings.json is left
        run_finetune_degradation.main([*args, "--fold", "0", "--learning_rate", "1e-3"])
    assert exc.value.code == 2 and sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["fold_0", "notes.txt"]
    capsys.readouterr()
    (tmp_path / "out" / "fold_0" / "notes.txt").unlink()
    assert run_finetune_degradation.main([*args, "--fold", "0", "--learning_rate", "1e-3"]) == 0
    assert (tmp_path / "out" / "cv_settings.json").exists()
    with pytest.raises(SystemExit) as exc:
        run_finetune_degradation.main([*args, "--fold", "1", "--learning_rate", "5e-3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and "fold 1 with fine-tuning settings or data that differ" in err[-1]
    assert "learning_rate" in err[-1] and not (tmp_path / "out" / "fold_1").exists()
    assert run_finetune_degradation.main([*args, "--fold", "1", "--learning_rate", "1e-3"]) == 0
    fold0 = (tmp_path / "out" / "fold_0" / "model.safetensors").read_bytes()
    assert run_finetune_degradation.main([*args, "--learning_rate", "1e-3", "--should_continue"]) == 0
    assert (tmp_path / "out" / "fold_0" / "model.safetensors").read_bytes() == fold0
    assert len(json.loads((tmp_path / "out" / "cv_results.json").read_text())["folds"]) == 2


def test_pretraining_resume_must_match_the_run(tmp_path, capsys):
    """run_settings.json: --should_continue with another learning rate or an edited corpus is refused (one
    line, exit 2, the run untouched); a longer run of the same settings resumes."""
    from toy import write_corpus

    import run_pretrain

    corpus = write_corpus(tmp_path / "corpus.txt", 16)
    out = tmp_path / "pre"
    args = ["--tokenizer_name", "dna3", "--config_name", "tiny", "--train_data_file", str(corpus), "--output_dir",
            str(out), "--per_gpu_train_batch_size", "8", "--save_steps", "1", "--learning_rate", "1e-3"]
    assert run_pretrain.main([*args, "--max_steps", "2"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for extra, field in ((["--learning_rate", "5e-3"], "learning_rate"), ([], "data_sha256")):
        if field == "data_sha256":
            write_corpus(corpus, 16, seed=5)
        with pytest.raises(SystemExit) as exc:
            run_pretrain.main([*args, "--max_steps", "3", "--should_continue", *extra])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert exc.value.code == 2 and "--should_continue with pretraining settings or data that differ" in err
        assert f"({field})" in err and {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    write_corpus(corpus, 16)  # the corpus as it was
    assert run_pretrain.main([*args, "--max_steps", "3", "--should_continue"]) == 0
    assert json.loads((out / "all_results.json").read_text())["global_step"] == 3
