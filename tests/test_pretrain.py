"""Masked-LM pretraining: DNABERT's span masking, the corpus loader, perplexity, run_pretrain.py.

Bad input is in tests/test_errors.py; kill and resume, NaN and determinism in tests/test_reliability.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from toy import write_split_dir

from m6abert import io
from m6abert.cli import finetune as ft_cli
from m6abert.cli import pretrain as rp_cli
from m6abert.cli.common import run_guarded
from m6abert.data import KmerDataset, check_block_size, load_corpus
from m6abert.kmer import CLS_ID, MASK_ID, PAD_ID, SEP_ID, encode_kmer_sentences, encode_many, seq2kmer
from m6abert.pretrain import (
    MASK_LIST,
    SpanMaskingCollator,
    default_mlm_probability,
    evaluate,
    expand_centres,
    mask_tokens,
    maskable_positions,
)
from m6abert.utils import InputError

ROOT = Path(__file__).resolve().parents[1]
KS = (3, 4, 5, 6)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, and the machine's two cores are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def random_batch(n: int, k: int, min_len: int = 5, max_len: int = 60, seed: int = 0) -> torch.Tensor:
    """(n, L) rows ``[CLS] k-mer ids [SEP]`` of random lengths, right-padded with [PAD]."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(min_len, max_len + 1, size=n)
    ids = torch.full((n, int(lengths.max()) + 2), PAD_ID, dtype=torch.long)
    for i, m in enumerate(lengths):
        ids[i, 0], ids[i, m + 1] = CLS_ID, SEP_ID
        ids[i, 1 : m + 1] = torch.from_numpy(rng.randint(5, 5 + 4**k, size=m))
    return ids


def dnabert_mask_tokens(inputs: torch.Tensor, k: int, p: float, vocab_size: int):
    """DNABERT's mask_tokens (examples/run_pretrain.py) transcribed literally; global RNG."""
    mask_list = MASK_LIST[k]
    labels = inputs.clone()
    probability_matrix = torch.full(labels.shape, p)
    special_tokens_mask = [[1 if x in (SEP_ID, CLS_ID) else 0 for x in val] for val in labels.tolist()]
    probability_matrix.masked_fill_(torch.tensor(special_tokens_mask, dtype=torch.bool), value=0.0)
    probability_matrix.masked_fill_(labels.eq(PAD_ID), value=0.0)
    masked_indices = torch.bernoulli(probability_matrix).bool()
    masks = deepcopy(masked_indices)
    for i, masked_index in enumerate(masks):
        end = torch.where(probability_matrix[i] != 0)[0].tolist()[-1]
        mask_centers = set(torch.where(masked_index == 1)[0].tolist())
        new_centers = deepcopy(mask_centers)
        for center in mask_centers:
            for mask_number in mask_list:
                current_index = center + mask_number
                if current_index <= end and current_index >= 1:
                    new_centers.add(current_index)
        masked_indices[i][list(new_centers)] = True
    labels[~masked_indices] = -100
    indices_replaced = torch.bernoulli(torch.full(labels.shape, 0.8)).bool() & masked_indices
    inputs[indices_replaced] = MASK_ID
    indices_random = torch.bernoulli(torch.full(labels.shape, 0.5)).bool() & masked_indices & ~indices_replaced
    random_words = torch.randint(vocab_size, labels.shape, dtype=torch.long)
    inputs[indices_random] = random_words[indices_random]
    return inputs, labels


def runs(row: torch.Tensor) -> list[tuple[int, int]]:
    """(start, length) of the runs of True in a 1-D bool tensor."""
    x = np.concatenate([[0], row.numpy().astype(np.int8), [0]])
    d = np.diff(x)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist(), strict=True))


# ---------------------------------------------------------------------------- masking
@pytest.mark.parametrize("k", KS)
def test_default_probability_masks_15_percent(k):
    p = default_mlm_probability(k)
    assert abs(1 - (1 - p) ** k - 0.15) < 1e-3
    if k == 6:  # DNABERT's README value 0.025 is the same setting, rounded
        assert 0.025 <= p < 0.028


