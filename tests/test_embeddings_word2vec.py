"""word2vec: vocabulary statistics, the engine losses (gradient-checked), the Numba trainer (same
SGD step as the engine to 1e-6), the vectors file format and the analogy / similarity evaluation."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_lite as tg
from embeddings import (
    EngineWord2Vec,
    FastWord2Vec,
    VectorsFormatError,
    Vocab,
    WordVectors,
    cbow_loss,
    keep_probability,
    paper_keep_probability,
    sgd_step,
    sgns_loss,
    skipgram_pairs,
    text_to_sentences,
    tokenize,
)
from embeddings.evaluate import evaluate_analogies, evaluate_similarity, query_word_hits, solve_analogy, spearman

numba = pytest.importorskip("numba")


def test_tokenize_and_sentences():
    assert tokenize("Draws on apace; O, methinks O'er-hasty I'll") == ["draws", "on", "apace", "o", "methinks",
                                                                    "o'er", "hasty", "i'll"]
    text = "HAMLET:\nTo be, or not\nto be.\n\nFIRST LORD:\nMy lord!\n\n"
    assert text_to_sentences(text) == [["to", "be", "or", "not", "to", "be"], ["my", "lord"]]


def test_vocab_min_count_order_and_encode():
    sents = [["b", "a", "a", "c"], ["a", "b", "d"], ["d"]]
    v = Vocab.build(sents, min_count=2)
    assert v.words == ["a", "b", "d"] and v.counts.tolist() == [3, 2, 2]  # ties alphabetical; c dropped
    ids, offsets = v.encode(sents + [["c"]])
    assert ids.tolist() == [1, 0, 0, 0, 1, 2, 2] and offsets.tolist() == [0, 3, 6, 7]  # all-OOV sentence gone
    with pytest.raises(ValueError, match="min_count"):
        Vocab.build(sents, min_count=10)


def test_keep_probability_reference_formula_not_the_papers():
    s = 1e-3
    f = np.array([s, 2.6 * s, 100 * s, 0.5])
    keep = keep_probability(f, s)
    assert keep[0] == 1.0 and keep[1] == 1.0  # the code keeps every word with f <= s·(1+√5)/2
    np.testing.assert_allclose(keep[2], (10 + 1) / 100)  # (sqrt(f/s)+1)·s/f
    np.testing.assert_allclose(keep[3], (np.sqrt(500) + 1) / 500)
    np.testing.assert_allclose(paper_keep_probability(f, s)[2], 0.1)  # the paper: sqrt(t/f)
    assert (keep_probability(f, 0) == 1).all()


def test_noise_distribution_is_unigram_to_the_three_quarters():
    v = Vocab(["a", "b", "c"], np.array([16, 1, 81]))
    p = v.noise_distribution()
    np.testing.assert_allclose(p, np.array([8, 1, 27]) / 36)
    table = v.noise_table(1 << 16)
    np.testing.assert_allclose(np.bincount(table, minlength=3) / len(table), p, atol=1e-4)


def test_alias_table_is_exact():
    v = Vocab([f"w{i}" for i in range(50)], np.random.default_rng(0).integers(5, 5000, 50))
    prob, alias = v.alias_table()
    V = len(v)
    # P(i) = (prob[i] + Σ_{j: alias[j] = i} (1 - prob[j])) / V
    implied = (prob + np.bincount(alias, weights=1 - prob, minlength=V)) / V
    np.testing.assert_allclose(implied, v.noise_distribution(), atol=1e-12)


def test_shrinking_window_is_uniform():
    rng = np.random.default_rng(0)
    sent = np.arange(1000)
    pairs = skipgram_pairs(sent, 5, rng)
    per_center = np.bincount(pairs[:, 0], minlength=1000)[10:-10]  # away from the ends: 2b pairs
    assert set(np.unique(per_center // 2)) == {1, 2, 3, 4, 5}
    assert abs(per_center.mean() - 6.0) < 0.3  # E[2b] = window + 1


def _tensors(V=7, D=4, seed=0):
    gen = tg.Generator(seed)
    return (tg.Tensor(gen.normal((V, D), np.float64), requires_grad=True),
            tg.Tensor(gen.normal((V, D), np.float64), requires_grad=True))


def test_sgns_loss_gradcheck_and_value():
    W_in, W_out = _tensors()
    centers, contexts = np.array([0, 3, 3]), np.array([1, 2, 5])
    negatives = np.array([[4, 1, 6], [2, 0, 0], [5, 1, 2]])  # row 1 and 2 contain the positive: masked
    assert tg.gradcheck(lambda a, b: sgns_loss(a, b, centers, contexts, negatives), (W_in, W_out))
    A, B = W_in.numpy(), W_out.numpy()
    ls = lambda x: -np.log1p(np.exp(-x))  # noqa: E731
    ref = 0.0
    for c, o, negs in zip(centers, contexts, negatives):
        ref -= ls(A[c] @ B[o]) + sum(ls(-A[c] @ B[n]) for n in negs if n != o)
    np.testing.assert_allclose(sgns_loss(W_in, W_out, centers, contexts, negatives).item(), ref, rtol=1e-12)


def test_cbow_loss_gradcheck():
    W_in, W_out = _tensors()
    ctx = np.array([[1, 2, 2, 0], [4, 5, 0, 0]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    centers, negatives = np.array([3, 6]), np.array([[0, 5], [1, 6]])
    assert tg.gradcheck(lambda a, b: cbow_loss(a, b, ctx, mask, centers, negatives), (W_in, W_out))


def _fast(V, D, model, seed=3):
    m = FastWord2Vec(Vocab([f"w{i}" for i in range(V)], np.arange(V, 0, -1) + 5), dim=D, model=model,
                     workers=1, dtype=np.float64)
    gen = np.random.default_rng(seed)
    m.W_in[:] = gen.normal(size=(V, D)) * 0.5
    m.W_out[:] = gen.normal(size=(V, D)) * 0.5
    return m


def test_one_sgd_step_engine_equals_numba_skipgram():
    m = _fast(20, 8, "sg")
    # pairs touching distinct rows: sequential (Numba) and simultaneous (engine) updates coincide
    centers, contexts = np.array([0, 1, 2]), np.array([3, 4, 5])
    negatives = np.array([[6, 7, 8], [9, 10, 11], [12, 13, 14]])
    lr = 0.05
    new_in, new_out, loss = sgd_step(m.W_in.copy(), m.W_out.copy(), lr, "sg", centers=centers,
                                     contexts=contexts, negatives=negatives)
    fast_loss = m.sgd_step_sg(centers, contexts, negatives, lr)
    assert np.abs(new_in - m.W_in).max() < 1e-6 and np.abs(new_out - m.W_out).max() < 1e-6
    assert abs(loss - fast_loss) < 1e-6
    assert np.abs(new_in[:3] - _fast(20, 8, "sg").W_in[:3]).max() > 1e-3  # the step did move them


def test_one_sgd_step_engine_equals_numba_cbow():
    m = _fast(20, 8, "cbow")
    ctx = np.array([[0, 1, 2, 2], [3, 4, 0, 0]])  # a repeated context word counts twice
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    centers, negatives = np.array([10, 11]), np.array([[12, 13], [14, 15]])
    lr = 0.05
    new_in, new_out, loss = sgd_step(m.W_in.copy(), m.W_out.copy(), lr, "cbow", contexts=ctx,
                                     context_mask=mask, centers=centers, negatives=negatives)
    fast_loss = m.sgd_step_cbow(ctx, mask, centers, negatives, lr)
    assert np.abs(new_in - m.W_in).max() < 1e-6 and np.abs(new_out - m.W_out).max() < 1e-6
    assert abs(loss - fast_loss) < 1e-6


def _topic_corpus(n=400, seed=0):
    """Two topics with disjoint words: a word's neighbours should come from its own topic."""
    rng = np.random.default_rng(seed)
    topics = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]]
    return [list(rng.choice(topics[k % 2], 12)) for k in range(n)]


