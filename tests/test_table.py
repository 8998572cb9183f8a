"""reproduce_table.py: the whole script on a small slice, its baselines, its statistics and resumption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from toy import MOTIF, random_seq, write_fasta

from m6abert import io
from m6abert.baselines import (
    CnnLstmConfig,
    CnnLstmForSequenceClassification,
    NucleotideCollator,
    NucleotideDataset,
    fit_kmer_lr,
    kmer_frequencies,
)
from m6abert.cli import table as cli
from m6abert.commands.table import TableSettings, prepare
from m6abert.comparison import protocol_markdown, summarise
from m6abert.metrics import auc_of_resamples, paired_bootstrap_auc, paired_t_interval
from m6abert.splits import fold_records, kfold_splits, unused_negatives

LENGTH = 101
TINY = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 512}
OUTPUTS = ("table.md", "table.json", "per_fold.tsv", "oof_predictions.tsv", "leakage.json")


def planted(n_pos: int, n_neg: int, length: int = LENGTH, seed: int = 0):
    """Positives carry the motif at a random place; negatives are random."""
    rng = np.random.RandomState(seed)
    pos, neg = [], []
    for i in range(n_pos):
        s, at = random_seq(rng, length), rng.randint(10, length - 20)
        pos.append(io.FastaRecord(f"p{i}", s[:at] + MOTIF + s[at + len(MOTIF):]))
    neg = [io.FastaRecord(f"n{i}", random_seq(rng, length)) for i in range(n_neg)]
    return pos, neg


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and a busy machine makes more threads much slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("table_data")
    pos, neg = planted(12, 24)
    write_fasta(folder / "pos.fa", pos)
    write_fasta(folder / "neg.fa", neg)
    (folder / "tiny.json").write_text(json.dumps(TINY))
    return folder


def argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data_path", str(data), "--output_dir", str(out), "--config_name", str(data / "tiny.json"),
            "--n_folds", "2", "--pretrain_steps", "2", "--pretrain_batch_size", "8", "--finetune_epochs", "1",
            "--cnn_epochs", "1", "--batch_size", "8", "--max_lr_k", "3", "--inner_folds", "2", "--n_bootstrap", "200",
            *extra]


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory) -> Path:
    """One uninterrupted run of every model."""
    out = tmp_path_factory.mktemp("table_full") / "out"
    cli.main(argv(data_dir, out))
    return out


# --- the whole script ---------------------------------------------------------------------------------------
def test_smoke_every_output(full_run):
    for name in (*OUTPUTS, "roc.png", "roc.pdf", "auc_per_fold.png", "auc_per_fold.pdf", "calibration.png",
                 "calibration.pdf", "table_args.json", "timings.json"):
        assert (full_run / name).stat().st_size > 0, name
    assert (full_run / "roc.png").stat().st_size < 200_000
    result = json.loads((full_run / "table.json").read_text())
    assert result["default_protocol"] == "grouped" and list(result["protocols"]) == ["grouped"]
    assert "leak" not in result  # one protocol: nothing to compare
    table = result["protocols"]["grouped"]
    assert list(table["models"]) == ["m6a_bert_deg", "bert_scratch", "cnn_lstm", "kmer_lr", "gc_lr"]
    assert table["n_sequences"] == 24 and table["n_positives"] == 12
    for m in table["models"].values():
        assert len(m["per_fold"]) == 2
        assert set(m["mean_sd"]) >= {"acc", "auc", "mcc", "f1", "precision", "recall", "aupr"}
        assert set(m["calibration"]) >= {"brier", "ece", "bins"}
    assert set(table["differences"]) == {"bert_scratch", "cnn_lstm", "kmer_lr", "gc_lr"}
    assert table["differences"]["gc_lr"]["bootstrap"]["n_groups"] == table["n_groups"] == 24  # random windows
    assert result["pretraining"]["overlap_with_folds"] == 0 and result["pretraining"]["n_sequences"] == 12
    assert result["leakage"]["grouped"]["cross_part_pairs"]["total"] == 0
    oof = io.read_columns(full_run / "oof_predictions.tsv")
    assert list(oof) == ["protocol", "id", "group", "fold", "label", "p_m6a_bert_deg", "p_bert_scratch", "p_cnn_lstm",
                         "p_kmer_lr", "p_gc_lr"]
    assert len(set(oof["id"])) == 24 and {i for i in oof["id"] if i.startswith("p")} == {f"p{i}" for i in range(12)}
    args = json.loads((full_run / "table_args.json").read_text())
    assert args["m6abert_version"] and args["settings"]["n_folds"] == 2
    # the CNN+LSTM and the BERTs are Hugging Face folders, never pickles
    assert (full_run / "runs" / "grouped" / "cnn_lstm" / "fold_0" / "model.safetensors").exists()
    assert not list(full_run.rglob("*.bin")) and not list(full_run.rglob("*.pkl"))


def test_metrics_recomputed_from_oof(full_run):
    """The per-fold AUCs follow from oof_predictions.tsv alone."""
    from sklearn.metrics import roc_auc_score

    oof = io.read_columns(full_run / "oof_predictions.tsv")
    table = json.loads((full_run / "table.json").read_text())["protocols"]["grouped"]
    assert set(oof["protocol"]) == {"grouped"}
    folds, labels = np.array(oof["fold"], dtype=int), np.array(oof["label"], dtype=int)
    for name, m in table["models"].items():
        p = np.array(oof[f"p_{name}"], dtype=np.float64)
        for f in m["per_fold"]:
            sel = folds == f["fold"]
            assert roc_auc_score(labels[sel], p[sel]) == pytest.approx(f["auc"], abs=1e-9)


def test_resume_equals_uninterrupted(data_dir, full_run, tmp_path):
    """Killed after some models and inside one (a fold record missing): --should_continue ends with the same table."""
    out = tmp_path / "out"
    cli.main(argv(data_dir, out, "--models", "m6a_bert_deg,kmer_lr"))
    (out / "runs" / "grouped" / "m6a_bert_deg" / "fold_1.json").unlink()  # killed while fine-tuning fold 1
    cli.main(argv(data_dir, out, "--should_continue"))
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (full_run / name).read_bytes(), name


# --- the CNN+LSTM -------------------------------------------------------------------------------------------
def test_cnn_lstm_shapes_padding_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = CnnLstmForSequenceClassification(CnnLstmConfig(n_filters=8, lstm_hidden=6)).eval()
    seqs = ["ACGT" * 30, "GGCAU" * 11, "ACGTNACGTA" * 5]
    data = NucleotideDataset(seqs, [1, 0, 1])
    batch = NucleotideCollator()([data[i] for i in range(3)])
    assert batch["input_ids"].shape == (3, 120)
    out = model(**batch)
    assert out.logits.shape == (3, 2) and out.loss.ndim == 0 and torch.isfinite(out.loss)
    alone = model(**NucleotideCollator()([data[1]])).logits
    assert torch.allclose(alone, out.logits[1:2], atol=1e-5)  # padding does not change a row
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    again = CnnLstmForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert again.config.n_filters == 8 and again.config.lstm_hidden == 6
    assert torch.equal(again(**batch).logits, out.logits)


def test_cnn_lstm_learns_with_the_training_loop(tmp_path):
    """The toolkit's loop (which needs only ``.loss``) trains it: the training loss falls."""
    from m6abert.train import TrainArgs, train

    pos, neg = planted(16, 16, length=40, seed=3)
    torch.manual_seed(0)
    model = CnnLstmForSequenceClassification(CnnLstmConfig(n_filters=16, kernel_size=7, pool_size=2, lstm_hidden=8))
    data = NucleotideDataset([r.seq for r in pos + neg], [1] * 16 + [0] * 16)
    batch = NucleotideCollator()([data[i] for i in range(len(data))])
    before = model.eval()(**batch).loss.item()
    res = train(model, data, NucleotideCollator(), TrainArgs(per_gpu_train_batch_size=32, learning_rate=3e-2,
                                                             num_train_epochs=12, logging_steps=0, save_steps=0),
                tmp_path, 3)
    assert res.global_step == 12 and model.eval()(**batch).loss.item() < before


