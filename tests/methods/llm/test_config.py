"""The ``llm`` section of params.yaml: the repository's file loads, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.config import ConfigError
from methods.llm.config import LLMConfig, load_llm_config

REPO = Path(__file__).resolve().parents[3]


def test_repository_params_load_and_every_llm_key_is_commented():
    config = load_llm_config(REPO / "params.yaml")
    assert isinstance(config, LLMConfig) and config.backbone.source == "smollm2"
    lines = (REPO / "params.yaml").read_text().splitlines()
    start = lines.index("llm:")
    block = []
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    keyed = [line for line in block if line.strip() and not line.strip().startswith("#")]
    # Section headers (a key with nothing after the colon) may go without; every value carries a comment.
    assert all("#" in line for line in keyed if not line.rstrip().endswith(":")), \
        [line for line in keyed if "#" not in line and not line.rstrip().endswith(":")]


def test_unknown_or_mistyped_keys_are_reported(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("llm:\n  generation:\n    temprature: 0.7\n")
    with pytest.raises(ConfigError, match=r"llm.generation: unknown key\(s\) \['temprature'\]"):
        load_llm_config(path)
    path.write_text("llm:\n  evaluation:\n    n_patients: many\n")
    with pytest.raises(ConfigError, match="llm.evaluation.n_patients: expected int"):
        load_llm_config(path)
    path.write_text("seed: 1\n")
    assert load_llm_config(path) == LLMConfig()