@pytest.mark.parametrize("k", KS)
def test_masks_equal_dnabert_loop_bit_for_bit(k):
    ids = random_batch(24, k, min_len=1, max_len=40, seed=k)
    for p in (0.025, 0.15, 0.5):
        torch.manual_seed(11)
        ref_inputs, ref_labels = dnabert_mask_tokens(ids.clone(), k, p, 5 + 4**k)
        ours = mask_tokens(ids, k, p, 5 + 4**k, torch.Generator().manual_seed(11))
        assert torch.equal(ours.input_ids, ref_inputs) and torch.equal(ours.labels, ref_labels)
    assert torch.equal(ids, random_batch(24, k, min_len=1, max_len=40, seed=k))  # input untouched


@pytest.mark.parametrize("k", KS)
def test_span_of_one_centre(k):
    ids = random_batch(1, k, min_len=30, max_len=30)  # [CLS] 30 k-mers [SEP]: k-mers at 1..30
    maskable = maskable_positions(ids)
    for c, expected in ((15, [15 + d for d in (0, *MASK_LIST[k])]),  # interior: k contiguous tokens
                        (1, [d for d in (1, *(1 + d for d in MASK_LIST[k])) if d >= 1]),  # clipped at [CLS]
                        (30, [d for d in (30, *(30 + d for d in MASK_LIST[k])) if d <= 30])):  # before [SEP]
        centres = torch.zeros_like(maskable)
        centres[0, c] = True
        got = expand_centres(centres, maskable, k)[0].nonzero().flatten().tolist()
        assert got == sorted(expected)
        if c == 15:
            assert len(got) == k and got == list(range(got[0], got[0] + k))
    centres = torch.zeros_like(maskable)
    centres[0, [10, 12]] = True  # overlapping spans merge into one run
    assert runs(expand_centres(centres, maskable, k)[0]) == [(10 + min(MASK_LIST[k]), k + 2)]


@pytest.mark.parametrize("k", KS)
def test_masked_fraction_and_contiguous_spans(k):
    ids = random_batch(300, k, min_len=200, max_len=200, seed=1)
    for p in (0.025, default_mlm_probability(k)):
        m = mask_tokens(ids, k, p, 5 + 4**k, torch.Generator().manual_seed(3))
        interior = m.masked[:, k + 1 : 201 - k]  # away from the clipped ends
        assert abs(interior.float().mean().item() - (1 - (1 - p) ** k)) < 0.01
    # rare centres: nearly every span is an isolated run of exactly k tokens; none is shorter
    m = mask_tokens(ids, k, 0.002, 5 + 4**k, torch.Generator().manual_seed(4))
    lengths = [n for row in m.masked for s, n in runs(row) if s > 1 and s + n - 1 < 200]
    assert len(lengths) > 50 and min(lengths) >= k
    assert np.mean(np.array(lengths) == k) > 0.9


def test_special_and_padding_never_masked():
    for k in KS:
        ids = random_batch(64, k, min_len=1, max_len=30, seed=k)
        special = ~maskable_positions(ids)
        for seed in range(5):
            m = mask_tokens(ids, k, 0.6, 5 + 4**k, torch.Generator().manual_seed(seed))
            assert not m.masked[special].any()
            assert (m.labels[special] == -100).all()
            assert torch.equal(m.input_ids[special], ids[special])
            assert torch.equal(m.labels[m.masked], ids[m.masked])  # labels: the original tokens
            assert (m.labels[~m.masked] == -100).all()
            assert torch.equal(m.input_ids[~m.masked], ids[~m.masked])


def test_80_10_10_and_random_ids_over_the_whole_vocabulary():
    k, vocab = 3, 69
    ids = random_batch(400, k, min_len=100, max_len=100, seed=5)
    m = mask_tokens(ids, k, 0.3, vocab, torch.Generator().manual_seed(0))
    orig, new = ids[m.masked], m.input_ids[m.masked]
    n = len(orig)
    assert n > 20_000
    as_mask = (new == MASK_ID).float().mean().item()
    kept = (new == orig).float().mean().item()
    other = ((new != MASK_ID) & (new != orig)).float().mean().item()
    assert abs(as_mask - (0.8 + 0.1 / vocab)) < 0.01
    assert abs(kept - (0.1 + 0.1 / vocab)) < 0.01
    assert abs(other - 0.1 * (1 - 2 / vocab)) < 0.01
    randomised = new[(new != MASK_ID) & (new != orig)]
    assert randomised.min() == 0 and randomised.max() == vocab - 1  # special ids included, as DNABERT
    assert (randomised < 5).any()


