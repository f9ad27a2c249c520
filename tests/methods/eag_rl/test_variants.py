"""Variants of eag_rl.rl resolve over the shared settings as documented, each with its seeds."""

from __future__ import annotations

import pytest

from benchmark.config import ConfigError
from methods.eag_rl.config import DEFAULT_VARIANTS, load_rl_section
from methods.eag_rl.variants import resolve_variant, reward_config


def test_variants_resolve_as_documented():
    section = load_rl_section({"eag_rl": {"reward": {"lam": 0.6}, "rl": {"train": {"max_steps": 3}}}})
    assert set(section.variants) == set(DEFAULT_VARIANTS)
    grpo, dapo = resolve_variant(section, "grpo"), resolve_variant(section, "dapo")
    assert (grpo.adaptive_clip, grpo.epsilon_high, grpo.loss_type, grpo.max_steps) == (False, 0.2, "grpo", 3)
    assert (dapo.epsilon_high, dapo.loss_type, dapo.dynamic_sampling) == (0.28, "dapo", True)
    assert not reward_config({}, grpo).use_attention
    assert reward_config({}, resolve_variant(section, "released_weights")).weighting == "released"
    assert resolve_variant(section, "wo_stage1").initial_policy == "base"
    assert resolve_variant(section, "eag_rl").adaptive_clip


def test_each_variant_trains_its_first_n_seeds():
    from methods.eag_rl.variants import variant_seeds

    section = load_rl_section({"eag_rl": {"rl": {"seeds": [5, 6, 7], "variants": {
        "eag_rl": {"family": "eag_rl"}, "dapo": {"n_seeds": 1}}}}})
    assert variant_seeds(section, resolve_variant(section, "eag_rl")) == [5, 6, 7]
    assert variant_seeds(section, resolve_variant(section, "dapo")) == [5]
    too_many = load_rl_section({"eag_rl": {"rl": {"seeds": [5], "variants": {"x": {"n_seeds": 2}}}}})
    with pytest.raises(ConfigError, match="n_seeds"):
        variant_seeds(too_many, resolve_variant(too_many, "x"))
    repeated = load_rl_section({"eag_rl": {"rl": {"seeds": [5, 5]}}})
    with pytest.raises(ConfigError, match="distinct"):
        variant_seeds(repeated, resolve_variant(repeated, "eag_rl"))
