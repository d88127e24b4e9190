"""Does a bigger verifier rescue best-of-N? A PRM the size of the large policy (initialized from it),
trained on 2,400 of the small policy's solutions (temperature 0.8) with the checker's step labels.

    OPENBLAS_NUM_THREADS=1 python benchmarks/rl_large_verifier.py      (~16 min on 2 shared cores)

search-and-learn pairs a 1B policy with an 8B PRM; the shipped PRM is the small policy's size.
Result and discussion: docs/rl.md, "Test-time search". Writes runs/prm-large/prm.npz.
"""
import copy
import time

import numpy as np
from machine import machine_line

import rl
import tinygrad_lite as tg
from rl.compute_study import sample_pool
from rl.reward import (
    LabelledSolution,
    RewardModel,
    first_error_f1,
    save_reward_model,
    step_accuracy,
    train_reward_model,
    true_labels,
)
from rl.task import LEVELS, test_set, training_problems

print(machine_line(), flush=True)
t0 = time.time()
small, _ = rl.load_shipped_policy("policy-small")
large, _ = rl.load_shipped_policy("policy-large")
probs = training_problems(600, seed=100, exclude=[p for lv in LEVELS for p in test_set(lv)])
sols = rl.solve(small, probs, n=4, temperature=0.8, generator=tg.Generator(1))
print("sampled", len(sols), np.mean([s.answer_correct for s in sols]), round(time.time() - t0), flush=True)
rm = RewardModel(copy.deepcopy(large).train(), "prm")
data = [LabelledSolution(s.problem.prompt, s.completion, true_labels(s)) for s in sols]
losses = train_reward_model(rm, data, 800, 32, 3e-4, seed=0)
rm.eval()
save_reward_model("runs/prm-large/prm.npz", rm)
print("trained", np.mean(losses[:50]), np.mean(losses[-50:]), round(time.time() - t0), flush=True)
heldout_problems = [p for lv in LEVELS for p in test_set(lv)[-40:]]
held = rl.solve(small, heldout_problems, n=4, temperature=0.8, generator=tg.Generator(2))
scores = rm.score_many([s.problem.prompt for s in held], [s.completion for s in held])
print("heldout step acc", step_accuracy(scores, held), first_error_f1(scores, held), flush=True)
test = rl.test_set(1)[:40]
pool = sample_pool(small, test, 8, seed=1, temperature=0.8)
pool.score("prm", rm)
s, c = pool.scores["prm:min"], pool.correct
print("BoN@8 L1", c[np.arange(40), s.argmax(1)].mean(), "random", c.mean(), round(time.time() - t0), flush=True)