def test_collator_seeding_padding_and_compat():
    k = 4
    rows = [{"input_ids": r[r != PAD_ID].numpy()} for r in random_batch(8, k, seed=2)]
    a, b = SpanMaskingCollator(k, 261, 0.2, seed=1), SpanMaskingCollator(k, 261, 0.2, seed=1)
    first = [a(rows), a(rows)]
    assert torch.equal(first[0]["labels"], b(rows)["labels"])  # same seed, same masks
    assert not torch.equal(first[0]["labels"], first[1]["labels"])  # the next batch differs
    c = SpanMaskingCollator(k, 261, 0.2, seed=1)
    c.batches_done = 1  # a resumed stream continues where it stopped
    assert torch.equal(c(rows)["labels"], first[1]["labels"])
    assert not torch.equal(SpanMaskingCollator(k, 261, 0.2, seed=2)(rows)["labels"], first[0]["labels"])
    assert not torch.equal(SpanMaskingCollator(k, 261, 0.2, seed=1, stream=3)(rows)["labels"], first[0]["labels"])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(SpanMaskingCollator(k, 261, 0.2, generator=g1)(rows)["input_ids"],
                       SpanMaskingCollator(k, 261, 0.2, generator=g2)(rows)["input_ids"])
    batch = first[0]
    lengths = torch.tensor([len(r["input_ids"]) for r in rows])
    assert batch["input_ids"].shape == (8, int(lengths.max()))
    assert torch.equal(batch["attention_mask"].sum(1), lengths)
    assert set(SpanMaskingCollator(k, 261, 0.2, dnabert_compat=True)(rows)) == {"input_ids", "labels"}
    assert SpanMaskingCollator(k, 261).mlm_probability == default_mlm_probability(k)


def test_padding_is_masked_unless_dnabert_compat():
    """A row's MLM logits do not depend on the padding of its batch, except under --dnabert_compat."""
    from m6abert.model import build_config, new_model

    torch.manual_seed(0)
    model = new_model(build_config("tiny", 3), "mlm").eval()
    rows = [{"input_ids": r[r != PAD_ID].numpy()} for r in random_batch(2, 3, min_len=5, max_len=40, seed=3)]
    rows.sort(key=lambda r: len(r["input_ids"]))
    n = len(rows[0]["input_ids"])
    for compat in (False, True):
        batch = SpanMaskingCollator(3, 69, 0.1, dnabert_compat=compat)(rows)
        batch.pop("labels")
        with torch.no_grad():
            padded = model(**batch).logits[0, :n]
            alone = model(input_ids=batch["input_ids"][:1, :n]).logits[0]
        assert torch.allclose(padded, alone, atol=1e-5) != compat


# ---------------------------------------------------------------------------- corpus
@pytest.mark.parametrize("k", KS)
def test_corpus_ids_equal_the_tokenizer(tmp_path, k):
    rng = np.random.RandomState(k)
    seqs = ["".join(rng.choice(list("ACGT"), rng.randint(k, 50))) for _ in range(200)]
    seqs[3] = seqs[3][:2] + "N" + seqs[3][3:] if len(seqs[3]) > 3 else seqs[3]
    sentences = [seq2kmer(s, k) for s in seqs]
    sentences[7] = sentences[7].lower()  # whole-token lookup: lower-case k-mers are [UNK], as DNABERT
    expected = encode_kmer_sentences(sentences, k)
    path = tmp_path / "c.txt"
    path.write_text("\n\n".join(sentences) + "\r\n\n")  # blank lines and a CRLF are skipped
    for chunk_bytes in (io.CORPUS_CHUNK_BYTES, 300):
        c = load_corpus(path, k if chunk_bytes == 300 else None, chunk_bytes=chunk_bytes)
        assert c.k == k and c.ids.dtype == np.int32 and len(c) == 200
        assert np.array_equal(c.ids, expected.ids) and np.array_equal(c.offsets, expected.offsets)
        assert c.sources[:3].tolist() == [1, 3, 5] and c.n_unknown == expected.n_unknown > 0
    # irregular spacing takes the slow path and gives the same ids
    path.write_text("\n".join(s.replace(" ", " \t ", 1) for s in sentences) + "\n")
    assert np.array_equal(load_corpus(path, k).ids, expected.ids)
    item = KmerDataset(load_corpus(path, k))[0]["input_ids"]
    assert item.dtype == np.int64 and item[0] == CLS_ID and item[-1] == SEP_ID
    assert np.array_equal(item[1:-1], expected.ids[: expected.offsets[1]])


