"""embeddings: word2vec (skip-gram / CBOW with negative sampling) on the engine and in Numba, its
evaluation, semantic search (k-NN, BM25, hybrid) and the geometry of embedding spaces.
Uses nn and tinygrad_lite; nothing below imports it.

    from embeddings import FastWord2Vec, Vocab, shakespeare_sentences, evaluate_analogies
    sents = shakespeare_sentences()
    model = FastWord2Vec(Vocab.build(sents, min_count=5), dim=100, workers=2)
    model.train(sents, epochs=5)
    table = evaluate_analogies(model.vectors()).table()   # a text table, to print or display
"""
from .bert import BertConfig, BertEncoder, encode, load_minilm, negation_demo
from .corpus import shakespeare_sentences, text_to_sentences, tokenize
from .evaluate import (
    AnalogyResult,
    SimilarityResult,
    analogy_scores,
    evaluate_analogies,
    evaluate_similarity,
    gensim_test_data,
    pearson,
    query_word_hits,
    read_analogies,
    read_similarity,
    solve_analogy,
    spearman,
)
from .geometry import (
    anisotropy,
    concentration,
    concentration_vs_dimension,
    dimension_contributions,
    hubness,
    k_occurrence,
    load_glove_50d,
    pair_cosines,
    rogue_share,
    skewness,
)
from .plots import plot_k_occurrence, plot_word_pca
from .remedies import (
    all_but_the_top,
    center,
    csls_neighbours,
    csls_scores,
    fit_whitening,
    whiten,
    whitening_sample_study,
)
from .retrieval_benchmark import build_benchmark, format_results, mean_vectors, run_benchmark, train_benchmark_vectors
from .search import BM25, bm25_idf, bm25_term_weight, knn, ndcg_at_k, normalize, recall_at_k, reciprocal_rank, rrf
from .vectors import VectorsFormatError, WordVectors
from .vocab import Vocab, keep_probability, paper_keep_probability
from .word2vec_engine import EngineWord2Vec, cbow_loss, sgd_step, sgns_loss, skipgram_pairs
from .word2vec_fast import FastWord2Vec, TrainStats

__all__ = [
    "tokenize", "text_to_sentences", "shakespeare_sentences", "Vocab", "keep_probability",
    "paper_keep_probability", "WordVectors", "VectorsFormatError", "sgns_loss", "cbow_loss", "sgd_step",
    "skipgram_pairs", "EngineWord2Vec", "FastWord2Vec", "TrainStats",
    "evaluate_analogies", "evaluate_similarity", "solve_analogy", "analogy_scores", "query_word_hits", "read_analogies",
    "read_similarity", "gensim_test_data", "spearman", "pearson", "AnalogyResult", "SimilarityResult",
    "knn", "normalize", "BM25", "bm25_idf", "bm25_term_weight", "rrf", "recall_at_k", "reciprocal_rank", "ndcg_at_k",
    "build_benchmark", "run_benchmark", "train_benchmark_vectors", "mean_vectors", "format_results",
    "anisotropy", "pair_cosines", "dimension_contributions", "rogue_share", "k_occurrence", "skewness",
    "hubness", "concentration", "concentration_vs_dimension", "load_glove_50d",
    "center", "all_but_the_top", "fit_whitening", "whiten", "whitening_sample_study", "csls_scores",
    "csls_neighbours", "BertConfig", "BertEncoder", "load_minilm", "encode", "negation_demo",
    "plot_word_pca", "plot_k_occurrence",
]