def _topic_separation(kv):
    sims = kv.unit() @ kv.unit().T
    a = np.array([w.startswith("a") for w in kv.words])
    return sims[a][:, a].mean() - sims[a][:, ~a].mean()


@pytest.mark.parametrize("model", ["sg", "cbow"])
def test_fast_trainer_learns_topics(model):
    sents = _topic_corpus()
    m = FastWord2Vec(Vocab.build(sents, 1), dim=16, window=3, negative=3, sample=0, model=model, workers=2)
    stats = m.train(sents, epochs=3, chunks_per_epoch=4)
    assert stats.words == 3 * 400 * 12 and stats.losses[-1] < stats.losses[0]
    assert _topic_separation(m.vectors()) > 0.5


def test_fast_trainer_rejects_an_empty_corpus():
    m = FastWord2Vec(Vocab(["a"], np.array([5])), dim=4, workers=1)
    with pytest.raises(ValueError, match="no in-vocabulary words"):
        m.train([["zzz"]], epochs=1)


def test_fast_trainer_window_and_subsampling_counts():
    sents = [[f"w{i % 50}" for i in range(2000)]]
    v = Vocab.build(sents, 1)
    m = FastWord2Vec(v, dim=4, window=5, negative=1, sample=0, workers=1)
    stats = m.train(sents, epochs=1, chunks_per_epoch=1)
    assert abs(stats.examples / 2000 - 6.0) < 0.3  # 2b pairs per word, b uniform on [1, 5]
    m = FastWord2Vec(v, dim=4, window=5, negative=1, sample=1e-3, workers=1)  # f = 0.02 = 20 s
    stats = m.train(sents, epochs=1, chunks_per_epoch=1)
    kept = keep_probability(np.array([0.02]), 1e-3)[0]
    # about kept·2000 words survive; each has ~6 pairs, fewer near the (now closer) neighbours' ends
    assert abs(stats.examples / (6.0 * 2000 * kept) - 1) < 0.15


