"""The ``experts`` section of params.yaml."""

from __future__ import annotations

import pytest

from benchmark.config import ConfigError, load_params
from methods.experts.config import describe_experts, load_experts_config


def test_repository_params_load_and_list_every_model():
    config = load_experts_config(load_params("params.yaml"))
    assert config.models == ["logistic", "gru", "transformer", "retain", "adacare", "concare"]
    assert config.concare.hidden == 128 and config.concare.heads == 4


def test_a_model_train_block_overrides_single_shared_keys():
    config = load_experts_config({"experts": {"train": {"epochs": 7, "learning_rate": 0.01},
                                              "gru": {"hidden": 4, "train": {"learning_rate": 0.002}}}})
    assert config.gru.train.epochs == 7 and config.gru.train.learning_rate == 0.002
    assert config.concare.train.learning_rate == 0.01 and config.gru.hidden == 4


@pytest.mark.parametrize("experts, match", [
    ({"gru": {"hiden": 4}}, r"experts.gru: unknown key\(s\) \['hiden'\]"),
    ({"models": ["gru", "lstm"]}, r"experts.models lists unknown model\(s\) \[.lstm.\]"),
    ({"train": {"epochs": "ten"}}, "experts.train.epochs: expected int"),
    ({"top_k": 0}, r"experts.top_k: 0 is out of range; it must be >= 1"),
    ({"concare": {"dropout": 1.5}}, r"experts.concare.dropout: 1.5 is out of range; it must be between 0.0 and 1.0"),
    ({"train": {"patience": 0}}, r"experts.train.patience: 0 is out of range"),
])
def test_bad_settings_name_the_key(experts, match):
    with pytest.raises(ConfigError, match=match):
        load_experts_config({"experts": experts})


def test_help_lists_every_section_without_nested_train_blocks():
    text = describe_experts()
    for section in ("experts.train", "experts.concare", "experts.retain", "decov_weight"):
        assert section in text
    assert "TrainConfig(" not in text
