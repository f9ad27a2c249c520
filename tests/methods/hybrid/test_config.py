"""The `hybrid` params section: defaults, train merging, backbone from llm.backbone, errors that name the key."""

from __future__ import annotations

import pytest

from benchmark.config import ConfigError
from methods.hybrid.config import load_hybrid_config


def test_defaults_train_like_the_experts_and_use_llm_backbone():
    params = {"experts": {"train": {"epochs": 7, "seed": 3}}, "llm": {"backbone": {"dir": "elsewhere"}},
              "hybrid": {"train": {"patience": 2}, "embedding": {"layers": 4},
                         "hybrid_retriever": {"train": {"seed": 9}}}}
    config = load_hybrid_config(params)
    fusion, retriever = config.hybrid_fusion, config.hybrid_retriever
    assert config.models == ["hybrid_fusion", "hybrid_retriever"]
    assert (fusion.train.epochs, fusion.train.seed, fusion.train.patience) == (7, 3, 2)
    assert (retriever.train.epochs, retriever.train.seed) == (7, 9)
    assert fusion.backbone.dir == retriever.backbone.dir == "elsewhere"
    assert fusion.embedding.layers == retriever.embedding.layers == 4


@pytest.mark.parametrize(("hybrid", "fragment"), [
    ({"models": ["hybrid_fusion", "nope"]}, "unknown model"),
    ({"hybrid_fusion": {"embedding": {"layers": 2}}}, "hybrid.embedding"),
    ({"hybrid_fusion": {"widht": 3}}, "widht"),
    ({"train": {"epoch": 3}}, "epoch"),
    ({"descriptions": {"max_new_tokens": "many"}}, "max_new_tokens"),
])
def test_bad_values_name_the_key(hybrid, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_hybrid_config({"hybrid": hybrid})