@pytest.mark.parametrize("model", ["sg", "cbow"])
def test_engine_trainer_learns_topics(model):
    sents = _topic_corpus(120)
    m = EngineWord2Vec(Vocab.build(sents, 1), dim=8, window=3, negative=3, sample=0, seed=0, model=model)
    losses = m.train(sents, epochs=3, batch_size=64, lr_start=0.1)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert _topic_separation(WordVectors(m.vocab.words, m.W_in)) > 0.3


def test_fast_trainer_without_numba_names_the_extra(monkeypatch):
    import sys

    from embeddings import word2vec_fast

    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install -e "\.\[fast\]"'):
        word2vec_fast.kernels()


def test_word2vec_text_format_roundtrip(tmp_path):
    kv = WordVectors(["the", "o'er", "king"], np.arange(12, dtype=np.float32).reshape(3, 4) / 7)
    path = kv.save_word2vec_format(tmp_path / "v.txt")
    back = WordVectors.load_word2vec_format(path)
    assert back.words == kv.words and np.allclose(back.vectors, kv.vectors, atol=1e-5)
    assert not list(tmp_path.glob(".*tmp"))
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")  # drop the last line
    with pytest.raises(VectorsFormatError, match="truncated"):
        WordVectors.load_word2vec_format(path)


def _awkward_vectors():
    """Words in several scripts; floats over float32's whole range (subnormals, extremes, -0.0)."""
    rng = np.random.default_rng(3)
    v = (rng.standard_normal((40, 7)) * 10.0 ** rng.integers(-40, 38, (40, 7))).astype(np.float32)
    v[0] = [np.finfo(np.float32).max, -np.finfo(np.float32).tiny, 1e-45, -0.0, 1 / 3, 0.1, 1e-7]
    words = ["the", "o'er", "king", "café", "Zürich", "王", "ποιητής", "x-17"] + [f"w{i}" for i in range(32)]
    return WordVectors(words, v)