# --- the k-mer regression -----------------------------------------------------------------------------------
def test_kmer_lr_fits_on_training_folds_only(data_dir, tmp_path, monkeypatch):
    """Every sequence the k-mer LR is fitted on (its inner CV included) is of the training folds."""
    import m6abert.baselines as baselines
    from m6abert.commands.table_folds import kmer_lr_fold
    from m6abert.table_models import FoldJob

    s = TableSettings(data_path=str(data_dir), output_dir=str(tmp_path / "o"), n_folds=3, models=("kmer_lr",),
                      kmer_ks=(1, 2, 3), inner_folds=2)
    plan = prepare(s)
    seen: list[str] = []
    real_fit, real_freq = baselines.fit_kmer_lr, baselines.kmer_frequencies
    fitting = []

    def spy_fit(seqs, *a, **kw):
        fitting.append(True)
        try:
            return real_fit(seqs, *a, **kw)
        finally:
            fitting.pop()

    def spy_freq(seqs, k):
        if fitting:
            seen.extend(seqs)
        return real_freq(seqs, k)

    monkeypatch.setattr(baselines, "fit_kmer_lr", spy_fit)
    monkeypatch.setattr(baselines, "kmer_frequencies", spy_freq)
    for i in range(3):
        seen.clear()
        logp, extra = kmer_lr_fold(FoldJob(s, tmp_path / "o", plan, "grouped", i, None))
        test = {r.seq for r in plan.folds["grouped"][i][0]}
        assert seen and not test & set(seen)
        assert set(seen) == {r.seq for j, (recs, _) in enumerate(plan.folds["grouped"]) if j != i for r in recs}
        assert logp.shape == (len(test), 2) and extra["k"] in (1, 2, 3) and set(extra["inner_auc"]) == {"1", "2", "3"}


