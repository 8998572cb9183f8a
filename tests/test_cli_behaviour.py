"""What every command's flags do for a user: defaults that fit the model, --help that shows every default
in groups by purpose, -q/-v, and progress as log lines in a batch job's log."""

from __future__ import annotations

import contextlib
import io as stdio
import json
import logging
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from toy import tiny_classifier, write_fasta, write_split_dir

from m6abert.cli import finetune, get_input, merge, motifs, predict, pretrain, table, visualize
from m6abert.cli.common import COMPAT_TITLE, HelpFormatter
from m6abert.io import FastaRecord
from m6abert.progress import LogProgress

PARSERS = {"finetune": finetune, "predict": predict, "pretrain": pretrain, "visualize": visualize,
           "get_input": get_input, "motifs": motifs, "merge": merge, "table": table}
GROUPS = ("data:", "model:", "evaluation and checkpoints:", "optimisation:", "output:", "hardware:", "compatibility:")


def help_text(module) -> str:
    out = stdio.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main(["--help"])
    return re.sub(r"\s+", " ", out.getvalue())


# ---------------------------------------------------------------------------- --max_seq_length
def test_max_seq_length_defaults_to_the_models_positions(tmp_path):
    model = tiny_classifier(tmp_path / "m")
    args = predict.parse_args(["--output_dir", str(model), "--data_dir", str(tmp_path)])
    assert args.max_seq_length == json.loads((model / "config.json").read_text())["max_position_embeddings"] == 512
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, "max_position_embeddings": 300}))
    assert predict.parse_args(["--output_dir", str(model), "--data_dir", "d"]).max_seq_length == 300
    assert visualize.parse_args(["--model_path", str(model), "--data_dir", "d", "--data_name", "dev",
                                 "--vis_task", "attn"]).max_seq_length == 300
    assert finetune.parse_args(["--model_name_or_path", str(model), "--data_dir", "d", "--output_dir", "o"]
                               ).max_seq_length == 300
    # an explicit value is kept; a missing model folder leaves 512 (loading it then says what is wrong)
    assert predict.parse_args(["--output_dir", str(model), "--data_dir", "d", "--max_seq_length", "64"]
                              ).max_seq_length == 64
    assert predict.parse_args(["--output_dir", str(tmp_path / "none"), "--data_dir", "d"]).max_seq_length == 512
    assert finetune.parse_args(["--from_scratch", "--config_name", "tiny", "--tokenizer_name", "dna3", "--data_dir",
                                "d", "--output_dir", "o"]).max_seq_length == 512


