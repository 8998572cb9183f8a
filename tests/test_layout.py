"""The re-layout's promises: commands with --version and one group of ignored original flags,
prediction refusing training flags, --help without torch, the inference loop handing the model
back as it found it, no global RNG touched by the splits, one source of defaults."""

from __future__ import annotations

import inspect
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from m6abert import __version__
from m6abert.cli import finetune, get_input, motifs, predict, pretrain, visualize
from m6abert.cli.common import COMPAT_TITLE

COMMANDS = {"get_input": get_input, "pretrain": pretrain, "finetune": finetune, "predict": predict,
            "visualize": visualize, "motifs": motifs}


@pytest.mark.parametrize("name", COMMANDS)
def test_version(name, capsys):
    with pytest.raises(SystemExit) as exc:
        COMMANDS[name].main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"m6abert {__version__}"


@pytest.mark.parametrize("name", ["pretrain", "finetune", "predict", "visualize", "motifs"])
def test_ignored_flags_are_one_named_group(name, capsys):
    with pytest.raises(SystemExit):
        COMMANDS[name].main(["--help"])
    out = capsys.readouterr().out
    assert out.count(COMPAT_TITLE + ":") == 1, out


@pytest.mark.parametrize("flags", [["--do_train"], ["--n_folds", "5"], ["--from_scratch"], ["--early_stop", "2"],
                                   ["--should_continue"], ["--weight_decay", "0.01"], ["--warmup_steps", "3"]])
def test_prediction_refuses_training_flags(flags, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        predict.parse_args(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path), *flags])
    assert exc.value.code == 2
    assert "unrecognized arguments: " + flags[0] in capsys.readouterr().err


def test_prediction_takes_the_original_readme_command(tmp_path):
    """The original README's prediction command parses, training-only flags it passed included (they are
    ignored: the prediction batch size stays its own); tests/test_original_commands.py runs it from the spec."""
    args = predict.parse_args(
        ["--model_type", "dna", "--tokenizer_name=dna3", "--model_name_or_path", "pre", "--task_name", "dnaprom",
         "--data_dir", str(tmp_path), "--save_steps", "50", "--logging_steps", "50", "--do_predict",
         "--max_seq_length", "512", "--per_gpu_eval_batch_size=50", "--per_gpu_train_batch_size=50",
         "--learning_rate", "1e-6", "--num_train_epochs", "100", "--output_dir", str(tmp_path / "checkpoint-5"),
         "--n_process", "1", "--evaluate_during_training", "--predict_dir", str(tmp_path)])
    assert args.per_gpu_pred_batch_size == 8  # neither the eval nor the train batch size applies to prediction


def test_help_imports_neither_torch_nor_transformers():
    code = ("import sys, contextlib, io\n"
            "from m6abert.cli import finetune, get_input, merge, motifs, predict, pretrain, table, visualize\n"
            "for m in (finetune, get_input, merge, motifs, predict, pretrain, table, visualize):\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        m.main(['--help'])\n"
            "print(sorted(x for x in ('torch', 'transformers', 'sklearn', 'captum') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_inference_loop_leaves_the_model_as_it_found_it():
    from m6abert.data import dataset_from_seqs
    from m6abert.inference import predict
    from m6abert.model import build_config, new_model

    torch.manual_seed(0)
    model = new_model(build_config("tiny", 3), "classification").train()
    data = dataset_from_seqs(["ACGTACGTAC", "GGGCCCAAAT"], 3)
    logits = predict(model, data.dataset, max_seq_length=64, verbose=False)
    assert logits.shape == (2, 2) and model.training
    model.eval()
    predict(model, data.dataset, max_seq_length=64, verbose=False)
    assert not model.training and next(model.parameters()).device.type == "cpu"


def test_splits_leave_the_global_random_state_alone():
    from m6abert.io import FastaRecord
    from m6abert.splits import finetune_splits

    pos = [FastaRecord(f"p{i}", "ACGT" * 10) for i in range(10)]
    neg = [FastaRecord(f"n{i}", "TTGCA" * 8) for i in range(30)]
    random.seed(123)
    np.random.seed(7)
    before, np_before = random.getstate(), np.random.get_state()[1].copy()
    finetune_splits(pos, neg, 3, seed=52)
    assert random.getstate() == before
    assert np.array_equal(np.random.get_state()[1], np_before)


def _defaults(func) -> dict:
    return {n: p.default for n, p in inspect.signature(func).parameters.items() if p.default is not p.empty}


def test_library_defaults_are_the_commands_defaults(tmp_path):
    from m6abert.commands import motifs as motifs_command
    from m6abert.commands import visualize as visualize_command
    from m6abert.motifs import motif_analysis

    args = vars(motifs.parse_args(["--data_dir", "d", "--npy_dir", "n", "--data_name", "dev", "--vis_task", "attr"]))
    for func in (motif_analysis, motifs_command.find_motifs):
        for name, default in _defaults(func).items():
            if name in args:
                assert args[name] == default, (func.__name__, name)
    vis = vars(visualize.parse_args(["--model_path", "m", "--data_dir", "d", "--data_name", "dev", "--vis_task", "attn"]))
    fields = visualize_command.VisualizeSettings.__dataclass_fields__
    for name in ("max_seq_length", "layer", "batch_size", "n_steps", "internal_batch_size", "site_index"):
        assert vis[name] == fields[name].default, name
    attr = vars(visualize.parse_args(["--model_path", "m", "--data_dir", "d", "--data_name", "dev", "--vis_task",
                                      "attr"]))
    for name in ("n_steps", "attr_target", "baseline", "n_baselines", "seed", "max_rel_delta"):
        assert attr[name] == fields[name].default, name
    compat = vars(visualize.parse_args(["--model_path", "m", "--data_dir", "d", "--data_name", "dev", "--vis_task",
                                        "attr", "--dnabert_compat"]))  # the original's choice
    assert (compat["attr_target"], compat["baseline"], compat["n_baselines"], compat["n_steps"]) == ("prob", "pad", 1, 50)


def test_prediction_batches_rows_of_similar_length_and_keeps_the_order():
    """Outside --dnabert_compat the rows run longest first (less padding); logits come back in order."""
    from m6abert.data import Collator, dataset_from_seqs
    from m6abert.inference import predict_logits
    from m6abert.model import build_config, new_model

    torch.manual_seed(0)
    model = new_model(build_config("tiny", 3), "classification").eval()
    rng = np.random.RandomState(1)
    lengths = rng.randint(10, 120, size=20)
    data = dataset_from_seqs(["".join(rng.choice(list("ACGT"), n)) for n in lengths], 3)
    widths = []
    collate = Collator(128)

    def recording(items):
        batch = collate(items)
        widths.append(batch["input_ids"].shape[1])
        return batch

    recording.dnabert_compat = False
    bucketed = predict_logits(model, data.dataset, recording, batch_size=4, verbose=False)
    one_by_one = predict_logits(model, data.dataset, collate, batch_size=1, verbose=False)
    np.testing.assert_allclose(bucketed, one_by_one, atol=1e-5)
    assert widths == sorted(widths, reverse=True) and widths[0] == lengths.max() - 3 + 1 + 2