def test_kmer_lr_inner_cv_chooses_the_best_k():
    """Positives differ from negatives only in dinucleotides: inner CV prefers k >= 2 over k = 1."""
    rng = np.random.RandomState(1)
    pos = ["".join(rng.choice(["AT", "TA", "CG", "GC"], 60)) for _ in range(40)]  # no AA/TT/CC/GG steps
    neg = [random_seq(rng, 120) for _ in range(40)]
    fit = fit_kmer_lr(pos + neg, [1] * 40 + [0] * 40, ks=(1, 2), inner_folds=4, seed=0)
    assert fit.k == max(fit.inner_auc, key=fit.inner_auc.get) == 2
    assert kmer_frequencies(["ACGT"], 2).sum() == pytest.approx(1.0)


# --- the pretraining corpus ---------------------------------------------------------------------------------
def _check_disjoint(pos, neg, n_folds=5):
    _, folds = kfold_splits(pos, neg, 3, n_folds, 52)
    corpus = unused_negatives(pos, neg, 52)
    dev_ids = {i for f in folds for i in (*f["pos"], *f["neg"])}
    dev_seqs = {r.seq for recs, _ in fold_records(pos, neg, folds) for r in recs}
    assert not dev_ids & {r.id for r in corpus}
    assert not dev_seqs & {r.seq.upper().replace("U", "T") for r in corpus}
    assert len(corpus) == len(neg) - len(pos) and len(dev_ids) == 2 * len(pos)
    return corpus


def test_corpus_is_disjoint_from_every_fold(data_dir, tmp_path):
    pos, neg = io.read_fasta(data_dir / "pos.fa"), io.read_fasta(data_dir / "neg.fa")
    _check_disjoint(pos, neg, 3)
    plan = prepare(TableSettings(data_path=str(data_dir), output_dir=str(tmp_path / "o"), n_folds=3))
    from m6abert.kmer import seq2kmer

    dev = {seq2kmer(r.seq, 3) for recs, _ in plan.folds["grouped"] for r in recs}
    corpus = {s for lines in plan.corpus[""].values() for s in lines}
    assert len(corpus) == 12 and not dev & corpus
    assert plan.corpus_info[""]["overlap_with_folds"] == 0


def test_corpus_is_disjoint_from_every_fold_real_data(real_data_dir):
    pos, neg = io.read_fasta(real_data_dir / "pos.fa"), io.read_fasta(real_data_dir / "neg.fa")
    assert len(_check_disjoint(pos, neg)) == 5117


