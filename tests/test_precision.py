"""--bf16 in inference: prediction, attention and ISM run under bfloat16 autocast (results close to float32,
not identical); attribution refuses it (its attributions do not add up in bfloat16)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from toy import tiny_classifier, write_split_dir

from m6abert.data import dataset_from_seqs
from m6abert.inference import autocast, predict
from m6abert.model import build_config, new_model


def test_autocast_context():
    with autocast("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with autocast("cpu", None):
        assert not torch.is_autocast_enabled("cpu")


def test_bf16_prediction_is_close_but_not_float32():
    torch.manual_seed(0)
    model = new_model(build_config("tiny", 3), "classification").eval()
    rng = np.random.RandomState(0)
    data = dataset_from_seqs(["".join(rng.choice(list("ACGT"), 80)) for _ in range(12)], 3)
    fp32 = predict(model, data.dataset, verbose=False)
    with autocast("cpu", "bf16"):
        bf16 = predict(model, data.dataset, verbose=False)
    assert not np.array_equal(fp32, bf16)  # the forward really ran in bfloat16
    np.testing.assert_allclose(bf16, fp32, atol=0.05)


def test_visualize_refuses_half_precision_attributions(tmp_path, capsys):
    """Integrated gradients in bf16 do not add up (benchmarks/bench_ig_steps.py): refused, nothing written."""
    import visualize_all

    data, model = write_split_dir(tmp_path / "data", n=16), tiny_classifier(tmp_path / "model")
    with pytest.raises(SystemExit) as exc:
        visualize_all.main(["--model_path", str(model), "--data_dir", str(data), "--data_name", "dev", "--vis_task",
                            "attr", "--output_dir", str(tmp_path / "o"), "--bf16"])
    assert exc.value.code == 2 and "integrated gradients in half precision do not add up" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("task", ["attn", "ism"])
def test_visualize_bf16(task, tmp_path):
    import visualize_all

    data, model = write_split_dir(tmp_path / "data", n=16), tiny_classifier(tmp_path / "model")
    base = ["--model_path", str(model), "--data_dir", str(data), "--data_name", "dev", "--vis_task", task,
            "--max_seq_length", "64", "--no_plot"]
    stem = {"attn": "atten_dev", "ism": "ism_summary_dev"}[task]
    visualize_all.main([*base, "--output_dir", str(tmp_path / "fp32")])
    visualize_all.main([*base, "--output_dir", str(tmp_path / "bf16"), "--bf16"])
    a, b = np.load(tmp_path / "fp32" / f"{stem}.npy"), np.load(tmp_path / "bf16" / f"{stem}.npy")
    assert not np.array_equal(a, b)
    assert np.abs(a - b).max() < 0.1  # L2-normalised rows
    assert json.loads((tmp_path / "bf16" / f"{stem}.npy.json").read_text())["precision"] == "bf16"


def test_predict_bf16_flag(tmp_path):
    import run_predict_degradation

    data, model = write_split_dir(tmp_path / "data", n=16), tiny_classifier(tmp_path / "model")
    base = ["--data_dir", str(data), "--output_dir", str(model), "--max_seq_length", "64"]
    run_predict_degradation.main([*base, "--predict_dir", str(tmp_path / "a")])
    run_predict_degradation.main([*base, "--predict_dir", str(tmp_path / "b"), "--bf16"])
    a, b = np.load(tmp_path / "a" / "pred_results.npy"), np.load(tmp_path / "b" / "pred_results.npy")
    assert not np.array_equal(a, b) and np.abs(a - b).max() < 0.01


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_on_the_device(device, precision):
    """The same inference path on each device (the cuda case runs only where a GPU is; fp16 only there)."""
    if precision == "fp16" and device != "cuda":
        from m6abert.utils import InputError

        with pytest.raises(InputError, match="--fp16 needs a CUDA device"):
            autocast(device, precision)
        return
    torch.manual_seed(0)
    model = new_model(build_config("tiny", 3), "classification").eval()
    data = dataset_from_seqs(["ACGT" * 20, "GGCA" * 15], 3)
    fp32 = predict(model, data.dataset, device=device, verbose=False)
    with autocast(device, precision):
        low = predict(model, data.dataset, device=device, verbose=False)
    np.testing.assert_allclose(low, fp32, atol=0.05)
    assert next(model.parameters()).device.type == "cpu"  # handed back where it was


def test_training_attention_is_eager_on_a_cpu_with_attention_dropout_only():
    """SDPA has no fused CPU kernel with dropout: training on a CPU switches to eager attention, and back."""
    from m6abert.model import build_config, new_model, training_attention

    with_dropout = new_model(build_config("tiny", 3), "classification")
    assert with_dropout.config.attention_probs_dropout_prob > 0
    with training_attention(with_dropout, "cpu"):
        assert with_dropout.config._attn_implementation == "eager"
        assert with_dropout.bert.encoder.layer[0].attention.self.config._attn_implementation == "eager"
    assert with_dropout.config._attn_implementation == "sdpa"
    without = new_model(build_config("tiny", 3, attention_probs_dropout_prob=0.0), "classification")
    with training_attention(without, "cpu"):
        assert without.config._attn_implementation == "sdpa"
    with training_attention(with_dropout, "cuda"):
        assert with_dropout.config._attn_implementation == "sdpa"


def test_evaluation_while_training_uses_sdpa_again():
    """A dev evaluation inside the training block runs through the inference loop with SDPA (no dropout
    there), and training continues with eager attention; outside the block nothing is switched."""
    from m6abert.inference import borrowed
    from m6abert.model import training_attention

    model = new_model(build_config("tiny", 3), "classification")
    with training_attention(model, "cpu"):
        with borrowed(model, "cpu"):
            assert model.config._attn_implementation == "sdpa"
        assert model.config._attn_implementation == "eager"
    eager = new_model(build_config("tiny", 3), "classification", "eager")  # eager by choice (attention weights)
    with borrowed(eager, "cpu"):
        assert eager.config._attn_implementation == "eager"