@pytest.mark.parametrize("name, binary", [("v.txt", None), ("v.bin", None), ("v.vec", True), ("v.bin", False)])
def test_word2vec_formats_roundtrip_float32_exactly(tmp_path, name, binary):
    kv = _awkward_vectors()
    path = kv.save_word2vec_format(tmp_path / name, binary=binary)
    back = WordVectors.load_word2vec_format(path, binary=binary)
    assert back.words == kv.words and back.vectors.dtype == np.float32
    np.testing.assert_array_equal(back.vectors.view(np.uint32), kv.vectors.view(np.uint32))  # bit for bit
    assert [p.name for p in tmp_path.iterdir()] == [name]  # written atomically: no temporary file left
    data = path.read_bytes()
    assert data.startswith(b"40 7\n")
    if binary or (binary is None and name.endswith(".bin")):  # the C tool's record: word, space, 7 <f4, newline
        record = "café".encode() + b" " + kv["café"].astype("<f4").tobytes() + b"\n"
        assert record in data and len(data) == len(b"40 7\n") + sum(len(w.encode()) + 2 + 28 for w in kv.words)
    else:
        assert data.decode("utf-8").splitlines()[4].split(" ")[0] == "café" and len(data.splitlines()) == 41


def test_word2vec_readers_accept_the_c_tools_and_gensims_variants(tmp_path):
    text = tmp_path / "c.txt"  # the C tool ends each text line with a space
    text.write_text("2 3\nking 1 2 3 \nqueen 4 5 6 \n")
    assert WordVectors.load_word2vec_format(text).vectors.tolist() == [[1, 2, 3], [4, 5, 6]]
    rows = np.array([[1, 2, 3], [4, 5, 6]], "<f4")
    gensim_bin = tmp_path / "g.bin"  # gensim 4 writes binary records without the newline
    gensim_bin.write_bytes(b"2 3\nking " + rows[0].tobytes() + b"queen " + rows[1].tobytes())
    back = WordVectors.load_word2vec_format(gensim_bin)
    assert back.words == ["king", "queen"] and np.array_equal(back.vectors, rows)


def _good_text() -> str:
    return "2 3\nking 1 2 3\nqueen 4 5 6\n"


