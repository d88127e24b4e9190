"""The word2vec lecture demo: skip-gram vectors trained on Shakespeare in seconds, then analogies.

    word2vec-shakespeare   the fast Numba trainer (skip-gram, negative sampling) on the 38 plays;
                           prints neighbours and a few analogies (3CosAdd and 3CosMul), shows that
                           "king" comes back when the query words are not excluded, writes the
                           vectors (word2vec text format) as vectors.txt.
"""
from __future__ import annotations

from pathlib import Path

from ..tour import register

# man : woman :: king : ?   (a, a*, b, expected b*)
ANALOGIES = [
    ("man", "woman", "king", "queen"),
    ("he", "she", "his", "her"),
    ("father", "mother", "son", "daughter"),
    ("lord", "lady", "king", "queen"),
    ("brother", "sister", "father", "mother"),
]


@register("word2vec-shakespeare")
def word2vec_step(out_dir: Path, quick: bool) -> str:
    from embeddings import FastWord2Vec, Vocab, shakespeare_sentences, solve_analogy

    sentences = shakespeare_sentences()
    vocab = Vocab.build(sentences, min_count=5)
    epochs = 2 if quick else 5
    model = FastWord2Vec(vocab, dim=64 if quick else 100, window=5, negative=5, sample=1e-3, workers=2)
    stats = model.train(sentences, epochs=epochs)
    kv = model.vectors()
    print(f"{vocab.total:,} words x {epochs} epochs in {stats.seconds:.1f} s "
          f"({stats.words_per_second:,.0f} words/s); loss {stats.losses[0]:.3f} -> {stats.losses[-1]:.3f}")
    for w in ("king", "love", "sword", "night"):
        print(f"  {w:>6s}: " + ", ".join(n for n, _ in kv.most_similar(w, 6)))
    solved = 0
    for a, a_star, b, expected in ANALOGIES:
        add = solve_analogy(kv, a, a_star, b, "3cosadd", topn=3)
        mul = solve_analogy(kv, a, a_star, b, "3cosmul", topn=1)[0][0]
        raw = solve_analogy(kv, a, a_star, b, "3cosadd", exclude_query=False)[0][0]
        solved += add[0][0] == expected
        print(f"  {a} : {a_star} :: {b} : ?   3CosAdd {', '.join(w for w, _ in add)} | 3CosMul {mul} | "
              f"query words not excluded: {raw}")
    print("(without excluding the query words the answer is often one of them: king - man + woman is "
          "still closest to king)")
    kv.save_word2vec_format(out_dir / "vectors.txt")
    return f"{stats.words_per_second:,.0f} words/s, {solved}/{len(ANALOGIES)} analogies right (3CosAdd top-1)"
