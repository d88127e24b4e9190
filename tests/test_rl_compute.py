"""Step-level sampling on the decoder, and the test-time-compute measurements on tiny models."""
import dataclasses

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from rl.claims import ComputeClaimsConfig, claims_markdown, judge_compute_claims, run_compute_claims
from rl.compute_study import sample_pool, selection_curves
from rl.policy import PRESETS
from rl.reward import RewardModel
from rl.search import FlopModel, beam_search
from rl.step_sampler import PolicyStepSampler
from rl.task import TOKENIZER, test_set


def tiny_gpt(dtype=tg.float32, seed=0) -> nn.GPT:
    m = nn.GPT(PRESETS["tiny"].model_config(), dtype=dtype, generator=tg.Generator(seed))
    return m.eval()


def test_step_sampler_extends_kept_prefixes_like_a_recompute():
    model = tiny_gpt(tg.float64)
    p = test_set(1)[0]
    s = PolicyStepSampler(model, generator=tg.Generator(3), max_new_tokens=30)
    s.begin(p.prompt, 3)
    for rows in ([2, 0, 0], [1, 1, 2]):
        steps = s.sample_steps()
        assert all(t == "" or t.endswith(("\n", "$")) or len(t) > 0 for t in steps)
        s.keep(rows)
        dec = s._decoder
        for i, comp in enumerate(s.completions()):
            if s.finished()[i]:
                continue
            ids = TOKENIZER.encode(p.prompt + comp)
            full = model(np.array([ids]))[0].numpy()[0, -1]
            np.testing.assert_allclose(dec.logits[i], full, atol=1e-9)
    assert s.tokens_generated > 0


def test_step_sampler_rows_finish_with_eos_or_budget():
    s = PolicyStepSampler(tiny_gpt(), generator=tg.Generator(0), max_new_tokens=12)
    s.begin(test_set(2)[0].prompt, 4)
    for _ in range(20):
        s.sample_steps()
        if all(s.finished()):
            break
    assert all(s.finished())
    assert all(c.endswith("$") or len(c) == 12 for c in s.completions())
    with pytest.raises(ValueError, match="temperature"):
        PolicyStepSampler(tiny_gpt(), temperature=0.0)


def test_beam_search_runs_on_the_real_sampler_and_prm():
    model = tiny_gpt()
    prm = RewardModel(tiny_gpt(seed=1), "prm")
    p = test_set(1)[0]
    res = beam_search(PolicyStepSampler(model, max_new_tokens=20), prm, p.prompt, n_beams=4, beam_width=2, max_steps=6)
    assert res.tokens_generated > 0 and prm.tokens_scored > 0
    assert len(res.candidates) >= 1


def test_pool_scores_and_curves_have_the_right_shapes():
    model = tiny_gpt()
    probs = test_set(1)[:3]
    pool = sample_pool(model, probs, n_max=4, seed=0)
    pool.score("orm", RewardModel(tiny_gpt(seed=2), "orm"))
    pool.score("prm", RewardModel(tiny_gpt(seed=3), "prm"))
    assert pool.correct.shape == (3, 4) and pool.scores["orm"].shape == (3, 4)
    assert set(pool.scores) == {"orm", "prm:min", "prm:prod", "prm:last"}
    curves = selection_curves(pool, [1, 2, 4], seeds=2, flops=FlopModel(100.0, 50.0))
    assert "majority vote" in curves and "weighted best-of-N, PRM (min)" in curves
    for c in curves.values():
        assert np.all(np.diff(c.flops) > 0)  # more samples cost more


def test_compute_claims_end_to_end_on_tiny_models():
    small, large = tiny_gpt(), tiny_gpt(seed=5)
    orm, prm = RewardModel(tiny_gpt(seed=6), "orm"), RewardModel(tiny_gpt(seed=7), "prm")
    cfg = dataclasses.replace(ComputeClaimsConfig.quick(), levels=(1,), problems_per_level=3, n_max=4, ns=(1, 2, 4),
                              search_problems_per_level=1)
    res = run_compute_claims(small, large, orm, prm, cfg)
    lv = res["levels"]["1"]
    assert lv["greedy_large"]["flops"] > 0 and set(lv["search"]) == {"beam N=4", "dvts N=4"}
    rows = judge_compute_claims(res)
    assert len(rows) == 7 and all(r["holds"] in (True, False, None) for r in rows)
    md = claims_markdown(rows)
    assert md.count("\n") == len(rows) + 1
    with pytest.raises(ValueError, match="ns"):
        ComputeClaimsConfig(n_max=4, ns=(1, 8))