def test_fasta_corpus(tmp_path):
    seqs = ["ACGUACGTTA", "acgtn" * 5, "GGGA"]
    (tmp_path / "p.fa").write_text("".join(f">r{i} x\n{s[:6]}\n{s[6:]}\n" for i, s in enumerate(seqs)))
    c = load_corpus(tmp_path / "p.fa", 3, fasta=True)
    enc = encode_many(seqs, 3)
    assert np.array_equal(c.ids, enc.ids) and np.array_equal(c.offsets, enc.offsets)
    assert c.unit == "record" and c.sources.tolist() == [1, 2, 3]
    with pytest.raises(InputError, match="needs k"):
        load_corpus(tmp_path / "p.fa", None, fasta=True)
    with pytest.raises(InputError, match="shorter than k=5"):
        load_corpus(tmp_path / "p.fa", 5, fasta=True)


def test_fasta_chunks_equal_read_fasta(tmp_path):
    fa = tmp_path / "a.fa"
    fa.write_text(">r1 first\nACGU\nacg\n\n>r2\nNNAC\n>\nGGGG\n")
    chunks = list(io.iter_fasta_chunks(fa, chunk_records=2))
    assert [len(c) for c in chunks] == [2, 1] and sum(chunks, []) == io.read_fasta(fa)
    for text, needle in ((">r1\nACGX\n", "illegal letter 'X'"), (">r1\n>r2\nAC\n", "empty sequence"),
                         ("ACGT\n", "not FASTA"), ("\n\n", "empty FASTA file")):
        fa.write_text(text)
        with pytest.raises(InputError, match=needle):
            list(io.iter_fasta_chunks(fa))
        with pytest.raises(InputError, match=needle.split()[0]):
            io.read_fasta(fa)


