"""visualize_all.py --vis_task ism and m6abert.ism: exact Δ log-odds, zeros where nothing is mutated,
the window, the planted motif found by a trained model, mutation maps, find_motifs on the summary,
and one-line errors for bad flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_attribution import (  # noqa: F401  (planted is a fixture)
    MOTIF,
    OFFSET,
    SITE,
    planted,
    planted_rows,
    random_seqs,
    tiny_model,
    write_rows,
)
from toy import tiny_classifier, write_split_dir

import visualize_all
from m6abert import io
from m6abert.cli import visualize as visualize_cli
from m6abert.cli.common import run_guarded
from m6abert.data import dataset_from_seqs, load_tsv_dataset
from m6abert.inference import predict
from m6abert.ism import ISM_COLUMNS, mutants, saturation_mutagenesis, window_bounds
from m6abert.utils import InputError

MOTIF_START = SITE + OFFSET  # 20 .. 27


def logodds(model, seqs: list[str], max_seq_length: int = 128) -> np.ndarray:
    logits = predict(model, dataset_from_seqs(seqs, 3, max_seq_length=max_seq_length).dataset, max_seq_length,
                     batch_size=64, verbose=False)
    return logits[:, 1].astype(np.float64) - logits[:, 0]


# ---------------------------------------------------------------------------- the pieces
def test_mutants_order_and_n():
    seqs, positions, columns = mutants("ACNt", 0, 4)
    assert seqs[:3] == ["CCNT", "GCNT", "TCNT"] and len(seqs) == 9  # N is not mutated, lower case read
    assert positions.tolist() == [0, 0, 0, 1, 1, 1, 3, 3, 3]
    assert [ISM_COLUMNS[c] for c in columns] == list("CGTAGTACG")


def test_window_bounds():
    lengths = np.array([101, 90])
    assert [b.tolist() for b in window_bounds(lengths)] == [[0, 0], [101, 90]]
    assert [b.tolist() for b in window_bounds(lengths, (-50, 40), 50)] == [[0, 0], [90, 90]]
    for window, message in (((5, 5), "START must be less than END"), ((-51, 0), "outside row 0"),
                            ((0, 41), "outside row 1's 90 nt")):
        with pytest.raises(InputError, match=message):
            window_bounds(lengths, window, 50)


# ---------------------------------------------------------------------------- exactness
def test_delta_is_mutant_minus_reference():
    model = tiny_model("sdpa", seed=2)
    seqs = random_seqs([41, 35, 47], seed=5)
    res = saturation_mutagenesis(model, seqs, 3, window=(-12, 6), site_index=20, max_seq_length=64,
                                 batch_size=37, verbose=False)  # batches mix sequences of other lengths
    assert res.delta.shape == (3, 47, 4) and res.delta.dtype == np.float32
    assert res.summary.shape == (3, 47) and res.summary.dtype == np.float64
    ref = logodds(model, seqs, 64)
    np.testing.assert_allclose(res.ref_logodds, ref, atol=1e-5)
    picks = [(0, 8, "G"), (1, 20, "A"), (2, 25, "T"), (2, 12, "C")]
    mutated, want = [], []
    for row, pos, base in picks:
        if seqs[row][pos] == base:
            base = "A" if base != "A" else "C"
        mutated.append(seqs[row][:pos] + base + seqs[row][pos + 1:])
        want.append((row, pos, ISM_COLUMNS.index(base)))
    sep = logodds(model, mutated, 64)
    for (row, pos, col), lo in zip(want, sep, strict=True):
        assert abs(float(res.delta[row, pos, col]) - (lo - ref[row])) < 1e-5
    assert np.abs(res.delta).max() > 1e-3  # the model reacts to mutations
    for row, s in enumerate(seqs):  # 0 at the reference base, nonzero at the others
        for pos in range(8, 26):
            col = ISM_COLUMNS.index(s[pos])
            assert res.delta[row, pos, col] == 0 and np.count_nonzero(res.delta[row, pos]) == 3
    inside = np.zeros(47, bool)
    inside[8:26] = True
    assert not res.delta[:, ~inside].any()  # the window restricts mutations (and past the ends)
    np.testing.assert_allclose(res.summary, np.abs(res.delta).sum(axis=2) / 3)


# ---------------------------------------------------------------------------- planted signal, end to end
def test_planted_motif_ism(planted):  # noqa: F811
    root = planted["root"]
    data, out = root / "ism", root / "out_ism"
    write_rows(data / "test.tsv", planted_rows(20, planted["rng"], n_pos=16))
    visualize_all.main(["--model_path", str(planted["model"]), "--data_dir", str(data), "--data_name", "test",
                        "--output_dir", str(out), "--max_seq_length", "128", "--site_index", str(SITE),
                        "--vis_task", "ism", "--plot_ids", "0,3"])
    delta, summary = np.load(out / "ism_test.npy"), np.load(out / "ism_summary_test.npy")
    assert delta.shape == (20, 101, 4) and delta.dtype == np.float32 and summary.shape == (20, 101)
    meta = json.loads((out / "ism_summary_test.npy.json").read_text())
    assert meta["vis_task"] == "ism" and meta["rows"] == 20 and len(meta["sources"]) == 1
    for name in ("ism_test_map_0.png", "ism_test_map_3.png", "ism_summary_test_heatmap.png",
                 "ism_summary_test_profile.pdf", "ism_test.npy.json", "visualize_args.json"):
        assert (out / name).stat().st_size > 0, name
    from m6abert.model import load_model

    model, _ = load_model(str(planted["model"]), "classification", fine_tuned=True)
    tsv = load_tsv_dataset(data / "test.tsv", 3, 128)
    ok = (tsv.labels == 1) & (predict(model, tsv.dataset, 128, verbose=False).argmax(axis=1) == 1)
    assert ok.sum() >= 13
    top = np.abs(delta[ok]).max(axis=2).argmax(axis=1)  # the position of the largest |Δ|
    rate = float(((top >= MOTIF_START) & (top < MOTIF_START + len(MOTIF))).mean())
    print(f"ISM: largest |Δ| on the planted motif in {rate:.0%} of {ok.sum()} correctly classified positives")
    assert rate >= 0.8, top
    # a second run with other maps replaces the set: the old map of row 0 goes
    visualize_all.main(["--model_path", str(planted["model"]), "--data_dir", str(data), "--data_name", "test",
                        "--output_dir", str(out), "--max_seq_length", "128", "--site_index", str(SITE),
                        "--vis_task", "ism", "--ism_window", "-35:-15", "--plot_ids", "3", "--no_plot"])
    delta2 = np.load(out / "ism_test.npy")
    assert not delta2[:, list(range(15)) + list(range(35, 101))].any() and delta2[:, 15:35].any()
    np.testing.assert_allclose(delta2[:, 15:35], delta[:, 15:35], atol=1e-5)
    assert not (out / "ism_test_map_0.png").exists() and not (out / "ism_summary_test_heatmap.png").exists()
    check_find_motifs(root / "ism_motifs", root / "out_ism_motifs", planted)


def check_find_motifs(data: Path, out: Path, planted) -> None:  # noqa: F811
    """m6abert.commands.motifs.find_motifs on the whole-sequence summary of 30 positives and 30 negatives."""
    from m6abert.commands.motifs import find_motifs

    write_rows(data / "test.tsv", planted_rows(60, planted["rng"], n_pos=30))
    visualize_all.main(["--model_path", str(planted["model"]), "--data_dir", str(data), "--data_name", "test",
                        "--output_dir", str(out), "--max_seq_length", "128", "--vis_task", "ism", "--no_plot"])
    # ISM is sharper than the k-mer-averaged attn/attr scores: the planted motif gives runs of 2-3 nt
    found = find_motifs(data, out, "test", "ism", save_dir=out / "motifs", window_size=24, min_len=2,
                        pval_cutoff=0.05, min_n_motif=3, site_index=SITE, logos=False)
    print("ISM motifs:", [(m.motif, m.n_instances) for m in found[:5]])
    assert (out / "motifs" / "motifs_pos.tsv").exists()
    assert found and found[0].motif in MOTIF, [m.motif for m in found[:5]]


def test_find_motifs_command_on_ism(planted, capsys):  # noqa: F811
    """find_motifs.py --vis_task ism on visualize_all.py's summary (where the command offers ism)."""
    from m6abert.cli import motifs as motifs_cli

    try:
        motifs_cli.parse_args(["--data_dir", "d", "--npy_dir", "n", "--data_name", "test", "--vis_task", "ism"])
    except SystemExit:
        capsys.readouterr()
        pytest.skip("find_motifs.py --vis_task does not offer ism yet (m6abert/cli/motifs.py)")
    import find_motifs as find_motifs_script

    data, out = planted["root"] / "ism_cli", planted["root"] / "out_ism_cli"
    write_rows(data / "test.tsv", planted_rows(20, planted["rng"], n_pos=16))
    visualize_all.main(["--model_path", str(planted["model"]), "--data_dir", str(data), "--data_name", "test",
                        "--output_dir", str(out), "--max_seq_length", "128", "--vis_task", "ism", "--no_plot"])

    find_motifs_script.main(["--data_dir", str(data), "--npy_dir", str(out), "--data_name", "test",
                             "--vis_task", "ism", "--save_file_dir", str(out / "cli"), "--window_size", "24",
                             "--min_len", "2", "--pval_cutoff", "0.05", "--min_n_motif", "3"])
    assert (out / "cli" / "motifs_pos.tsv").exists()