@pytest.mark.parametrize("text, message", [
    ("", "first line must be"),
    ("2\nking 1 2 3\n", "first line must be"),
    ("two 3\nking 1 2 3\n", "first line must be"),
    ("1 0\nking\n", "first line must be"),
    ("2 3\nking 1 2 3\nqueen 4 5\n", r":3: expected a word and 3 numbers, got 3 fields"),
    ("2 3\nking 1 2 3\nqueen 4 five 6\n", r":3: the vector of 'queen' has a field that is not a number"),
    ("2 3\nking 1 2 3\nking 4 5 6\n", "the word 'king' appears more than once"),
    ("1 3\nking 1 2 3\nqueen 4 5 6\n", ":3: header says 1 words, the file has more"),
    ("3 3\nking 1 2 3\nqueen 4 5 6\n", "truncated"),
    ("2 3\nking 1 2 3\n\nqueen 4 5 6\n", ":3: expected a word and 3 numbers, got 1 fields"),
    ("1000000000000 300\nking 1 2 3\n", "truncated"),  # a corrupt header fails before allocating anything
])
def test_word2vec_text_reader_rejects_malformed_files(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(VectorsFormatError, match=message):
        WordVectors.load_word2vec_format(path)
    assert issubclass(VectorsFormatError, ValueError)  # the CLI turns it into a one-line error


def test_word2vec_binary_reader_rejects_malformed_files(tmp_path):
    path = WordVectors(["king", "queen", "knight"], np.ones((3, 4), np.float32)).save_word2vec_format(
        tmp_path / "v.bin")
    good = path.read_bytes()

    def fails(data: bytes, message: str) -> None:
        path.write_bytes(data)
        with pytest.raises(VectorsFormatError, match=message):
            WordVectors.load_word2vec_format(path)

    fails(good[:-9], "truncated")                         # the last record cut short
    fails(good.replace(b"3 4\n", b"4 4\n", 1) + b"\x00" * 4, "ends inside word 4")
    fails(good + b"rogue " + bytes(16), "bytes after the 3 words")
    fails(good.replace(b"queen", b"\xff\xfeeen"), "word 2 at byte .* is not UTF-8")
    fails(good.replace(b"\nqueen ", b"\nqu\teen ", 1) + b"x", "malformed record")
    fails(good.replace(b"queen", b"king"), "the word 'king' appears more than once")
    fails(b"3 4 x\n" + good[4:], "first line must be")


def test_word2vec_writer_refuses_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        WordVectors(["two words", "x"], np.zeros((2, 2))).save_word2vec_format(tmp_path / "v.txt")
    with pytest.raises(ValueError, match="NaN or infinite"):
        WordVectors(["a", "b"], np.array([[0.0, 1.0], [np.nan, 0.0]])).save_word2vec_format(tmp_path / "v.bin")
    assert not list(tmp_path.iterdir())  # nothing written, not even a partial file


def _royal_vectors():
    rng = np.random.default_rng(0)
    basis = {k: rng.normal(size=50) for k in ["royal", "male", "female", "person", "x", "y", "own"]}
    vecs = {
        "king": 2 * basis["royal"] + basis["male"] + basis["person"],
        # real vectors are not exact parallelograms: queen has a direction of its own
        "queen": 2 * basis["royal"] + basis["female"] + basis["person"] + 2 * basis["own"],
        "man": basis["male"] + 2 * basis["person"],
        "woman": basis["female"] + 2 * basis["person"],
        "apple": basis["x"], "stone": basis["y"],
    }
    return WordVectors(list(vecs), np.stack(list(vecs.values())))


def test_analogies_and_the_query_word_effect():
    kv = _royal_vectors()
    for method in ("3cosadd", "3cosmul"):  # man : woman :: king : ?
        assert solve_analogy(kv, "man", "woman", "king", method)[0][0] == "queen"
    # without excluding the query words, king itself comes back (closest to king - man + woman)
    assert solve_analogy(kv, "man", "woman", "king", "3cosadd", exclude_query=False)[0][0] == "king"
    sections = {"family": [("man", "woman", "king", "queen"), ("woman", "man", "queen", "king"),
                           ("man", "woman", "boy", "girl")]}
    res = evaluate_analogies(kv, sections)
    assert res.sections == {"family": (2, 2)} and res.skipped == 1 and res.accuracy == 1.0
    assert evaluate_analogies(kv, sections, exclude_query=False).accuracy == 0.0
    assert query_word_hits(kv, sections)["b"] == 2


def test_spearman_and_similarity():
    pytest.importorskip("scipy")
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, 40).astype(float)
    y = x + rng.normal(size=40)
    assert abs(spearman(x, y) - spearmanr(x, y).statistic) < 1e-12
    kv = _royal_vectors()
    res = evaluate_similarity(kv, pairs=[("king", "queen", 7.0), ("man", "woman", 9.0), ("king", "apple", 1.0),
                                         ("zebra", "king", 3.0)])
    assert res.pairs == 3 and res.skipped == 1 and res.spearman > 0.9


def test_gensim_evaluation_files_are_read():
    pytest.importorskip("gensim")
    from embeddings.evaluate import gensim_test_data, read_analogies, read_similarity

    sections = read_analogies()
    assert len(sections) == 14 and sum(map(len, sections.values())) == 19544
    assert len(read_similarity(gensim_test_data("wordsim353.tsv"))) == 353
    assert len(read_similarity(gensim_test_data("simlex999.txt"))) == 999


def test_gensim_reads_our_vectors_file(tmp_path):
    gensim = pytest.importorskip("gensim")
    kv = _royal_vectors()
    path = kv.save_word2vec_format(tmp_path / "v.txt")
    g = gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=False)
    assert abs(g.similarity("king", "queen") - kv.similarity("king", "queen")) < 1e-4


@pytest.mark.parametrize("name, binary", [("v.txt", False), ("v.bin", True)])
def test_gensim_reads_our_text_and_binary_files_exactly(tmp_path, name, binary):
    """Optional oracle (skipped without gensim): gensim's reader gives our words and float32 bits."""
    gensim = pytest.importorskip("gensim")
    kv = _awkward_vectors()
    path = kv.save_word2vec_format(tmp_path / name)
    g = gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert list(g.index_to_key) == kv.words
    np.testing.assert_array_equal(g.vectors.astype(np.float32).view(np.uint32), kv.vectors.view(np.uint32))
    again = tmp_path / ("gensim_" + name)  # and we read what gensim writes
    g.save_word2vec_format(str(again), binary=binary)
    np.testing.assert_array_equal(WordVectors.load_word2vec_format(again).vectors, kv.vectors)
