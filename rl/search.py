"""Test-time search: choose among sampled solutions with a verifier, and count what it costs.

The task is an arithmetic chain: prompt ``Q:7+5*3-4\\n``, completion ``7+5=12\\n12*3=36\\n36-4=32\\nA:32$``.
A *step* is one line of the completion; the ``A:<int>$`` answer line is the last step. A process
reward model (PRM) scores every step in (0, 1); an outcome reward model (ORM) scores a whole completion.

This module never imports a model. It works on plain data (answers, scores, token counts) and on
two small protocols, `StepSampler` and `StepScorer`, so every rule here can be tested with fakes.

1. `aggregate`: turn a PRM's step scores into one score (min / prod / last / mean).
2. Selection over N samples of one problem: `majority_vote`, `best_of_n`, `weighted_best_of_n`.
3. `evaluate_selection`: generate once at the largest N, subsample for smaller N, error bars over seeds.
4. `FlopModel`: inference FLOPs ≈ 2 · parameters per token (Kaplan et al. 2020).
5. `beam_search` and `dvts`: step-level search guided by a PRM (Snell et al. 2024; Beeching et al. 2024).
6. `compute_optimal`: pick the best setting per difficulty level under a FLOPs budget (Snell et al. 2024).

Where this differs from search-and-learn (checked against its src/sal/search and src/sal/utils code)
    * A step is one line here (a "\\n\\n"-terminated paragraph there).
    * None (no parseable answer) never wins a selection unless every answer is None; there an empty
      answer string is just another answer.
    * Beam search returns the completed pool as it is; search-and-learn pads a pool smaller than N
      with copies of its first beams, which would hand those beams extra votes in voting.
    * No lookahead and no `filter_duplicates` option.
    * `evaluate_selection` draws random subsets per seed by default; search-and-learn takes the first
      n samples of one generation ("prefix", also available) and gets error bars from new generations.

References
    Wang et al. 2022, "Self-Consistency Improves Chain of Thought Reasoning in Language Models".
    Lightman et al. 2023, "Let's Verify Step by Step".
    Li et al. 2023, "Making Large Language Models Better Reasoners with Step-Aware Verifier".
    Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally can be More Effective than Scaling
        Model Parameters".
    Beeching, Tunstall & Rush 2024, "Scaling test-time compute with open models" (Hugging Face blog)
        and its code, huggingface/search-and-learn ("search-and-learn" below).
    Kaplan et al. 2020, "Scaling Laws for Neural Language Models".
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from tinygrad_lite import Generator

from .metrics import mean_and_stderr
from .task import answer_of

Aggregation = Literal["min", "prod", "last", "mean"]
Selection = Literal["majority", "best_of_n", "weighted_best_of_n"]
Answer = Hashable  # an extracted final answer (an int for the arithmetic task); None = nothing parseable

AGGREGATIONS = ("min", "prod", "last", "mean")
SELECTIONS = ("majority", "best_of_n", "weighted_best_of_n")


# --------------------------------------------------------------------------------------------------
# Answers and steps
# --------------------------------------------------------------------------------------------------

def extract_answer(completion: str) -> int | None:
    """The integer on the completion's final ``A:<int>$`` line, or None if that line is missing or malformed.

    Only the last line counts: a solution that writes ``A:5$`` and keeps going has not answered.
    (The task's own parser, `rl.task.answer_of`, with a type check for callers outside the task.)
    """
    if not isinstance(completion, str):
        raise TypeError(f"extract_answer: completion must be a str, got {type(completion).__name__}")
    return answer_of(completion)


# --------------------------------------------------------------------------------------------------
# Aggregating step scores
# --------------------------------------------------------------------------------------------------

def aggregate(step_scores: Sequence[float], how: Aggregation = "last") -> float:
    """One score for a solution from its PRM step scores s_1..s_T.

        min:  min_t s_t        the chain is as strong as its weakest step (Lightman et al. 2023)
        prod: Π_t s_t          P(every step correct) if the scores were independent probabilities
                               (Lightman et al. 2023); it is biased against long solutions, since
                               every extra step multiplies by a number < 1
        last: s_T              the PRM's judgement with the whole solution in view (search-and-learn's default)
        mean: (1/T) Σ_t s_t
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregate: how must be one of {AGGREGATIONS}, got {how!r}")
    scores = np.asarray(step_scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"aggregate: need a non-empty 1-D list of step scores, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"aggregate: step scores must be finite, got {scores.tolist()}")
    if how == "min":
        return float(scores.min())
    if how == "prod":
        return float(scores.prod())
    if how == "last":
        return float(scores[-1])
    return float(scores.mean())


def aggregate_many(step_scores: Sequence[Sequence[float]], how: Aggregation = "last") -> np.ndarray:
    """`aggregate` for many solutions (lists may differ in length); returns shape (len(step_scores),)."""
    return np.array([aggregate(s, how) for s in step_scores], dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Selection rules over the N samples of one problem
# --------------------------------------------------------------------------------------------------
# Every rule ignores None (no parseable answer) unless all answers are None; then it returns None.
# Every tie goes to the answer that occurs first in the list, so a result never depends on hash order.

def _check_scores(answers: Sequence[Answer], scores: Sequence[float], who: str) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (len(answers),):
        raise ValueError(f"{who}: need one score per answer, got {len(answers)} answers, scores of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{who}: scores must be finite, got {arr.tolist()}")
    return arr


def majority_vote(answers: Sequence[Answer]) -> Answer:
    """Self-consistency (Wang et al. 2022): the most frequent answer; a tie goes to the one seen first."""
    counts: dict[Answer, int] = {}  # dicts keep insertion order, i.e. order of first occurrence
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return None
    return max(counts, key=counts.__getitem__)  # max returns the first of equal maxima


def best_of_n(answers: Sequence[Answer], scores: Sequence[float]) -> Answer:
    """The answer of the highest-scoring sample: argmax_i score_i; a tie goes to the earlier sample."""
    arr = _check_scores(answers, scores, "best_of_n")
    best: int | None = None
    for i, a in enumerate(answers):
        if a is not None and (best is None or arr[i] > arr[best]):
            best = i
    return None if best is None else answers[best]


def weighted_best_of_n(answers: Sequence[Answer], scores: Sequence[float]) -> Answer:
    """Weighted voting (Li et al. 2023; search-and-learn's "weighted" best-of-N): argmax_a Σ_{i: answer_i = a} score_i.

    Between majority voting (every vote weighs 1) and best-of-N (only the top vote counts): an answer
    reached by several decent solutions beats one reached by a single excellent one.
    """
    arr = _check_scores(answers, scores, "weighted_best_of_n")
    totals: dict[Answer, float] = {}
    for a, s in zip(answers, arr):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + float(s)
    if not totals:
        return None
    return max(totals, key=totals.__getitem__)


def select_answer(answers: Sequence[Answer], scores: Sequence[float] | None, method: Selection) -> Answer:
    """Apply one of the rules above by name: "majority" (ignores scores), "best_of_n", "weighted_best_of_n"."""
    if method == "majority":
        return majority_vote(answers)
    if method not in SELECTIONS:
        raise ValueError(f"select_answer: method must be one of {SELECTIONS}, got {method!r}")
    if scores is None:
        raise ValueError(f"select_answer: method {method!r} needs scores, got None")
    return best_of_n(answers, scores) if method == "best_of_n" else weighted_best_of_n(answers, scores)


# --------------------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlopModel:
    """Inference FLOPs, counted as 2 · (parameters) per token per forward pass (Kaplan et al. 2020).

    What is counted:
      * a generated token: one policy forward pass, 2 · policy_params FLOPs;
      * a prompt token: processed once per sample row (prefill with a KV cache; beam search and DVTS
        copy cache rows with `keep`, which recomputes nothing), 2 · policy_params;
      * a verifier (ORM or PRM) reads prompt + completion once per sample: 2 · verifier_params per
        token. Step-level search reports its own `tokens_scored`, since a PRM without a cache
        re-reads every prefix each time it is called.
    What is not: the attention term 2 · n_layer · n_ctx · d_model per token (small next to 2N when
    d_model ≫ n_ctx / 12; Kaplan et al. 2020, Table 1), sampling, tokenization.
    """

    policy_params: float
    verifier_params: float

    def __post_init__(self) -> None:
        if not self.policy_params > 0:
            raise ValueError(f"FlopModel: policy_params must be > 0, got {self.policy_params!r}")
        if not self.verifier_params >= 0:
            raise ValueError(f"FlopModel: verifier_params must be >= 0, got {self.verifier_params!r}")

    def policy(self, tokens: float) -> float:
        """FLOPs for the policy to process `tokens` tokens: 2 · N_policy · tokens."""
        return 2.0 * self.policy_params * tokens

    def verifier(self, tokens: float) -> float:
        """FLOPs for the verifier to read `tokens` tokens: 2 · N_verifier · tokens."""
        return 2.0 * self.verifier_params * tokens

    def greedy(self, prompt_tokens: float, completion_tokens: float) -> float:
        """One greedy completion: 2 · N_policy · (prompt + completion)."""
        return self.sampling(prompt_tokens, completion_tokens, 1)

    def sampling(self, prompt_tokens: float, completion_tokens: float, n: int) -> float:
        """N samples without a verifier (e.g. majority vote): 2 · N_policy · n · (prompt + completion).

        `completion_tokens` is the mean length of one completion.
        """
        _check_count(n, "FlopModel.sampling")
        return self.policy(n * (prompt_tokens + completion_tokens))

    def best_of_n(self, prompt_tokens: float, completion_tokens: float, n: int, count_verifier: bool = True) -> float:
        """N samples each read once by a verifier: 2 · (N_policy + N_verifier) · n · (prompt + completion).

        `count_verifier=False` leaves the verifier out, as search-and-learn's blog comparisons of a small
        policy with a large one do; report which one you used.
        """
        _check_count(n, "FlopModel.best_of_n")
        tokens = n * (prompt_tokens + completion_tokens)
        return self.policy(tokens) + (self.verifier(tokens) if count_verifier else 0.0)

    def search(self, result: SearchResult, prompt_tokens: float, count_verifier: bool = True) -> float:
        """Beam search / DVTS from counted tokens: 2·N_policy·(rows·prompt + generated) + 2·N_verifier·scored."""
        policy = self.policy(result.n_rows * prompt_tokens + result.tokens_generated)
        return policy + (self.verifier(result.tokens_scored) if count_verifier else 0.0)


def _check_count(n: int, who: str) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{who}: n must be an int >= 1, got {n!r}")


# --------------------------------------------------------------------------------------------------
# Generate once at the largest N, subsample for smaller N
# --------------------------------------------------------------------------------------------------

@dataclass
class SelectionCurve:
    """Accuracy of one selection method against N, from subsamples of one set of generations.

    accuracy:   (seeds, len(ns)) accuracy of every seed; mean / std / stderr over seeds, per n
    per_problem: (len(ns), P) fraction of seeds on which each problem was answered correctly
    flops:      (len(ns),) mean FLOPs per problem, or None when no FlopModel was given
    """

    method: str
    ns: list[int]
    accuracy: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    stderr: np.ndarray
    per_problem: np.ndarray
    flops: np.ndarray | None


def _as_answer_table(answers: Sequence[Sequence[Answer]] | np.ndarray, who: str) -> list[list[Answer]]:
    table = [list(row) for row in answers]
    if not table or not table[0]:
        raise ValueError(f"{who}: answers must be a non-empty (problems, samples) table")
    width = len(table[0])
    for p, row in enumerate(table):
        if len(row) != width:
            raise ValueError(f"{who}: answers must be rectangular; problem 0 has {width} samples, "
                             f"problem {p} has {len(row)}")
    return table


def evaluate_selection(answers: Sequence[Sequence[Answer]] | np.ndarray,
                       scores: np.ndarray | Sequence[Sequence[float]] | None,
                       correct_answers: Sequence[Answer],
                       ns: Sequence[int],
                       method: Literal["majority", "best_of_n", "weighted_best_of_n", "coverage"],
                       seeds: int = 3,
                       generator: Generator | int = 0,
                       subsample: Literal["random", "prefix"] = "random",
                       flop_model: FlopModel | None = None,
                       prompt_tokens: float | Sequence[float] | None = None,
                       completion_tokens: np.ndarray | Sequence[Sequence[float]] | None = None,
                       count_verifier: bool = True) -> SelectionCurve:
    """Accuracy of `method` with n of the Nmax samples, for each n in `ns`, mean ± error over seeds.

    answers (P, Nmax), scores (P, Nmax) (aggregated verifier scores; may be None for "majority" and
    "coverage"), correct_answers (P,). "coverage" counts a problem solved if any of the n answers is
    correct: an oracle upper bound, not a rule one could deploy.

    subsample="random": each seed draws one random permutation of the Nmax samples per problem, and
        the subset for n is its first n entries (so subsets are nested across n, which makes the
        curve smoother). Inside a subset the samples keep their original order, so ties break as in
        the full list and n = Nmax reproduces the full-list result exactly.
    subsample="prefix": the first n samples, as search-and-learn does (there the error bars come from
        regenerating with other seeds); needs seeds=1.

    With a `flop_model`, also returns the mean FLOPs per problem for each n: the policy reads
    n · prompt_tokens[p] + Σ_{i in subset} completion_tokens[p, i]; a verifier reads the same tokens
    for the scored methods (when `count_verifier`), and nothing for "majority" and "coverage".
    """
    who = "evaluate_selection"
    methods = (*SELECTIONS, "coverage")
    if method not in methods:
        raise ValueError(f"{who}: method must be one of {methods}, got {method!r}")
    table = _as_answer_table(answers, who)
    P, n_max = len(table), len(table[0])
    if len(correct_answers) != P:
        raise ValueError(f"{who}: need one correct answer per problem, got {len(correct_answers)} for {P} problems")
    needs_scores = method in ("best_of_n", "weighted_best_of_n")
    score_arr = None
    if scores is not None:
        score_arr = np.asarray(scores, dtype=np.float64)
        if score_arr.shape != (P, n_max):
            raise ValueError(f"{who}: scores must have the answers' shape {(P, n_max)}, got {score_arr.shape}")
    elif needs_scores:
        raise ValueError(f"{who}: method {method!r} needs scores, got None")
    if not ns:
        raise ValueError(f"{who}: ns must be non-empty")
    for n in ns:
        if not isinstance(n, (int, np.integer)) or not 1 <= n <= n_max:
            raise ValueError(f"{who}: every n must be an int in [1, {n_max}] (the samples per problem), got {n!r}")
    if not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"{who}: seeds must be an int >= 1, got {seeds!r}")
    if subsample not in ("random", "prefix"):
        raise ValueError(f"{who}: subsample must be 'random' or 'prefix', got {subsample!r}")
    if subsample == "prefix" and seeds != 1:
        raise ValueError(f"{who}: subsample='prefix' is deterministic (every seed would agree); use seeds=1, "
                         f"got seeds={seeds}")
    prompt_arr = comp_arr = None
    if flop_model is not None:
        if prompt_tokens is None or completion_tokens is None:
            raise ValueError(f"{who}: flop_model needs prompt_tokens (P,) and completion_tokens (P, Nmax)")
        prompt_arr = np.broadcast_to(np.asarray(prompt_tokens, dtype=np.float64), (P,))
        comp_arr = np.asarray(completion_tokens, dtype=np.float64)
        if comp_arr.shape != (P, n_max):
            raise ValueError(f"{who}: completion_tokens must have shape {(P, n_max)}, got {comp_arr.shape}")
    gen = generator if isinstance(generator, Generator) else Generator(generator)

    correct = np.zeros((seeds, len(ns), P), dtype=bool)
    flops = np.zeros((seeds, len(ns)))
    for s in range(seeds):
        if subsample == "prefix":
            order = np.tile(np.arange(n_max), (P, 1))
        else:  # argsort of i.i.d. uniforms = one uniformly random permutation per row
            order = np.argsort(gen.uniform((P, n_max), np.float64), axis=1)
        for j, n in enumerate(ns):
            subset = np.sort(order[:, :n], axis=1)
            for p in range(P):
                picked = [table[p][i] for i in subset[p]]
                if method == "coverage":
                    correct[s, j, p] = any(a is not None and a == correct_answers[p] for a in picked)
                    continue
                picked_scores = None if score_arr is None else score_arr[p, subset[p]]
                chosen = select_answer(picked, picked_scores, method)
                correct[s, j, p] = chosen is not None and chosen == correct_answers[p]
            if flop_model is not None:
                tokens = n * prompt_arr + np.take_along_axis(comp_arr, subset, axis=1).sum(axis=1)
                cost = flop_model.policy(tokens)
                if needs_scores and count_verifier:
                    cost = cost + flop_model.verifier(tokens)
                flops[s, j] = float(np.mean(cost))

    accuracy = correct.mean(axis=2)
    mean, std, stderr = mean_and_stderr(accuracy, axis=0)
    return SelectionCurve(method=method, ns=[int(n) for n in ns], accuracy=accuracy, mean=mean, std=std,
                          stderr=stderr, per_problem=correct.mean(axis=0),
                          flops=None if flop_model is None else flops.mean(axis=0))


# --------------------------------------------------------------------------------------------------
# Step-level search: beam search and DVTS over two small protocols
# --------------------------------------------------------------------------------------------------

class StepSampler(Protocol):
    """A policy that extends a batch of rows (copies of one prompt) one step at a time."""

    tokens_generated: int  # running count of generated tokens, for FLOPs

    def begin(self, prompt: str, n_rows: int) -> None:
        """Start `n_rows` copies of the prompt, nothing generated yet."""

    def sample_steps(self) -> list[str]:
        """Sample one more step for every unfinished row; each row's new text ("" for finished rows)."""

    def keep(self, rows: Sequence[int]) -> None:
        """Continue from these rows (repeats allowed), in this order: a KV-cache row selection."""

    def completions(self) -> list[str]:
        """Each row's completion text so far."""

    def finished(self) -> list[bool]:
        """Whether each row ended with "$" or hit the length limit."""


class StepScorer(Protocol):
    """A process reward model: one score per completed step of each (partial) completion."""

    tokens_scored: int  # running count of tokens read, for FLOPs

    def score(self, prompt: str, completions: Sequence[str]) -> list[list[float]]:
        """Step scores of each completion."""


@dataclass
class Candidate:
    """One solution a search returned: its text, PRM step scores, aggregated score and extracted answer."""

    completion: str
    step_scores: list[float]
    score: float
    answer: Answer
    finished: bool
    subtree: int | None = None  # DVTS: which independent subtree produced it


@dataclass
class SearchResult:
    """What `beam_search` / `dvts` return: the candidates, the chosen answer and the token counts for FLOPs."""

    method: str
    candidates: list[Candidate]
    answer: Answer
    selection: str
    aggregation: str
    tokens_generated: int
    tokens_scored: int
    n_rows: int        # rows that read the prompt once each (see FlopModel.search)
    iterations: int    # sample-score-prune rounds that ran
    keep_calls: list[list[int]] = field(default_factory=list)  # every row selection passed to sampler.keep

    @property
    def answers(self) -> list[Answer]:
        return [c.answer for c in self.candidates]


def _check_search_args(who: str, n_beams: int, beam_width: int, max_steps: int, aggregation: str,
                       selection: str) -> None:
    for name, value in (("n_beams", n_beams), ("beam_width", beam_width), ("max_steps", max_steps)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{who}: {name} must be an int >= 1, got {value!r}")
    if n_beams % beam_width != 0:
        raise ValueError(f"{who}: n_beams must be a multiple of beam_width, got n_beams={n_beams}, "
                         f"beam_width={beam_width}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"{who}: aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if selection not in SELECTIONS:
        raise ValueError(f"{who}: selection must be one of {SELECTIONS}, got {selection!r}")


def _advance(sampler: StepSampler, to_the_end: bool, who: str) -> None:
    """One step for every unfinished row, or (`to_the_end`) steps until every row has finished.

    A row that is unfinished but gets no new text would make `to_the_end` loop forever, so it is an error.
    """
    while True:
        was_finished = sampler.finished()
        new_text = sampler.sample_steps()
        if len(new_text) != len(was_finished):
            raise RuntimeError(f"{who}: sampler.sample_steps returned {len(new_text)} texts "
                               f"for {len(was_finished)} rows")
        for row, (done, text) in enumerate(zip(was_finished, new_text)):
            if not done and text == "":
                raise RuntimeError(f"{who}: sampler row {row} is unfinished but sample_steps gave it no text; "
                                   "a sampler must extend every unfinished row or mark it finished")
        if not to_the_end or all(sampler.finished()):
            return


def _score_rows(scorer: StepScorer, prompt: str, texts: list[str], aggregation: Aggregation,
                who: str) -> tuple[list[list[float]], np.ndarray]:
    """PRM step scores of every row and their aggregate, checked for shape."""
    step_scores = scorer.score(prompt, texts)
    if len(step_scores) != len(texts):
        raise RuntimeError(f"{who}: scorer.score returned {len(step_scores)} score lists for {len(texts)} completions")
    for row, s in enumerate(step_scores):
        if len(s) == 0:
            raise RuntimeError(f"{who}: scorer.score gave no step score for row {row} ({texts[row]!r})")
    step_scores = [list(map(float, s)) for s in step_scores]
    return step_scores, aggregate_many(step_scores, aggregation)


def _choose(candidates: list[Candidate], selection: Selection) -> Answer:
    return select_answer([c.answer for c in candidates], [c.score for c in candidates], selection)


def beam_search(sampler: StepSampler, scorer: StepScorer, prompt: str, n_beams: int, beam_width: int = 4,
                max_steps: int = 40, aggregation: Aggregation = "last", selection: Selection = "best_of_n",
                sort_completed: bool = False,
                answer_fn: Callable[[str], Answer] = extract_answer) -> SearchResult:
    """Step-level beam search with a PRM (Snell et al. 2024; search-and-learn's `beam_search`).

    N = n_beams rows, M = beam_width. Every iteration:
      1. sample one step for all N rows;
      2. score every row with the PRM and aggregate (default: the last step's score);
      3. rows that finished go to the completed pool;
      4. of the rows still active keep the N / M best (a tie goes to the lower row index) and expand
         them back to N rows: M copies each, or more when fewer than N / M rows are still active, so
         every iteration samples N rows, as search-and-learn does;
      5. stop when no row is active. The last iteration (max_steps) runs every row to its end.
    The answer is chosen among the first N completed candidates (in order of completion, or the N
    best with `sort_completed=True`, search-and-learn's two options) by `selection` over the
    aggregated scores: "best_of_n" is search-and-learn's prediction, "weighted_best_of_n" and
    "majority" its voting variants. `max_steps=40` and `beam_width=4` are search-and-learn's defaults.
    """
    who = "beam_search"
    _check_search_args(who, n_beams, beam_width, max_steps, aggregation, selection)
    generated_before, scored_before = sampler.tokens_generated, scorer.tokens_scored
    n_keep = n_beams // beam_width
    sampler.begin(prompt, n_beams)
    completed: list[Candidate] = []
    keep_calls: list[list[int]] = []
    iterations = 0
    for it in range(max_steps):
        iterations += 1
        _advance(sampler, to_the_end=it == max_steps - 1, who=who)
        texts, done = sampler.completions(), sampler.finished()
        step_scores, agg = _score_rows(scorer, prompt, texts, aggregation, who)
        for row in range(len(texts)):
            if done[row]:
                completed.append(Candidate(texts[row], step_scores[row], float(agg[row]), answer_fn(texts[row]), True))
        active = [row for row in range(len(texts)) if not done[row]]
        if not active:
            break
        best = sorted(sorted(active, key=lambda r: (-agg[r], r))[:n_keep])  # the N/M best, back in row order
        # Spread N rows over the kept ones as evenly as possible: M consecutive copies each when N/M are kept.
        rows = [best[j * len(best) // n_beams] for j in range(n_beams)]
        keep_calls.append(rows)
        sampler.keep(rows)
    if sort_completed:
        completed = sorted(completed, key=lambda c: -c.score)  # sorted is stable: ties keep completion order
    candidates = completed[:n_beams]
    return SearchResult(method=who, candidates=candidates, answer=_choose(candidates, selection), selection=selection,
                        aggregation=aggregation, tokens_generated=sampler.tokens_generated - generated_before,
                        tokens_scored=scorer.tokens_scored - scored_before, n_rows=n_beams, iterations=iterations,
                        keep_calls=keep_calls)


def dvts(sampler: StepSampler, scorer: StepScorer, prompt: str, n_beams: int, beam_width: int = 4,
         max_steps: int = 40, aggregation: Aggregation = "last", selection: Selection = "best_of_n",
         answer_fn: Callable[[str], Answer] = extract_answer) -> SearchResult:
    """Diverse Verifier Tree Search (Beeching et al. 2024; search-and-learn's `dvts`).

    Beam search's N / M kept rows tend to descend from one early high-scoring step, so the final
    candidates look alike. DVTS splits the N rows into N / M independent subtrees of M rows each
    (rows s·M .. s·M + M - 1 belong to subtree s). Every iteration each subtree samples one step on
    its M rows, keeps its single best row by aggregated PRM score (a tie goes to the lower row) and
    expands it into M copies. A subtree is done when its best row has finished; its M rows of that
    iteration (the winner and its M - 1 siblings, which may be unfinished and then have no answer)
    become its candidates, as in search-and-learn, so the search returns N candidates. The last
    iteration (max_steps) runs every row to its end. The answer is chosen by `selection` over all N.
    """
    who = "dvts"
    _check_search_args(who, n_beams, beam_width, max_steps, aggregation, selection)
    generated_before, scored_before = sampler.tokens_generated, scorer.tokens_scored
    m = beam_width
    sampler.begin(prompt, n_beams)
    active_trees = list(range(n_beams // m))  # block j of M rows belongs to subtree active_trees[j]
    candidates: list[Candidate] = []
    keep_calls: list[list[int]] = []
    iterations = 0
    for it in range(max_steps):
        iterations += 1
        _advance(sampler, to_the_end=it == max_steps - 1, who=who)
        texts, done = sampler.completions(), sampler.finished()
        step_scores, agg = _score_rows(scorer, prompt, texts, aggregation, who)
        rows: list[int] = []
        still_active: list[int] = []
        for j, tree in enumerate(active_trees):
            block = range(j * m, (j + 1) * m)
            winner = min(block, key=lambda r: (-agg[r], r))
            if done[winner]:
                candidates += [Candidate(texts[r], step_scores[r], float(agg[r]), answer_fn(texts[r]), done[r], tree)
                               for r in block]
            else:
                rows += [winner] * m
                still_active.append(tree)
        active_trees = still_active
        if not active_trees:
            break
        keep_calls.append(rows)
        sampler.keep(rows)
    candidates.sort(key=lambda c: c.subtree)  # stable: subtree order, then row order inside a subtree
    return SearchResult(method=who, candidates=candidates, answer=_choose(candidates, selection), selection=selection,
                        aggregation=aggregation, tokens_generated=sampler.tokens_generated - generated_before,
                        tokens_scored=scorer.tokens_scored - scored_before, n_rows=n_beams, iterations=iterations,
                        keep_calls=keep_calls)


# --------------------------------------------------------------------------------------------------
# Compute-optimal selection per difficulty level
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measurement:
    """One measured setting on one difficulty level: accuracy and mean FLOPs per problem."""

    level: Hashable
    method: str
    n: int
    accuracy: float
    flops: float


@dataclass
class BudgetResult:
    """Compute-optimal vs the uniform baseline at one FLOPs budget (per problem).

    choices:   the setting chosen for each level, or None when some level has no setting within budget
    accuracy / flops: of the compute-optimal strategy (flops = what it actually spends, <= budget)
    baseline_accuracy: the baseline's accuracy at `budget`, interpolated on a log-FLOPs axis; None
                       outside the baseline's measured FLOPs range (no extrapolation)
    baseline_flops_needed: FLOPs the baseline needs to reach `accuracy` (first crossing, log-FLOPs
                       interpolation); math.inf if it never does within its measured range
    efficiency: baseline_flops_needed / flops, how many times more compute the baseline needs
    """

    budget: float
    choices: dict[Hashable, Measurement] | None
    accuracy: float | None
    flops: float | None
    baseline_accuracy: float | None
    baseline_flops_needed: float | None
    efficiency: float | None


def _levels_and_weights(table: Sequence[Measurement], level_weights: Mapping[Hashable, float] | None,
                        who: str) -> tuple[list[Hashable], Mapping[Hashable, float]]:
    levels = sorted({m.level for m in table}, key=repr)  # a fixed order, whatever the level type
    weights = level_weights if level_weights is not None else dict.fromkeys(levels, 1.0)
    missing = [lv for lv in levels if lv not in weights]
    if missing:
        raise ValueError(f"{who}: level_weights has no weight for levels {missing}")
    if any(not weights[lv] > 0 for lv in levels):
        raise ValueError(f"{who}: level weights must be > 0, got {dict(weights)}")
    return levels, weights


def _weighted_mean(values: Mapping[Hashable, float], weights: Mapping[Hashable, float]) -> float:
    total = sum(weights[level] for level in values)
    return sum(weights[level] * v for level, v in values.items()) / total


def baseline_curve(table: Sequence[Measurement], method: str,
                   level_weights: Mapping[Hashable, float] | None = None) -> list[tuple[float, float, int]]:
    """The uniform strategy "`method` with the same n on every level": (flops, accuracy, n) points
    averaged over levels (weighted by `level_weights`, default equal), sorted by FLOPs. Only n measured
    on every level are used."""
    levels, weights = _levels_and_weights(table, level_weights, "baseline_curve")
    by_n: dict[int, dict[Hashable, Measurement]] = {}
    for m in table:
        if m.method == method:
            by_n.setdefault(m.n, {})[m.level] = m
    points = []
    for n, per_level in by_n.items():
        if set(per_level) == set(levels):
            points.append((_weighted_mean({lv: m.flops for lv, m in per_level.items()}, weights),
                           _weighted_mean({lv: m.accuracy for lv, m in per_level.items()}, weights), n))
    return sorted(points)


def _interp_log(x: float, xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """y at x by linear interpolation in log(x); None outside [xs[0], xs[-1]]."""
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            if x1 == x0:
                return max(y0, y1)
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return ys[-1]  # a single point, x == xs[0]


def _flops_to_reach(target: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Smallest x where the piecewise log-linear curve first reaches `target`; math.inf if it never does.

    If the first measured point already reaches it, that point's FLOPs is returned: an upper bound,
    since the curve is unknown below its cheapest point.
    """
    if ys[0] >= target:
        return xs[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y0 < target <= y1:
            t = (target - y0) / (y1 - y0)
            return math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))
    return math.inf


def compute_optimal(table: Sequence[Measurement], budgets: Sequence[float], baseline_method: str = "best_of_n",
                    level_weights: Mapping[Hashable, float] | None = None) -> list[BudgetResult]:
    """Snell et al. 2024's compute-optimal strategy with oracle difficulty levels, against a uniform baseline.

    For a budget B (FLOPs per problem) each level l gets the setting s = (method, n) with the highest
    accuracy among those with flops_l(s) <= B (a tie goes to the cheaper one). Overall accuracy and
    FLOPs are the level averages weighted by `level_weights` (e.g. problems per level; default equal).
    The baseline uses `baseline_method` with the same n on every level (see `baseline_curve`).
    Efficiency = (FLOPs the baseline needs for the compute-optimal accuracy) / (FLOPs compute-optimal
    spends), reading the baseline curve with accuracy linear in log FLOPs between measured points;
    math.inf when the baseline never gets there within its measured range. A budget too small for
    some level gives accuracy None and no comparison.
    """
    who = "compute_optimal"
    if not table:
        raise ValueError(f"{who}: table is empty")
    for m in table:
        if not m.flops > 0 or not 0.0 <= m.accuracy <= 1.0:
            raise ValueError(f"{who}: every measurement needs flops > 0 and accuracy in [0, 1], got {m}")
    levels, weights = _levels_and_weights(table, level_weights, who)
    curve = baseline_curve(table, baseline_method, weights)
    if not curve:
        raise ValueError(f"{who}: no n of baseline method {baseline_method!r} is measured on every level {levels}")
    xs, ys = [p[0] for p in curve], [p[1] for p in curve]

    results = []
    for budget in budgets:
        choices: dict[Hashable, Measurement] = {}
        for level in levels:
            affordable = [m for m in table if m.level == level and m.flops <= budget]
            if affordable:
                choices[level] = max(affordable, key=lambda m: (m.accuracy, -m.flops))
        baseline_at_budget = _interp_log(budget, xs, ys)
        if len(choices) < len(levels):
            results.append(BudgetResult(budget, None, None, None, baseline_at_budget, None, None))
            continue
        accuracy = _weighted_mean({lv: m.accuracy for lv, m in choices.items()}, weights)
        spent = _weighted_mean({lv: m.flops for lv, m in choices.items()}, weights)
        needed = _flops_to_reach(accuracy, xs, ys)
        results.append(BudgetResult(budget, choices, accuracy, spent, baseline_at_budget, needed, needed / spent))
    return results