# --- statistics and the table writer --------------------------------------------------------------------------
def test_paired_intervals():
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    d = np.array([0.02, -0.01, 0.03, 0.00, 0.01])
    t = paired_t_interval(d)
    assert t["p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue) and t["contains_zero"]
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 50), np.round(rng.random(50), 1)
    rows = rng.integers(0, 50, (4, 50))
    assert auc_of_resamples(y, s, rows) == pytest.approx([roc_auc_score(y[r], s[r]) for r in rows])
    same = paired_bootstrap_auc(y, s, s, 200)
    assert same["diff"] == 0 and same["ci"] == [0, 0] and same["contains_zero"]
    # the corrected t (Nadeau-Bengio, 5 folds: n_test / n_train = 1/4) widens the interval by sqrt(1 + n/4)
    c = paired_t_interval(d, test_train_ratio=0.25)
    assert (c["ci"][1] - c["ci"][0]) == pytest.approx((t["ci"][1] - t["ci"][0]) * np.sqrt(1 + 5 * 0.25))
    # a known sign: a perfect score against a random one, model - ref
    perfect = y.astype(float)
    better = paired_bootstrap_auc(y, perfect, s, 500)
    assert better["diff"] == pytest.approx(1 - roc_auc_score(y, s)) and better["ci"][0] > 0
    assert not better["contains_zero"] and paired_bootstrap_auc(y, s, perfect, 500)["ci"][1] < 0


def _records(aucs: dict[str, list[float]]) -> dict[str, list[dict]]:
    """Fake per-fold records: scores that give each fold a prescribed metric set."""
    out = {}
    rng = np.random.default_rng(1)
    for name, values in aucs.items():
        out[name] = []
        for i, auc in enumerate(values):
            labels = [1] * 10 + [0] * 10
            metrics = {"acc": auc, "f1": auc, "mcc": auc - 0.5, "auc": auc, "precision": auc, "recall": auc,
                       "aupr": auc}
            out[name].append({"fold": i, "ids": [f"{i}_{j}" for j in range(20)], "labels": labels,
                              "p1": rng.random(20).tolist(), "metrics": metrics, "extra": {}})
    return out


def test_table_writer_bolds_the_best_per_column():
    table = summarise(_records({"m6a_bert_deg": [0.5, 0.75], "kmer_lr": [0.75, 0.875], "gc_lr": [0.8125, 0.8125]}),
                      n_boot=200)
    md = protocol_markdown(table)
    main, _, rest = md.partition("\n\n")
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in main.splitlines()[2:]}
    # columns ACC, AUC, MCC, F1, precision, recall, AUPR: a tie for the best mean, both bold
    for j in range(7):
        assert rows["k-mer frequency LR"][j].startswith("**0.") and rows["GC-content LR"][j].startswith("**0.")
        assert "**" not in rows["m6A-BERT-Deg"][j]
    assert rows["GC-content LR"][1] == "**0.812 ± 0.000**" and rows["k-mer frequency LR"][1] == "**0.812 ± 0.088**"
    assert "AUC difference from m6A-BERT-Deg" in rest and "| k-mer frequency LR | +0.188 [" in rest
    assert table["differences"]["kmer_lr"]["paired_t"]["mean"] == pytest.approx(0.1875)
    assert "(contains 0)" in rest  # 2 folds: a wide t interval


# --- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [
    ["--kmer", "7"], ["--n_folds", "1"], ["--models", "m6a_bert_deg,svm"], ["--models", "gc_lr,gc_lr"],
    ["--learning_rate", "nan"], ["--config_name", "huge"], ["--pretrain_steps", "0"], ["--seed", "-1"],
    ["--n_bootstrap", "5"], ["--pretrain_corpus", "/nonexistent.fa"], ["--data_path", "/nonexistent"],
    ["--folds", "leaky"], ["--group_overlap", "0"], ["--group_overlap", "33"],
    ["--pretrain_per_fold", "--pretrain_corpus", "/nonexistent.fa"],
])
def test_bad_flags_exit_2_with_one_line(data_dir, tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as err:
        cli.main(argv(data_dir, tmp_path / "out") + extra)
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0]
    assert not (tmp_path / "out").exists()


