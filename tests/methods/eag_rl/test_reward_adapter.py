"""The composite reward as TRL reward functions, on hand-made QD completions."""

from __future__ import annotations

import math

import pytest

from methods.eag_rl.config import RLConfig
from methods.eag_rl.reward_adapter import CompositeReward, reward_functions
from methods.eag_rl.rewards import RewardConfig, unparsable_reward
from tests.methods.eag_rl.tiny_grpo import EXPERT, VOCAB


def test_outcome_only_variants_keep_one_reward_function():
    funcs, weights = reward_functions(RewardConfig(use_attention=False),
                                      RLConfig(advantage_aggregation="normalize_then_sum"), VOCAB)
    assert [f.part for f in funcs] == ["total"] and weights == [1.0]
    with pytest.raises(ValueError, match="part must be one of"):
        CompositeReward(RewardConfig(), VOCAB, part="loglik")


def test_composite_reward_adapter_on_hand_made_completions():
    reward = CompositeReward(RewardConfig(), VOCAB)
    good = "<Important Features>heart rate, Oxygen Saturation, pH</Important Features><Final answer>0.9</Final answer>"
    hallucinated = "<Important Features>Heart Rate, Lactate</Important Features><Final answer>0.9</Final answer>"
    wrong = "<Important Features>Glucose</Important Features><Final answer>0.2</Final answer>"
    garbage = "I cannot tell."
    logged = {}
    out = reward(prompts=[""] * 4, completions=[good, hallucinated, wrong, garbage], label=[1, 1, 1, 1],
                 expert_top_k=[EXPERT] * 4, log_metric=lambda k, v: logged.setdefault(k, v))
    r_cls = math.log(0.9) + 0.5 * 0.4
    assert out[0] == pytest.approx(0.6 * r_cls + 0.4 * 1.0)
    assert out[1] == pytest.approx(0.6 * r_cls + 0.4 * (1 / 4))  # Lactate is counted against the IoU
    assert out[2] == pytest.approx(0.6 * math.log(0.2))
    assert out[3] == pytest.approx(unparsable_reward(RewardConfig()))
    assert logged["reward_parts/parsed"] == pytest.approx(0.75)
    outcome_only = CompositeReward(RewardConfig(use_attention=False), VOCAB)
    conversational = [[{"role": "assistant", "content": good}]]
    assert outcome_only(prompts=[""], completions=conversational, label=[1], expert_top_k=[EXPERT])[0] == \
        pytest.approx(r_cls)