def test_a_501_nt_window_is_predicted_without_max_seq_length(tmp_path, capsys):
    """The default used to be 128 tokens, which refused every 501-nt window; no --data_dir with a FASTA."""
    model = tiny_classifier(tmp_path / "m")
    fasta = write_fasta(tmp_path / "w.fa", [FastaRecord("w1", "ACGU" * 125 + "A"), FastaRecord("w2", "G" * 501)])
    assert predict.main(["--output_dir", str(model), "--predict_fasta", str(fasta),
                         "--predict_dir", str(tmp_path / "p")]) == 0
    rows = (tmp_path / "p" / "predictions.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["w1", "w2"]


def test_prediction_without_data_dir_or_fasta_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        predict.main(["--output_dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "--data_dir is required (the folder with test.tsv) unless --predict_fasta" in capsys.readouterr().err


# ---------------------------------------------------------------------------- --help
@pytest.mark.parametrize("name", PARSERS)
def test_help_shows_every_default(name):
    """Each flag that takes a value shows its default (a value, or 'unset'/the rule where there is none)."""
    module = PARSERS[name]
    text = help_text(module)
    parser = module.build_parser()
    formatter = HelpFormatter(prog=name)
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0 or action.required or action.dest in ("help", "version"):
            continue
        formatter._format_action(action)  # as --help formats it
        entry = re.sub(r"\s+", " ", formatter._expand_help(action))
        assert "default" in entry, (name, action.dest, entry)
        if action.default not in (None, ""):
            assert f"(default: {action.default})" in entry or "default:" not in entry, (name, action.dest, entry)
        assert entry.split("(default")[0].strip()[:30] in text, (name, action.dest)


@pytest.mark.parametrize("name", ["finetune", "pretrain", "predict", "visualize"])
def test_long_parsers_are_grouped_by_purpose(name):
    text = help_text(PARSERS[name])
    present = [g for g in GROUPS if f" {g} " in text]
    assert len(present) >= 5 and " logging: " in text and text.count(COMPAT_TITLE + ":") == 1, present
    groups = {g.title: {a.dest for a in g._group_actions} for g in PARSERS[name].build_parser()._action_groups}
    where = {"data": {"data_dir"} & groups["data"] or {"train_data_file"} & groups["data"],
             "hardware": {"no_cuda", "bf16"}, "compatibility": {"dnabert_compat"}, "logging": {"quiet", "verbose"}}
    for title, dests in where.items():
        assert dests and dests <= groups[title], (name, title, groups[title])
    if name in ("finetune", "pretrain"):
        assert {"learning_rate", "weight_decay", "seed"} <= groups["optimisation"]
        assert {"logging_steps", "save_steps", "should_continue"} <= groups["evaluation and checkpoints"]
        assert {"output_dir", "overwrite_output_dir"} <= groups["output"]


# ---------------------------------------------------------------------------- -q / -v and progress
def _predict(tmp_path, *flags: str) -> subprocess.CompletedProcess:
    model = tmp_path / "m" if (tmp_path / "m").exists() else tiny_classifier(tmp_path / "m")
    fasta = write_fasta(tmp_path / "w.fa", [FastaRecord(f"w{i}", "ACGUUGCA" * 8) for i in range(4)])
    return subprocess.run([sys.executable, "run_predict_degradation.py", "--output_dir", str(model), "--predict_fasta",
                           str(fasta), "--predict_dir", str(tmp_path / f"p{len(flags)}"), *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_quiet_and_verbose(tmp_path):
    loud = _predict(tmp_path)
    assert loud.returncode == 0 and " - INFO - " in loud.stderr and " - DEBUG - " not in loud.stderr
    quiet = _predict(tmp_path, "-q")
    assert quiet.returncode == 0 and quiet.stderr.strip() == "", quiet.stderr
    verbose = _predict(tmp_path, "--verbose", "--no_cuda")
    assert verbose.returncode == 0 and " - DEBUG - " in verbose.stderr
    both = _predict(tmp_path, "-q", "-v")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_bad_progress_interval_is_refused(tmp_path, capsys):
    for value in ("0", "nan", "-5"):
        with pytest.raises(SystemExit) as exc:
            get_input.main(["--kmer", "3", "--extend_len", "30", "--task", "finetune", "--data_dir", str(tmp_path),
                            "--save_dir", str(tmp_path / "o"), "--progress_interval", value])
        assert exc.value.code == 2
        assert f"--progress_interval must be a finite number of seconds > 0, not {float(value)}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_log_progress_writes_a_line_per_interval(caplog, monkeypatch):
    now = [0.0]
    monkeypatch.setattr("m6abert.progress.time.monotonic", lambda: now[0])
    caplog.set_level(logging.INFO, logger="m6abert")
    bar = LogProgress(100, "predict", "seq", interval=12)  # t = 0
    for step in range(1, 11):  # t = 5, 10, ..., 50: a line at 15 (>= 12 after 0), 30 and 45
        now[0] = 5.0 * step
        bar.update(10)
    bar.close()  # one last line
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    assert lines[0] == "predict: 30/100 seq (30.0%), 2 seq/s, 0:15 elapsed, 0:35 left"
    assert lines[-1] == "predict: 100/100 seq (100.0%), 2 seq/s, 0:50 elapsed"
    now[0] = 60.0
    again = LogProgress(20, "ism", "seq", interval=1)
    now[0] = 61.0
    again.update(20)  # logged by the update: closing adds no second, identical line
    again.close()
    assert [r.getMessage() for r in caplog.records][4:] == ["ism: 20/20 seq (100.0%), 20 seq/s, 0:01 elapsed"]


@pytest.mark.parametrize("task", ["attr", "ism"])
def test_scores_report_progress_in_a_log(tmp_path, task):
    """Not a terminal (a batch log): attribution and ISM write progress lines, no bar redraws."""
    model = tiny_classifier(tmp_path / "m")
    data = write_split_dir(tmp_path / "d", n=8)
    extra = ["--n_steps", "2", "--n_baselines", "1"] if task == "attr" else ["--ism_window", "-3:3", "--site_index", "30"]
    proc = subprocess.run([sys.executable, "visualize_all.py", "--model_path", str(model), "--data_dir", str(data),
                           "--data_name", "dev", "--vis_task", task, "--no_plot", "--output_dir", str(tmp_path / "v"),
                           "--batch_size", "2", "--progress_interval", "0.001", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    desc = {"attr": "attribution", "ism": "ism"}[task]
    progress = [ln for ln in proc.stderr.splitlines() if f" - INFO - m6abert -   {desc}: " in ln]
    assert progress and "\r" not in proc.stderr, proc.stderr[-2000:]