def test_non_empty_output_dir_and_changed_settings_are_refused(data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    with pytest.raises(SystemExit) as err:
        cli.main(argv(data_dir, out, "--models", "gc_lr"))
    assert err.value.code == 2 and "not empty" in capsys.readouterr().err
    cli.main(argv(data_dir, out, "--models", "gc_lr", "--overwrite_output_dir"))
    assert (out / "mine.txt").exists() and (out / "table.md").exists()
    with pytest.raises(SystemExit) as err:
        cli.main(argv(data_dir, out, "--models", "gc_lr", "--should_continue", "--seed", "7"))
    assert err.value.code == 2 and "seed" in capsys.readouterr().err


def test_corpus_sequences_sharing_a_stretch_with_the_folds_are_dropped(data_dir, tmp_path):
    """A corpus sequence equal to a fold window, or sharing 30 nt with one (shifted by 7 nt), would let
    m6A-BERT-Deg see its test loci in pretraining: both are dropped, counted, the rest kept."""
    pos = io.read_fasta(data_dir / "pos.fa")
    rng = np.random.RandomState(5)
    unrelated = [io.FastaRecord(f"extra{i}", random_seq(rng, LENGTH)) for i in range(12)]
    shifted = io.FastaRecord("shifted", pos[4].seq[7:] + random_seq(rng, 7))
    corpus = tmp_path / "corpus.fa"
    write_fasta(corpus, [*unrelated, pos[3], shifted])
    plan = prepare(TableSettings(data_path=str(data_dir), output_dir=str(tmp_path / "o"), n_folds=2,
                                 pretrain_corpus=str(corpus), pretrain_steps=2))
    info = plan.corpus_info[""]
    assert info["n_read"] == 14 and info["n_dropped_sharing_a_stretch_with_folds"] == 2 and info["n_sequences"] == 12
    assert info["overlap_with_folds"] == 0 and info["selection"].startswith("a user's FASTA")
    from m6abert.kmer import seq2kmer

    sentences = {line for lines in plan.corpus[""].values() for line in lines}
    assert sentences == {seq2kmer(r.seq, 3) for r in unrelated}


def test_a_corpus_left_too_small_is_refused(data_dir, tmp_path, capsys):
    pos = io.read_fasta(data_dir / "pos.fa")
    corpus = tmp_path / "corpus.fa"
    write_fasta(corpus, [io.FastaRecord("extra1", "ACGT" * 125 + "A"), pos[3]])
    with pytest.raises(SystemExit) as err:
        cli.main(argv(data_dir, tmp_path / "out", "--pretrain_corpus", str(corpus)))
    message = capsys.readouterr().err
    assert err.value.code == 2 and "1 of its 2 sequences share no 30-nt stretch with a fold window" in message
    assert not (tmp_path / "out").exists()


def test_inner_folds_larger_than_a_class_is_refused_first(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(argv(data_dir, tmp_path / "out", "--models", "kmer_lr", "--inner_folds", "500"))
    assert err.value.code == 2 and "--inner_folds 500: the training set of fold 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- protocols: grouped, random, both -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locus_dir(tmp_path_factory) -> Path:
    """Positives and negatives cut from loci: each locus gives 3 windows shifted by 15 nt (one label per locus)."""
    folder = tmp_path_factory.mktemp("locus_data")
    rng = np.random.RandomState(3)
    records = {1: [], 0: []}
    for locus in range(16):
        label, transcript = locus % 2, random_seq(rng, LENGTH + 30)
        records[label] += [io.FastaRecord(f"{'pn'[1 - label]}{locus}_{j}", transcript[15 * j:15 * j + LENGTH])
                           for j in range(3)]
    write_fasta(folder / "pos.fa", records[1])
    write_fasta(folder / "neg.fa", records[0])
    return folder


def test_folds_both_compares_the_protocols_on_the_same_windows(locus_dir, tmp_path, monkeypatch):
    """--folds both: the grouped table first, then the random one, then what the leak does; the random
    folds put windows of one locus in different folds (leakage.json), the grouped ones never; the k-mer
    LR's inner CV is grouped by locus under the grouped protocol only."""
    import m6abert.baselines as baselines

    calls = []
    real_fit = baselines.fit_kmer_lr
    monkeypatch.setattr(baselines, "fit_kmer_lr",
                        lambda *a, **kw: calls.append(a[5] if len(a) > 5 else kw.get("groups")) or real_fit(*a, **kw))
    out = tmp_path / "out"
    result = cli.run(["--data_path", str(locus_dir), "--output_dir", str(out), "--models", "kmer_lr,gc_lr",
                      "--n_folds", "2", "--max_lr_k", "2", "--inner_folds", "2", "--n_bootstrap", "200",
                      "--folds", "both"])
    assert list(result["protocols"]) == ["grouped", "random"] and result["default_protocol"] == "grouped"
    leak = json.loads((out / "leakage.json").read_text())
    assert leak["grouped"]["cross_part_pairs"]["total"] == 0 and leak["random"]["cross_part_pairs"]["total"] > 0
    groups_of = {}
    for row in zip(*io.read_columns(out / "data" / "grouped" / "groups.tsv").values(), strict=True):
        groups_of.setdefault(row[1], set()).add(row[2])
    assert len(groups_of) == 16 and all(len(parts) == 1 for parts in groups_of.values())
    # two grouped fits get locus groups (3 windows each), two random fits none
    assert [c is None for c in calls] == [False, False, True, True]
    assert all(len(c) == 24 and len(set(c)) == 8 for c in calls[:2])
    md = (out / "table.md").read_text()
    assert md.index("### Grouped folds") < md.index("### Random folds") < md.index("### What the leak does")
    assert set(result["leak"]) == {"kmer_lr", "gc_lr"}
    d = result["leak"]["gc_lr"]
    assert d["random_minus_grouped"] == pytest.approx(d["auc_random"] - d["auc_grouped"])
    oof = io.read_columns(out / "oof_predictions.tsv")
    # windows of loci split across the random folds, recounted from oof_predictions.tsv, and their AUC
    from sklearn.metrics import roc_auc_score

    rows = [r for r in zip(oof["protocol"], oof["group"], oof["fold"], oof["label"], oof["p_gc_lr"], strict=True)
            if r[0] == "random"]
    folds_of = {}
    for _, g, f, _, _ in rows:
        folds_of.setdefault(g, set()).add(f)
    split = [r for r in rows if len(folds_of[r[1]]) > 1]
    assert d["random_split_loci"]["split"]["n"] == len(split) > 0
    assert d["random_split_loci"]["whole"]["n"] == 48 - len(split)
    assert d["random_split_loci"]["split"]["auc"] == pytest.approx(
        roc_auc_score([int(r[3]) for r in split], [float(r[4]) for r in split]), abs=1e-6)
    by = {p: sorted(i for i, q in zip(oof["id"], oof["protocol"], strict=True) if q == p) for p in ("grouped", "random")}
    assert by["grouped"] == by["random"] and len(by["grouped"]) == 48
    per_fold = io.read_columns(out / "per_fold.tsv")
    assert sorted(zip(per_fold["protocol"], per_fold["model"], per_fold["fold"], strict=True)) == sorted(
        (p, m, str(i)) for p in ("grouped", "random") for m in ("kmer_lr", "gc_lr") for i in range(2))


def test_a_grouped_run_continues_into_both(locus_dir, tmp_path):
    """The protocol is not part of what a fold result depends on: a finished grouped run continued with
    --folds both reuses its grouped folds (same numbers) and adds the random ones."""
    base = ["--data_path", str(locus_dir), "--output_dir", str(tmp_path / "out"), "--models", "gc_lr",
            "--n_folds", "2", "--n_bootstrap", "200"]
    first = cli.run(base)
    both = cli.run([*base, "--folds", "both", "--should_continue"])
    assert both["protocols"]["grouped"]["models"] == first["protocols"]["grouped"]["models"]
    assert (tmp_path / "out" / "runs" / "random" / "gc_lr" / "fold_1.json").exists()
    with pytest.raises(SystemExit) as err:
        cli.main([*base, "--folds", "both", "--should_continue", "--group_overlap", "20"])
    assert err.value.code == 2


def test_pretrain_per_fold_is_label_neutral_and_never_sees_the_held_out_loci(locus_dir, tmp_path):
    """--pretrain_per_fold: one corpus and one pretrained model per protocol and fold, holding windows of
    both labels (the training folds' and the unused ones) and nothing that shares 30 nt with the fold's
    held-out windows; the fine-tuned m6A-BERT-Deg of a fold starts from its own fold's model."""
    from m6abert.groups import sharing
    from m6abert.io.checkpoints import model_identity
    from m6abert.kmer import kmer2seq

    s = TableSettings(data_path=str(locus_dir), output_dir=str(tmp_path / "o"), n_folds=2, folds="grouped",
                      pretrain_per_fold=True, models=("m6a_bert_deg",))
    plan = prepare(s)
    assert sorted(plan.corpus) == ["grouped/fold_0", "grouped/fold_1"]
    for key, corpus in plan.corpus.items():
        protocol, fold = key.split("/fold_")
        held_out = [r.seq for r in plan.folds[protocol][int(fold)][0]]
        seqs = [kmer2seq(line) for lines in corpus.values() for line in lines]
        assert seqs and not sharing(seqs, held_out, 30).any()
        assert plan.corpus_info[key]["selection"].startswith("label-neutral")
    # grouped folds hold whole loci, so every window outside them is kept, of both labels
    kept = plan.corpus_info["grouped/fold_0"]
    assert kept["n_read"] == 48 and kept["n_sequences"] == 48 - len(plan.folds["grouped"][0][0])
    label_of = {r.seq: lab for recs, labels in plan.folds["grouped"] for r, lab in zip(recs, labels, strict=True)}
    corpus_labels = {label_of[kmer2seq(line)] for lines in plan.corpus["grouped/fold_0"].values() for line in lines}
    assert corpus_labels == {0, 1}
    out = tmp_path / "run"
    result = cli.run(["--data_path", str(locus_dir), "--output_dir", str(out), "--models", "m6a_bert_deg",
                      "--config_name", "tiny",
                      "--n_folds", "2", "--pretrain_per_fold", "--pretrain_steps", "2", "--pretrain_batch_size", "8",
                      "--finetune_epochs", "1", "--batch_size", "8", "--n_bootstrap", "200"])
    assert sorted(result["pretraining"]["per_fold"]) == ["grouped/fold_0", "grouped/fold_1"]
    for i in range(2):
        assert (out / "runs" / "pretrain_per_fold" / "grouped" / f"fold_{i}" / "model.safetensors").exists()
        args = json.loads((out / "runs" / "grouped" / "m6a_bert_deg" / f"fold_{i}" / "finetune_args.json").read_text())
        assert args["base_model_identity"] == model_identity(out / "runs" / "pretrain_per_fold" / "grouped" / f"fold_{i}")
    assert not (out / "runs" / "pretrain").exists()
    timings = json.loads((out / "timings.json").read_text())
    assert sorted(timings["pretrain_seconds"]) == ["grouped/fold_0", "grouped/fold_1"]


def test_pretrain_per_fold_on_leaky_random_folds_is_refused_when_nothing_is_left(locus_dir, tmp_path, capsys):
    """Random folds cut every locus here, so nothing shares no stretch with a held-out fold: refused first."""
    with pytest.raises(SystemExit) as err:
        cli.main(["--data_path", str(locus_dir), "--output_dir", str(tmp_path / "o"), "--models", "m6a_bert_deg",
                  "--n_folds", "2", "--folds", "random", "--pretrain_per_fold"])
    assert err.value.code == 2 and "too few to pretrain on" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_run_recorded_before_pretrain_per_fold_existed_continues(locus_dir, tmp_path, capsys):
    """runs/settings.json without the later pretrain_per_fold key: continued as the default (False); asking
    for per-fold pretraining on it is a change of settings, refused."""
    base = ["--data_path", str(locus_dir), "--output_dir", str(tmp_path / "out"), "--models", "gc_lr",
            "--n_folds", "2", "--n_bootstrap", "200"]
    first = cli.run(base)
    settings = tmp_path / "out" / "runs" / "settings.json"
    old = json.loads(settings.read_text())
    del old["pretrain_per_fold"]
    settings.write_text(json.dumps(old))
    assert cli.run([*base, "--should_continue"])["protocols"] == first["protocols"]
    with pytest.raises(SystemExit) as err:
        cli.main([*base, "--should_continue", "--pretrain_per_fold"])
    assert err.value.code == 2 and "(pretrain_per_fold)" in capsys.readouterr().err


def test_a_fold_record_of_other_windows_is_refused_on_continue(locus_dir, tmp_path, capsys):
    """A stored fold result is reused only for the same windows (a new scikit-learn could group differently)."""
    base = ["--data_path", str(locus_dir), "--output_dir", str(tmp_path / "out"), "--models", "gc_lr",
            "--n_folds", "2", "--n_bootstrap", "200"]
    cli.run(base)
    path = tmp_path / "out" / "runs" / "grouped" / "gc_lr" / "fold_0.json"
    rec = json.loads(path.read_text())
    rec["ids"] = rec["ids"][::-1]
    path.write_text(json.dumps(rec))
    with pytest.raises(SystemExit) as err:
        cli.main([*base, "--should_continue"])
    assert err.value.code == 2 and "are not those of fold 0 of the grouped folds" in capsys.readouterr().err


# --- the model slots -------------------------------------------------------------------------------------------
@pytest.fixture()
def toy_baseline():
    """tests/toy_baseline.py registers a model; it is removed again after the test."""
    import importlib
    import sys

    from m6abert.table_models import SLOTS

    sys.modules.pop("toy_baseline", None)
    importlib.import_module("toy_baseline")
    yield
    SLOTS.pop("a_content_lr")
    sys.modules.pop("toy_baseline", None)


def test_a_baseline_added_in_one_file_runs_in_the_table(toy_baseline, locus_dir, tmp_path):
    """A model registered from outside the package (tests/toy_baseline.py) is a --models choice, trains
    on every fold of both protocols, gets its row, its fold records and its columns."""
    out = tmp_path / "out"
    result = cli.run(["--data_path", str(locus_dir), "--output_dir", str(out), "--models", "gc_lr,a_content_lr",
                      "--n_folds", "2", "--n_bootstrap", "200", "--folds", "both"])
    for protocol in ("grouped", "random"):
        row = result["protocols"][protocol]["models"]["a_content_lr"]
        assert row["label"] == "A-content LR" and [e["n_train"] for e in row["extra"]] == [24, 24]
        assert (out / "runs" / protocol / "a_content_lr" / "fold_1.json").exists()
    assert "| A-content LR |" in (out / "table.md").read_text()
    assert "p_a_content_lr" in io.read_columns(out / "oof_predictions.tsv")


def test_model_slots_refuse_unknown_and_taken_names(toy_baseline):
    from m6abert.table_models import register, runner

    with pytest.raises(ValueError, match="already in the table"):
        register("gc_lr", "another GC", lambda job: None)
    from m6abert.utils import InputError

    with pytest.raises(InputError, match="unknown model 'svm'"):
        runner("svm")
    assert runner("a_content_lr").__name__ == "a_content_fold"


def test_a_killed_cnn_fold_resumes_from_its_checkpoint_exactly(data_dir, tmp_path, monkeypatch, caplog):
    """The CNN+LSTM checkpoints like the BERTs (no tokenizer files: it reads no k-mers): killed right
    after its checkpoint of step 2, the fold run again resumes there and ends with the logits of an
    uninterrupted run."""
    import m6abert.train as train_module
    from m6abert.commands.table_folds import cnn_fold
    from m6abert.table_models import FoldJob
    from m6abert.train import setup_distributed

    s = TableSettings(data_path=str(data_dir), output_dir=str(tmp_path / "o"), n_folds=2, models=("cnn_lstm",),
                      cnn_epochs=2, batch_size=4, save_steps=2)
    plan, dist = prepare(s), setup_distributed(-1, True)
    whole, _ = cnn_fold(FoldJob(s, tmp_path / "whole", plan, "grouped", 0, dist))

    class Killed(Exception):
        pass

    real_save = train_module._save

    def save_then_die(run, state, step):
        real_save(run, state, step)
        if step == 2:
            raise Killed

    monkeypatch.setattr(train_module, "_save", save_then_die)
    with pytest.raises(Killed):
        cnn_fold(FoldJob(s, tmp_path / "killed", plan, "grouped", 0, dist))
    monkeypatch.setattr(train_module, "_save", real_save)
    folder = tmp_path / "killed" / "runs" / "grouped" / "cnn_lstm" / "fold_0"
    assert [p.name for p in io.list_checkpoints(folder)] == ["checkpoint-2"]
    assert not (folder / "checkpoint-2" / "vocab.txt").exists()
    import logging

    caplog.set_level(logging.INFO, logger="m6abert")
    steps = []
    monkeypatch.setattr(train_module, "_save", lambda run, state, step: steps.append(step) or real_save(run, state, step))
    resumed, extra = cnn_fold(FoldJob(s, tmp_path / "killed", plan, "grouped", 0, dist))
    assert any(f"resuming from {folder / 'checkpoint-2'} at step 2" in r.getMessage() for r in caplog.records)
    assert steps == [4, 6]  # only the steps after the checkpoint were trained
    assert extra["global_step"] == 6 and np.array_equal(resumed, whole)