# ---------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("ism_small")
    write_split_dir(root / "data", n=8)  # 61-nt sequences
    tiny_classifier(root / "model")
    return root


@pytest.mark.parametrize("flags, message", [
    (["--ism_window", "abc"], "--ism_window must be START:END"),
    (["--ism_window", "10:-10"], "START must be less than END"),
    (["--ism_window", "5:5"], "START must be less than END"),
    (["--ism_window", "-40:10"], "lies outside row 0's 61 nt (allowed: within -30:31)"),
    (["--ism_window=0:40"], "lies outside row 0's 61 nt"),
    (["--plot_ids", "0,x"], "--plot_ids must be row numbers"),
    (["--plot_ids", "99"], "--plot_ids 99: the data set has 4 rows (0..3)"),
    (["--ism_batch_size", "0"], "--ism_batch_size must be >= 1"),
    (["--layer", "0"], "--layer does not apply to --vis_task ism"),
])
def test_ism_flag_errors_are_one_line(small, tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    argv = ["--model_path", str(small / "model"), "--data_dir", str(small / "data"), "--data_name", "dev",
            "--output_dir", str(out), "--max_seq_length", "64", "--site_index", "30", "--vis_task", "ism", *flags]
    with pytest.raises(SystemExit) as err:
        visualize_all.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(lines) == 1 and " error: " in lines[0] and message in lines[0], lines
    assert not out.exists()  # nothing written


def test_ism_flags_refused_for_other_tasks(small, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        visualize_all.main(["--model_path", str(small / "model"), "--data_dir", str(small / "data"),
                            "--data_name", "dev", "--output_dir", str(tmp_path / "out"), "--vis_task", "attn",
                            "--ism_window=-5:5"])
    assert err.value.code == 2 and "apply to --vis_task ism only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ism_small_run_without_labels(small, tmp_path):
    """Labels are not needed: the default map is the first row's; bf16 autocast is recorded."""
    data = tmp_path / "data"
    data.mkdir()
    sentences = io.read_tsv(small / "data" / "dev.tsv").sentences[:2]
    (data / "dev.tsv").write_text("seq\n" + "\n".join(sentences) + "\n")
    out = tmp_path / "out"
    res = run_guarded(visualize_cli.run, ["--model_path", str(small / "model"), "--data_dir", str(data), "--data_name", "dev",
                              "--output_dir", str(out), "--max_seq_length", "64", "--site_index", "30",
                              "--vis_task", "ism", "--ism_window", "-3:4", "--bf16"])
    assert Path(res["ism_dev"]).name == "ism_dev.npy" and Path(res["ism_summary_dev"]).exists()
    assert sorted(p.name for p in out.glob("*.png")) == ["ism_dev_map_0.png"]  # no heatmaps without labels
    delta = np.load(out / "ism_dev.npy")
    assert delta.shape == (2, 61, 4) and np.count_nonzero(delta[:, 27:34]) <= 2 * 7 * 3
    assert json.loads((out / "ism_dev.npy.json").read_text())["precision"] == "bf16"
    torch.testing.assert_close(torch.from_numpy(delta[:, :27]), torch.zeros(2, 27, 4))
