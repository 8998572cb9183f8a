"""m6abert.kmer: DNABERT's vocabulary, k-merising and id encoding, checked by invariants."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from m6abert import io, kmer

KS = [3, 4, 5, 6]


def naive_ids(seq: str, k: int) -> list[int]:
    """The obvious per-k-mer dictionary lookup that ``encode_many`` must equal."""
    table = {tok: i for i, tok in enumerate(kmer.vocab(k))}
    seq = seq.upper().replace("U", "T")
    return [table.get(seq[i : i + k], kmer.UNK_ID) for i in range(len(seq) - k + 1)]


def random_seqs(rng: np.random.RandomState, k: int, n: int = 60, alphabet: str = "ACGT") -> list[str]:
    """Sequences of varied lengths, including empty and shorter-than-k ones."""
    lengths = list(range(0, k + 2)) + list(rng.randint(0, 80, size=n))
    letters = np.array(list(alphabet))
    return ["".join(rng.choice(letters, size=n_)) for n_ in lengths]


# ---------------------------------------------------------------------------- vocabulary
@pytest.mark.parametrize("k, size", [(3, 69), (4, 261), (5, 1029), (6, 4101)])
def test_vocab_size(k, size):
    assert len(kmer.vocab(k)) == size
    assert kmer.k_from_vocab_size(size) == k


@pytest.mark.parametrize("k", KS)
def test_vocab_is_dnabert_order(k):
    expected = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    expected += ["".join(p) for p in itertools.product("ATCG", repeat=k)]
    assert kmer.vocab(k) == expected
    assert len(set(expected)) == len(expected)


@pytest.mark.parametrize("k", KS)
def test_id_formula(k):
    digit = {"A": 0, "T": 1, "C": 2, "G": 3}
    voc = kmer.vocab(k)
    rng = np.random.RandomState(k)
    for _ in range(50):
        km = "".join(rng.choice(list("ACGT"), size=k))
        expected = 5 + sum(digit[b] * 4 ** (k - 1 - i) for i, b in enumerate(km))
        assert voc[expected] == km
        assert kmer.encode(km, k).tolist() == [expected]
    assert kmer.encode("A" * k, k).tolist() == [5]
    assert kmer.encode("G" * k, k).tolist() == [4**k + 4]


@pytest.mark.parametrize("km, k, expected", [("CAT", 3, 38), ("AAA", 3, 5), ("AAT", 3, 6), ("GGG", 3, 68),
                                             ("ATCGAT", 6, 438)])
def test_known_ids(km, k, expected):
    assert kmer.encode(km, k).tolist() == [expected]
    assert kmer.vocab(k)[expected] == km


@pytest.mark.parametrize("k", [0, 1, 2, 7, 8])
def test_unsupported_k(k):
    with pytest.raises(ValueError, match="3, 4, 5, 6"):
        kmer.vocab(k)
    with pytest.raises(ValueError):
        kmer.encode_many(["ACGTACGT"], k)


def test_k_from_bad_vocab_size():
    with pytest.raises(ValueError):
        kmer.k_from_vocab_size(100)


# ---------------------------------------------------------------------------- k-mer sentences
@pytest.mark.parametrize("k", KS)
def test_seq2kmer_count_and_roundtrip(k):
    rng = np.random.RandomState(100 + k)
    for n in [k, k + 1, 17, 501]:
        seq = "".join(rng.choice(list("ACGT"), size=n))
        kms = kmer.seq2kmer(seq, k).split(" ")
        assert len(kms) == n - k + 1
        assert all(len(km) == k for km in kms)
        assert kms == [seq[i : i + k] for i in range(n - k + 1)]
        assert kmer.kmer2seq(kmer.seq2kmer(seq, k)) == seq
        assert kmer.kmer2seq(kms) == seq
        assert kmer.sentence_k(kmer.seq2kmer(seq, k)) == k


@pytest.mark.parametrize("k", KS)
def test_seq2kmer_format(k):
    s = kmer.seq2kmer("ACGTACGTAC", k)
    assert not s.startswith(" ") and not s.endswith(" ") and "  " not in s


@pytest.mark.parametrize("k", KS)
def test_short_sequence_gives_no_kmers(k):
    assert kmer.seq2kmer("A" * (k - 1), k) == ""
    assert kmer.encode("A" * (k - 1), k).tolist() == []
    assert kmer.kmer2seq("") == ""
    assert kmer.sentence_k("") is None


@pytest.mark.parametrize("k", KS)
def test_u_read_as_t_and_lower_case(k):
    rng = np.random.RandomState(200 + k)
    dna = "".join(rng.choice(list("ACGT"), size=40))
    rna = dna.replace("T", "U")
    assert kmer.seq2kmer(rna, k) == kmer.seq2kmer(dna, k)
    assert kmer.seq2kmer(rna.lower(), k) == kmer.seq2kmer(dna, k)
    assert kmer.encode(rna, k).tolist() == kmer.encode(dna, k).tolist()
    assert kmer.encode(rna.lower(), k).tolist() == kmer.encode(dna, k).tolist()
    assert kmer.UNK_ID not in kmer.encode(rna, k).tolist()


@pytest.mark.parametrize("k", KS)
def test_n_kmers_are_unk(k):
    seq = "ACGTACGTAC" + "N" + "ACGTACGTAC"  # N at index 10
    enc = kmer.encode_many([seq], k)
    ids = enc.ids.tolist()
    assert len(ids) == len(seq) - k + 1
    for i, tok in enumerate(ids):
        covers_n = i <= 10 < i + k
        assert (tok == kmer.UNK_ID) == covers_n, (i, tok)
    assert enc.n_unknown == k


# ---------------------------------------------------------------------------- bulk encoding
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("alphabet", ["ACGT", "ACGTUNacgtun"])
def test_encode_many_equals_naive_lookup(k, alphabet):
    rng = np.random.RandomState(k)
    seqs = random_seqs(rng, k, alphabet=alphabet)
    enc = kmer.encode_many(seqs, k)
    assert len(enc) == len(seqs)
    assert enc.ids.dtype == np.int64 and enc.offsets.dtype == np.int64
    assert enc.offsets[0] == 0 and enc.offsets[-1] == len(enc.ids)
    n_unk = 0
    for i, s in enumerate(seqs):
        expected = naive_ids(s, k)
        assert enc.row(i).tolist() == expected, (i, s)
        n_unk += expected.count(kmer.UNK_ID)
    assert enc.n_unknown == n_unk


@pytest.mark.parametrize("k", KS)
def test_encode_many_edge_cases(k):
    empty = kmer.encode_many([], k)
    assert len(empty) == 0 and empty.ids.tolist() == [] and empty.n_unknown == 0
    short = kmer.encode_many(["A" * (k - 1), ""], k)
    assert len(short) == 2 and short.row(0).tolist() == [] and short.row(1).tolist() == []
    # a short sequence between two long ones must not shift the k-mers of the others
    seqs = ["ACGTTGCA", "GC", "TTTTTTTTG"]
    enc = kmer.encode_many(seqs, k)
    for i, s in enumerate(seqs):
        assert enc.row(i).tolist() == naive_ids(s, k)


@pytest.mark.parametrize("k", KS)
def test_encode_kmer_sentences_agrees_with_encode_many(k):
    rng = np.random.RandomState(300 + k)
    seqs = random_seqs(rng, k, alphabet="ACGTN")
    a = kmer.encode_many(seqs, k)
    b = kmer.encode_kmer_sentences([kmer.seq2kmer(s, k) for s in seqs], k)
    assert a.ids.tolist() == b.ids.tolist()
    assert a.offsets.tolist() == b.offsets.tolist()
    assert a.n_unknown == b.n_unknown


@pytest.mark.parametrize("k", KS)
def test_encode_kmer_sentences_looks_tokens_up_whole(k):
    good = "A" * k
    enc = kmer.encode_kmer_sentences([f"{good} {good.lower()} {good}A {'N' * k}"], k)
    assert enc.ids.tolist() == [5, kmer.UNK_ID, kmer.UNK_ID, kmer.UNK_ID]
    assert enc.n_unknown == 3


# ---------------------------------------------------------------------------- parity with the original
def test_vocab_matches_fixture_vocab_file(k3_fixture):
    lines = [ln.rstrip("\n") for ln in (k3_fixture / "ckpt" / "vocab.txt").open(encoding="utf-8")]
    assert lines == kmer.vocab(3)


def test_fixture_input_ids_match(k3_fixture):
    tsv = io.read_tsv(k3_fixture / "inputs.tsv")
    input_ids = np.load(k3_fixture / "input_ids.npy")
    assert input_ids.shape[0] == len(tsv.sentences)
    enc = kmer.encode_kmer_sentences(tsv.sentences, 3)
    assert enc.n_unknown == 0
    for i, row in enumerate(input_ids):
        assert row[0] == kmer.CLS_ID
        n = int((row != kmer.PAD_ID).sum())
        assert row[n - 1] == kmer.SEP_ID and (row[n:] == kmer.PAD_ID).all()
        assert row[1 : n - 1].tolist() == enc.row(i).tolist()


@pytest.mark.parametrize("k", KS)
def test_hf_tokenizer_from_written_files(tmp_path, k):
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / f"tok{k}"
    io.write_tokenizer_files(folder, k)
    lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines == kmer.vocab(k)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["do_lower_case"] is False and config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert config["model_max_length"] == 512 and config["max_len"] == 512
    special = json.loads((folder / "special_tokens_map.json").read_text(encoding="utf-8"))
    assert special == {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                       "cls_token": "[CLS]", "mask_token": "[MASK]"}
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    rng = np.random.RandomState(400 + k)
    seqs = ["".join(rng.choice(list("ACGT"), size=n)) for n in (k, 30, 120)] + ["ACGTNACGTACGTAC"]
    for s in seqs:
        expected = [kmer.CLS_ID] + kmer.encode(s, k).tolist() + [kmer.SEP_ID]
        assert tok(kmer.seq2kmer(s, k))["input_ids"] == expected
    assert tok.pad_token_id == kmer.PAD_ID and tok.mask_token_id == kmer.MASK_ID
    assert len(tok) == len(kmer.vocab(k))
