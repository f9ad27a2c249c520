import math

import pytest

from methods.eag_rl.rewards import (
    RewardConfig,
    attention_alignment,
    canonical_features,
    component_weights,
    composite_reward,
    unparsable_reward,
)

VOCAB = ["Heart Rate", "Oxygen saturation", "pH", "Glucose", "Temperature"]
EXPERT = ["Heart Rate", "Oxygen saturation", "pH"]


def test_perfect_answer():
    config = RewardConfig(epsilon=1e-4)
    parts = composite_reward(1.0, ["heart rate", "Oxygen Saturation", "PH"], 1, EXPERT, VOCAB, config)
    loglik = math.log(1 - 1e-4)
    assert parts.attention == 1.0
    assert parts.total == pytest.approx(0.6 * (loglik + 0.5 * (0.5 - 1e-4)) + 0.4 * 1.0)


def test_wrong_side_gets_no_margin():
    config = RewardConfig()
    parts = composite_reward(0.8, ["Glucose"], 0, EXPERT, VOCAB, config)
    assert parts.margin == 0.0
    assert parts.loglik == pytest.approx(math.log(0.2))
    assert parts.attention == 0.0
    assert parts.total == pytest.approx(0.6 * math.log(0.2))


def test_correct_side_margin_and_released_weighting():
    config = RewardConfig(weighting="released")
    parts = composite_reward(0.3, ["Heart Rate", "Glucose"], 0, EXPERT, VOCAB, config)
    assert parts.margin == pytest.approx(0.2)
    assert parts.attention == pytest.approx(1 / 4)
    assert parts.total == pytest.approx(math.log(0.7) + 0.5 * 0.2 + 0.1 * 0.25)


def test_unparsable_is_worst_parsable():
    for weighting in ("paper", "released"):
        config = RewardConfig(weighting=weighting)
        garbage = composite_reward(None, None, 1, EXPERT, VOCAB, config)
        worst = composite_reward(0.0, [], 1, EXPERT, VOCAB, config)
        assert not garbage.parsed
        assert garbage.total == pytest.approx(unparsable_reward(config))
        assert garbage.total <= worst.total + 1e-12


def test_empty_feature_set_scores_zero_and_hallucinations_lower_iou():
    assert attention_alignment([], EXPERT, VOCAB) == 0.0
    assert attention_alignment(["Heart Rate"], EXPERT, VOCAB) == pytest.approx(1 / 3)
    assert attention_alignment(["Heart Rate", "Lactate"], EXPERT, VOCAB) == pytest.approx(1 / 4)
    assert "?lactate" in canonical_features(["Lactate"], VOCAB)


def test_without_attention_reward_ignores_features():
    config = RewardConfig(use_attention=False)
    a = composite_reward(0.7, EXPERT, 1, EXPERT, VOCAB, config)
    b = composite_reward(0.7, ["Glucose"], 1, EXPERT, VOCAB, config)
    assert a.total == b.total == pytest.approx(math.log(0.7) + 0.5 * 0.2)


def test_items_that_mention_features_count_as_those_features():
    from methods.eag_rl.rewards import canonical_features

    vocabulary = ["neutrophils(%)", "Urea", "D-D dimer", "pH", "(%)lymphocyte", "Systolic blood pressure"]
    listed = ["The most important are neutrophils(%)", "Urea and D-D dimer."]
    assert canonical_features(listed, vocabulary) == {"neutrophils(%)", "Urea", "D-D dimer"}
    assert canonical_features(["systolic  Blood pressure"], vocabulary) == {"Systolic blood pressure"}
    # whole words only: "phosphate" does not mention pH, and an item naming nothing stays as itself
    assert canonical_features(["lymphocyte phosphate"], vocabulary) == {"?lymphocytephosphate"}


@pytest.mark.parametrize("config", [RewardConfig(), RewardConfig(use_attention=False),
                                    RewardConfig(weighting="released"),
                                    RewardConfig(weighting="released", use_attention=False, released_loglik=2.0)])
@pytest.mark.parametrize("answer", [(0.9, ["Heart Rate", "Glucose"], 1), (0.3, ["pH"], 1), (None, None, 0)])
def test_total_is_the_weighted_sum_of_its_two_components(config, answer):
    """The split that stage 2's normalize_then_sum aggregation relies on: total = w_out·outcome + w_att·R_att."""
    probability, features, label = answer
    parts = composite_reward(probability, features, label, EXPERT, VOCAB, config)
    w_out, w_att = component_weights(config)
    assert parts.total == pytest.approx(w_out * parts.outcome + w_att * parts.attention)
    if probability is None:
        assert parts.total == unparsable_reward(config)
    assert w_att == 0.0 if not config.use_attention else w_att > 0.0
