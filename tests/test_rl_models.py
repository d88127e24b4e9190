"""rl policies, sampling and reward models, on tiny models."""
import dataclasses

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from rl.policy import PRESETS, PolicyRun, load_policy, training_batch
from rl.reward import (
    LabelledSolution,
    RewardModel,
    encode_for_scoring,
    first_error_f1,
    label_noise,
    monte_carlo_labels,
    step_end_positions,
    train_reward_model,
    true_labels,
)
from rl.sampling import Solution, solve
from rl.task import TOKENIZER, Problem, check, test_set

TINY = PRESETS["tiny"]


def tiny_gpt(dtype=tg.float32, seed=0) -> nn.GPT:
    return nn.GPT(TINY.model_config(), dtype=dtype, generator=tg.Generator(seed))


def as_solution(p: Problem, text: str) -> Solution:
    return Solution(p, text, np.zeros(len(text)), check(p, text))


P = Problem(start=10, ops=(("+", 5), ("-", 3)), level=1)


def test_training_batches_depend_only_on_seed_and_step():
    x1, y1, l1 = training_batch(5, TINY)
    x2, y2, l2 = training_batch(5, TINY)
    assert l1 == l2 and np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(training_batch(6, TINY)[0][:, :5], x1[:, :5]) or training_batch(6, TINY)[2] != l1


def test_policy_run_saves_resumes_exactly_and_loads(tmp_path):
    c = dataclasses.replace(TINY, max_iters=6, eval_interval=3, eval_problems=2)
    straight = PolicyRun(c)
    straight_losses = [straight.train_step() for _ in range(6)]
    first = PolicyRun(c)
    for _ in range(3):
        first.train_step()
    first.save(tmp_path / "ckpt.npz")
    resumed = PolicyRun(c)
    resumed.resume(tmp_path / "ckpt.npz")
    rest = [resumed.train_step() for _ in range(3)]
    assert rest == straight_losses[3:]
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert np.array_equal(a.numpy(), b.numpy()), name
    with pytest.raises(ValueError, match="different policy config"):
        PolicyRun(dataclasses.replace(c, learning_rate=0.5)).resume(tmp_path / "ckpt.npz")
    model, info = load_policy(tmp_path / "ckpt.npz")
    assert info["step"] == 3 and not model.training


def test_policy_run_writes_snapshots_and_curve(tmp_path):
    c = dataclasses.replace(TINY, max_iters=4, eval_interval=2, eval_problems=2)
    run = PolicyRun(c)
    run.run(tmp_path, progress=False, log=lambda s: None)
    assert sorted(p.name for p in tmp_path.glob("step_*.npz")) == ["step_00002.npz", "step_00004.npz"]
    assert [e["step"] for e in run.evals] == [2, 4]
    assert set(run.evals[0]["accuracy"]) == {str(lv) for lv in c.levels}


def test_solve_ragged_batch_equals_one_problem_at_a_time():
    model = tiny_gpt(tg.float64)
    probs = test_set(1)[:3] + test_set(3)[:2]
    together = solve(model, probs, greedy=True)
    for p, s in zip(probs, together):
        alone = solve(model, [p], greedy=True)[0]
        assert alone.completion == s.completion
        np.testing.assert_allclose(alone.logprobs, s.logprobs, atol=1e-9)
    with pytest.raises(ValueError, match="greedy"):
        solve(model, probs, greedy=True, n=2)


def test_solve_continues_a_prefix():
    model = tiny_gpt()
    sols = solve(model, [P, P], n=2, prefixes=["10+5=15\n", ""], generator=tg.Generator(1))
    assert len(sols) == 4 and all(s.completion.startswith("10+5=15\n") for s in sols[:2])
    assert (sols[0].logprobs[:8] == 0).all()


def test_step_end_positions_point_at_line_ends():
    prompt = P.prompt
    for text in [P.solution, "10+5=15\n15-3=12\n", "10+5=15\n15-"]:
        full = prompt + text
        ends = step_end_positions(prompt, text)
        assert len(ends) == len([ln for ln in text.split("\n") if ln or not text.endswith("\n")])
        for e in ends:
            assert full[e] in "\n$" or e == len(full) - 1
    x, sel = encode_for_scoring([prompt, prompt], [P.solution, "10+5=15\n"])
    assert sel.shape == (2, 3) and sel[1, 1] == -1
    assert TOKENIZER.decode([x[0, sel[0, 2]]]) == "$"
    _, last = encode_for_scoring([prompt], [P.solution], outcome=True)
    assert last.tolist() == [[len(prompt) + len(P.solution) - 1]]


def test_true_labels_stop_at_the_first_error():
    assert true_labels(as_solution(P, P.solution)).tolist() == [1, 1, 1]
    labels = true_labels(as_solution(P, "10+5=14\n14-3=11\nA:11$"))
    assert labels[0] == 0 and np.isnan(labels[1:]).all()


def test_label_noise_and_first_error_f1_by_hand():
    truth = [np.array([1.0, 0.0, np.nan]), np.array([1.0, 1.0, 1.0])]
    noisy = [np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.5, 0.0])]  # 0.5 counts as good
    r = label_noise(noisy, truth)
    assert r["steps"] == 5 and r["agreement"] == pytest.approx(3 / 5)
    assert r["false_positive_rate"] == 1.0 and r["false_negative_rate"] == pytest.approx(1 / 4)
    good, bad = as_solution(P, P.solution), as_solution(P, "10+5=15\n15-3=11\nA:11$")
    f = first_error_f1([[0.9, 0.9, 0.9], [0.9, 0.2, 0.1]], [good, bad])
    assert f["accuracy_correct"] == 1.0 and f["accuracy_erroneous"] == 1.0 and f["f1"] == 1.0
    f = first_error_f1([[0.9, 0.9, 0.1], [0.1, 0.9, 0.9]], [good, bad])  # both wrong
    assert f["f1"] == 0.0