def test_corpus_errors(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("\n  \n")
    with pytest.raises(InputError, match="empty corpus"):
        load_corpus(p)
    p.write_text("AAA AAT\nAAAA AAAT\n")
    with pytest.raises(InputError, match="line 2: k-mer 'AAAA' of length 4, but the model is for k=3"):
        load_corpus(p)
    with pytest.raises(InputError, match="line 1: k-mers of length 3, but the model is for k=4"):
        load_corpus(p, 4)
    p.write_text("AAAAAAAA TTTTTTTT\n")
    with pytest.raises(InputError, match="k = 3..6"):
        load_corpus(p)
    p.write_text("AAA AAT ATA\nAAA\n")
    with pytest.raises(InputError, match=r"line 1: 5 tokens with \[CLS\]/\[SEP\] exceed --block_size 4"):
        check_block_size(load_corpus(p), 4, p)
    check_block_size(load_corpus(p), 5, p)
    p.write_bytes(b"AAA\x00AAT\n")
    with pytest.raises(InputError, match="binary"):
        load_corpus(p)
    with pytest.raises(InputError, match="not found"):
        load_corpus(tmp_path / "nope.txt")


# ---------------------------------------------------------------------------- model and evaluation
@pytest.mark.parametrize("with_decoder_bias", [False, True])
def test_original_mlm_checkpoint_doubles_the_bias(tmp_path, with_decoder_bias):
    """An original (transformers 2.5) MLM checkpoint computed W h + 2b; loading reproduces it."""
    from m6abert.model import build_config, load_model, new_model

    torch.manual_seed(0)
    cfg = build_config("tiny", 3)
    cfg.hidden_size, cfg.intermediate_size = 32, 64
    orig = new_model(cfg, "mlm").eval()
    with torch.no_grad():
        orig.cls.predictions.bias.normal_()  # a visible bias
    state = {n: t.clone() for n, t in orig.state_dict().items()}
    if not with_decoder_bias:
        state.pop("cls.predictions.decoder.bias")
    state.update({"bert.pooler.dense.weight": torch.zeros(32, 32), "bert.pooler.dense.bias": torch.zeros(32)})
    folder = tmp_path / "dnabert"
    folder.mkdir()
    torch.save(state, folder / "pytorch_model.bin")
    config = {**{key: getattr(cfg, key) for key in ("vocab_size", "hidden_size", "num_hidden_layers",
                                                    "num_attention_heads", "intermediate_size", "hidden_act",
                                                    "max_position_embeddings", "type_vocab_size")},
              "architectures": ["BertForMaskedLM"], "finetuning_task": None, "num_labels": 2, "split": 10,
              "rnn": "lstm", "num_rnn_layer": 1, "rnn_dropout": 0.0, "rnn_hidden": 768, "output_past": True}
    (folder / "config.json").write_text(json.dumps(config))
    loaded, k = load_model(str(folder), "mlm")
    assert k == 3
    b = orig.cls.predictions.bias.detach()
    assert torch.equal(loaded.cls.predictions.bias.detach(), 2 * b)
    ids = random_batch(3, 3, seed=1)
    with torch.no_grad():
        h = orig.cls.predictions.transform(orig.bert(ids).last_hidden_state)  # B, L, H
        expected = h @ orig.bert.embeddings.word_embeddings.weight.T + 2 * b  # B, L, V
        got = loaded.eval()(ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_evaluation_is_deterministic(tmp_path):
    from m6abert.model import build_config, new_model

    torch.manual_seed(0)
    path = periodic_corpus(tmp_path / "e.txt", 40)
    data = KmerDataset(load_corpus(path))
    model = new_model(build_config("tiny", 3), "mlm")
    r1, r2 = (evaluate(model, data, SpanMaskingCollator(3, 69, seed=9), 16, verbose=False) for _ in range(2))
    assert r1 == r2 and r1.n_masked > 0 and 0 <= r1.masked_accuracy <= 1
    assert abs(r1.perplexity - np.exp(r1.loss)) < 1e-9
    assert r1.perplexity > 30  # an untrained model is close to uniform over 69 tokens
    r3 = evaluate(model, data, SpanMaskingCollator(3, 69, seed=10), 16, verbose=False)
    assert r3.n_masked != r1.n_masked or r3.loss != r1.loss


# ---------------------------------------------------------------------------- run_pretrain.py
def periodic_corpus(path: Path, n: int, length: int = 40, k: int = 3, period: int = 3, seed: int = 0) -> Path:
    """Sequences that repeat a random ``period``-nt unit: every masked k-mer is predictable."""
    rng = np.random.RandomState(seed)
    lines = []
    for _ in range(n):
        unit = "".join(rng.choice(list("ACGT"), period))
        lines.append(seq2kmer((unit * (length // period + 1))[:length], k))
    io.write_lines(path, lines)
    return path


FAST = ["--model_type", "dna", "--line_by_line", "--mlm", "--config_name", "tiny", "--per_gpu_train_batch_size",
        "16", "--per_gpu_eval_batch_size", "64", "--learning_rate", "5e-3", "--seed", "7", "--do_train", "--do_eval"]


@pytest.fixture
def corpora(tmp_path) -> tuple[Path, Path]:
    return periodic_corpus(tmp_path / "train.txt", 40, seed=1), periodic_corpus(tmp_path / "eval.txt", 32, seed=2)


def pretrain(train: Path, eval_: Path, out: Path, *extra: str) -> dict:
    return run_guarded(rp_cli.run, [*FAST, "--train_data_file", str(train), "--eval_data_file", str(eval_),
                    "--output_dir", str(out), *extra])


def perplexities(out: Path) -> list[float]:
    return [float(line) for line in (out / "eval_results.txt").read_text().splitlines()]


def test_pretraining_learns_a_structured_corpus(tmp_path):
    """Perplexity falls from about the vocabulary size (69, uniform) far below it (~10 s)."""
    steps = 250
    train = periodic_corpus(tmp_path / "train.txt", 400, seed=1)
    eval_ = periodic_corpus(tmp_path / "eval.txt", 64, seed=2)
    out = tmp_path / "out"
    res = pretrain(train, eval_, out, "--max_steps", str(steps), "--logging_steps", str(steps // 2),
                   "--save_steps", str(steps), "--evaluate_during_training")
    ppl = perplexities(out)
    assert len(ppl) == 3 and ppl[1] == ppl[2] == res["eval_perplexity"]  # last eval == final eval
    before = evaluate_untrained(eval_)
    assert before > 40
    assert ppl[-1] < ppl[0] < before and ppl[-1] < 69 / 5, (before, ppl)  # 69.7 -> 7.8 -> 6.4
    records = [json.loads(line) for line in (out / "eval_results.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [steps // 2, steps]
    assert {"eval_perplexity", "eval_loss", "eval_masked_accuracy", "loss", "learning_rate"} <= set(records[0])
    assert records[-1]["eval_masked_accuracy"] > records[0]["eval_masked_accuracy"] - 0.05
    args = json.loads((out / "pretrain_args.json").read_text())
    assert args["k"] == 3 and args["mlm_probability"] == default_mlm_probability(3) and args["block_size"] == 512
    assert (out / f"checkpoint-{steps}" / "optimizer.pt").exists() and (out / "model.safetensors").exists()
    assert res["global_step"] == steps and not list(out.rglob("*.bin"))


def evaluate_untrained(eval_path: Path) -> float:
    from m6abert.model import build_config, new_model

    torch.manual_seed(7)
    model = new_model(build_config("tiny", 3), "mlm")
    data = KmerDataset(load_corpus(eval_path))
    return evaluate(model, data, SpanMaskingCollator(3, 69, seed=7), 64, verbose=False).perplexity


def test_resume_ends_identical_to_an_uninterrupted_run(tmp_path, corpora):
    full, part = tmp_path / "full", tmp_path / "part"
    extra = ["--max_steps", "6", "--save_steps", "2", "--logging_steps", "2", "--evaluate_during_training"]
    pretrain(*corpora, full, *extra)  # 3 batches per epoch: 2 epochs
    part.mkdir()  # the interrupted run: only checkpoint-4 (mid-epoch) survived
    shutil.copytree(full / "checkpoint-4", part / "checkpoint-4")
    res = pretrain(*corpora, part, *extra, "--should_continue")
    a, b = load_file(full / "model.safetensors"), load_file(part / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    for name in ("eval_results.txt", "eval_results.jsonl"):
        assert (full / name).read_bytes() == (part / name).read_bytes()
    assert len(perplexities(part)) == 4 and res["global_step"] == 6


def test_pretrained_model_fine_tunes(tmp_path, corpora):
    """The final folder of run_pretrain.py is a --model_name_or_path of run_finetune_degradation.py."""
    from m6abert.model import load_model

    pre = tmp_path / "pre"
    pretrain(*corpora, pre, "--max_steps", "3", "--tokenizer_name", "dna3", "--save_steps", "0")
    data = write_split_dir(tmp_path / "data", k=3, n=16)
    out = tmp_path / "ft"
    res = run_guarded(ft_cli.run, ["--model_type", "dna", "--tokenizer_name", "dna3", "--task_name", "dnaprom", "--model_name_or_path",
                   str(pre), "--do_train", "--do_eval", "--data_dir", str(data), "--output_dir", str(out),
                   "--max_seq_length", "64", "--per_gpu_train_batch_size", "8", "--max_steps", "2",
                   "--save_steps", "0", "--logging_steps", "0"])
    assert "eval_auc" in res and (out / "model.safetensors").exists()
    clf, k = load_model(str(pre), "classification")
    pre_w = load_file(pre / "model.safetensors")
    assert k == 3 and torch.equal(clf.bert.embeddings.word_embeddings.weight, pre_w["bert.embeddings.word_embeddings.weight"])


def test_fasta_input_and_dnabert_compat(tmp_path):
    rng = np.random.RandomState(0)
    recs = ["".join(rng.choice(list("ACGU"), rng.randint(20, 40))) for _ in range(24)]
    fa = tmp_path / "p.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(recs)))
    out = tmp_path / "o"
    res = run_guarded(rp_cli.run, [*FAST, "--train_fasta", str(fa), "--eval_fasta", str(fa), "--tokenizer_name", "dna4",
                   "--output_dir", str(out), "--max_steps", "2", "--dnabert_compat", "--mlm_probability", "0.1"])
    assert res["k"] == 4 and res["mlm_probability"] == 0.1 and np.isfinite(res["eval_perplexity"])
    assert json.loads((out / "config.json").read_text())["vocab_size"] == 261
    # evaluation only (--do_eval without --do_train) of the saved model appends one more perplexity
    res2 = run_guarded(rp_cli.run, ["--eval_fasta", str(fa), "--do_eval", "--output_dir", str(out), "--mlm_probability", "0.1",
                    "--seed", "7", "--dnabert_compat", "--per_gpu_eval_batch_size", "64"])
    assert perplexities(out) == [res["eval_perplexity"], res2["eval_perplexity"]]


def test_get_input_corpus_with_the_dnabert_readme_flags(tmp_path):
    """get_input.py --task pretrain --do_val, then DNABERT's README command (small numbers)."""
    import get_input

    rng = np.random.RandomState(0)
    units = ["".join(rng.choice(list("ACGT"), 3)) for _ in range(80)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pretrain.fa").write_text("".join(f">r{i}\n{(u * 20)[:60]}\n" for i, u in enumerate(units)))
    get_input.main(["--task", "pretrain", "--kmer", "3", "--extend_len", "250", "--do_val",
                    "--data_dir", str(tmp_path / "data"), "--save_dir", str(tmp_path / "inp")])
    cfg = tmp_path / "config.json"  # a DNABERT-style config.json, extra keys included
    cfg.write_text(json.dumps({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                               "intermediate_size": 64, "max_position_embeddings": 512, "vocab_size": 69,
                               "split": 10, "rnn": "lstm", "num_rnn_layer": 1, "architectures": ["BertForMaskedLM"]}))
    out = tmp_path / "out"
    res = run_guarded(rp_cli.run, [
        "--output_dir", str(out), "--model_type=dna", "--tokenizer_name=dna3", f"--config_name={cfg}", "--do_train",
        f"--train_data_file={tmp_path / 'inp' / 'pre' / '3_train.txt'}", "--do_eval",
        f"--eval_data_file={tmp_path / 'inp' / 'pre' / '3_val.txt'}", "--mlm", "--gradient_accumulation_steps", "2",
        "--per_gpu_train_batch_size", "10", "--per_gpu_eval_batch_size", "6", "--save_steps", "2",
        "--save_total_limit", "2", "--max_steps", "6", "--evaluate_during_training", "--logging_steps", "2",
        "--line_by_line", "--learning_rate", "4e-4", "--block_size", "512", "--adam_epsilon", "1e-6",
        "--weight_decay", "0.01", "--beta1", "0.9", "--beta2", "0.98", "--mlm_probability", "0.025",
        "--warmup_steps", "2", "--overwrite_output_dir", "--n_process", "24"])
    assert res["global_step"] == 6 and res["mlm_probability"] == 0.025
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    ppl = perplexities(out)
    assert len(ppl) == 4 and all(np.isfinite(ppl))
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 32


def test_non_empty_output_dir_needs_overwrite(tmp_path, corpora):
    out = tmp_path / "o"
    pretrain(*corpora, out, "--max_steps", "2", "--save_steps", "1")
    with pytest.raises(SystemExit) as err:
        pretrain(*corpora, out, "--max_steps", "2")
    assert err.value.code == 2
    pretrain(*corpora, out, "--max_steps", "1", "--overwrite_output_dir", "--save_steps", "0")
    assert not list(out.glob("checkpoint-*")) and len(perplexities(out)) == 1
    # --should_continue without a checkpoint starts afresh (a job killed before its first save)
    (out / ".checkpoint-1.m6abert-abc.tmp").mkdir()  # the toolkit's temporary name: removed
    (out / ".checkpoint-1.abc.tmp").mkdir()  # not the toolkit's (no tag): left alone
    io.write_text(out / "eval_results.txt", "stale line\n")
    pretrain(*corpora, out, "--max_steps", "1", "--should_continue", "--save_steps", "0")
    assert len(perplexities(out)) == 1
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".checkpoint-1.abc.tmp"]


# ---------------------------------------------------------------------------- DDP
def test_ddp_two_cpu_processes(tmp_path, corpora):
    out = tmp_path / "o"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29547",
         "run_pretrain.py", *FAST, "--train_data_file", str(corpora[0]), "--eval_data_file", str(corpora[1]),
         "--output_dir", str(out), "--max_steps", "4", "--save_steps", "2", "--logging_steps", "2",
         "--evaluate_during_training"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "all_results.json").read_text())
    assert res["world_size"] == 2 and res["ddp_weights_identical"] is True
    assert res["global_step"] == 4 and len(perplexities(out)) == 3
    assert (out / "checkpoint-4" / "model.safetensors").exists()