def test_monte_carlo_labels_shapes_and_answer_line():
    model = tiny_gpt()
    sols = [as_solution(P, P.solution), as_solution(P, "10+5=14\n14-3=11\nA:11$")]
    hard, soft = monte_carlo_labels(model, sols, rollouts=3, generator=tg.Generator(0))
    for h, s, sol in zip(hard, soft, sols):
        assert len(h) == len(s) == 3
        assert ((s >= 0) & (s <= 1)).all() and np.array_equal(h, (s > 0).astype(float))
        assert s[-1] == float(sol.answer_correct)  # a finished solution is labelled by its answer


@pytest.mark.parametrize("kind", ["orm", "prm"])
def test_reward_model_loss_gradcheck(kind):
    rm = RewardModel(tiny_gpt(tg.float64, seed=1), kind)
    prompts = [P.prompt, P.prompt]
    comps = [P.solution, "10+5=14\n14-3=11\nA:11$"]
    labels = [np.array([1.0, 1.0, 1.0]), np.array([0.0, np.nan, np.nan])] if kind == "prm" \
        else [np.array([1.0]), np.array([0.0])]
    params = [p for p in rm.parameters()]
    w = params[-2]  # the head's weight

    def f(weight):
        rm.head.head.weight = weight
        return rm.loss(prompts, comps, labels)

    assert tg.gradcheck(f, tg.tensor(w.numpy(), dtype=tg.float64, requires_grad=True))
    if kind == "prm":  # unlabelled steps (NaN) do not enter: changing their label changes nothing
        a = rm.loss(prompts, comps, labels).item()
        b = rm.loss(prompts, comps, [labels[0], np.array([0.0, np.nan, np.nan])]).item()
        assert a == b


def test_reward_model_learns_a_separable_signal():
    rm = RewardModel(tiny_gpt(seed=2), "orm")
    good, bad = as_solution(P, P.solution), as_solution(P, "10+5=14\n14-3=11\nA:11$")
    data = [LabelledSolution(P.prompt, s.completion, np.array([float(s.answer_correct)])) for s in (good, bad)]
    losses = train_reward_model(rm, data, steps=60, batch_size=4, learning_rate=1e-2)
    assert losses[-1] < 0.5 * losses[0]
    sg, sb = rm.score(P.prompt, [good.completion, bad.completion])
    assert sg[0] > 0.5 > sb[0]
    with pytest.raises(ValueError, match="kind"):
        RewardModel(tiny_gpt(), "vrm")


def test_reward_study_end_to_end_on_a_tiny_policy():
    from rl.reward_study import RewardStudyConfig, build_reward_data, evaluate_reward_models, train_reward_models

    cfg = RewardStudyConfig(train_problems=4, samples_per_problem=2, rollouts=2, heldout_per_level=2, steps=2,
                            batch_size=4, levels=(1,))
    policy = tiny_gpt()
    data = build_reward_data(policy, cfg)
    assert len(data.train) == 8 and len(data.heldout) == 4
    assert set(data.labels) == {"outcome", "true", "mc-hard", "mc-soft"}
    models = train_reward_models(policy, data, cfg)
    assert set(models) == {"orm", "prm-true", "prm-mc-hard", "prm-mc-soft"}
    report = evaluate_reward_models(models, data)
    assert set(report["label_noise"]) == {"mc-hard", "mc-soft"}
    assert 0.0 <= report["models"]["prm-true"]["step_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="rollouts"):
        RewardStudyConfig(rollouts=0)


def test_reward_model_save_and_load_round_trip(tmp_path):
    from rl.reward import load_reward_model, save_reward_model

    rm = RewardModel(tiny_gpt(seed=4), "prm")
    save_reward_model(tmp_path / "prm.npz", rm)
    back = load_reward_model(tmp_path / "prm.npz")
    assert back.kind == "prm"
    assert back.score(P.prompt, [P.solution]) == rm.score(P.prompt, [P.solution])
    nn.save_checkpoint(tmp_path / "policy.npz", tiny_gpt())
    with pytest.raises(ValueError, match="not a reward-model checkpoint"):
        load_reward_model(tmp_path / "policy.npz")


def test_policy_run_can_extend_its_schedule(tmp_path):
    c = dataclasses.replace(TINY, max_iters=4, eval_interval=2, eval_problems=1)
    first = PolicyRun(c)
    for _ in range(2):
        first.train_step()
    first.save(tmp_path / "ckpt.npz")
    longer = PolicyRun(dataclasses.replace(c, max_iters=8))
    with pytest.raises(ValueError, match="max_iters differ"):
        longer.resume(tmp_path / "ckpt.npz")
    longer.resume(tmp_path / "ckpt.npz", extend=True)
    assert longer.step == 2 and longer.schedules == [{"from_step": 0, "max_iters": 4}, {"from_step": 2, "max_iters": 8}]
    with pytest.raises(ValueError, match="learning_rate"):
        PolicyRun(dataclasses.replace(c, max_iters=8, learning_rate=0.5)).resume(tmp_path / "ckpt.npz", extend=True)
