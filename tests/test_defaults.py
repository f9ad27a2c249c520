"""params.yaml is the one source of truth: the config dataclasses' defaults equal its values.

A stage reads params.yaml, so the dataclass defaults only act where a key is missing (a partial profile, a
test, a script). Were they to differ, the same key would mean two things; this test keeps them one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from benchmark.config import load_params
from benchmark.experiments.cross_domain import CrossDomainConfig
from benchmark.experiments.robustness import RobustnessConfig
from benchmark.launch import LaunchConfig
from benchmark.metrics import MetricsConfig
from benchmark.reports.collect import ReportConfig
from eagrl.ops.regress_config import RegressConfig
from methods.eag_rl.config import DistillConfig, ProposerConfig, RLConfig, SearchConfig, SFTStageConfig
from methods.eag_rl.mcts import MCTSConfig
from methods.eag_rl.rewards import RewardConfig
from methods.experts.config import ExpertsConfig
from methods.hybrid.config import HybridConfig
from methods.llm.config import LLMConfig
from methods.llm.testbed import TestbedConfig
from tests.conftest import REPO

SECTIONS = {
    "launch": LaunchConfig,
    "metrics": MetricsConfig,
    "experts": ExpertsConfig,
    "testbed": TestbedConfig,
    "hybrid": HybridConfig,
    "llm": LLMConfig,
    "eag_rl.search": SearchConfig,
    "eag_rl.proposer": ProposerConfig,
    "eag_rl.mcts": MCTSConfig,
    "eag_rl.reward": RewardConfig,
    "eag_rl.distill": DistillConfig,
    "eag_rl.sft": SFTStageConfig,
    "eag_rl.rl.train": RLConfig,
    "robustness": RobustnessConfig,
    "cross_domain": CrossDomainConfig,
    "report": ReportConfig,
    "regress": RegressConfig,
}


def disagreements(defaults: Any, values: dict[str, Any], where: str) -> list[str]:
    """``where.key: code X, params Y`` for every key of ``values`` whose default in the config instance
    ``defaults`` differs (nested dataclasses walked as built, so a field's default factory counts); a key the
    config lacks is reported too."""
    names = {field.name for field in dataclasses.fields(defaults)}
    found = []
    for key, value in values.items():
        if key not in names:
            found.append(f"{where}.{key}: no such field in {type(defaults).__name__}")
            continue
        default = getattr(defaults, key)
        if isinstance(default, (dict, list)) and not default:
            continue  # an empty mapping or list states no value: the content (e.g. llm.finetuned) lives in params.yaml only
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            found += disagreements(default, value, f"{where}.{key}")
        elif (type(default), default) != (type(value), value):
            found.append(f"{where}.{key}: code {default!r}, params.yaml {value!r}")
    return found


@pytest.mark.parametrize("dotted", SECTIONS)
def test_dataclass_defaults_equal_params_yaml(dotted):
    """Every key of the section equals the default of the field of the same name."""
    node = load_params(REPO / "params.yaml")
    for key in dotted.split("."):
        node = node[key]
    found = disagreements(SECTIONS[dotted](), node, dotted)
    assert not found, "change the dataclass default (params.yaml is the source of truth):\n" + "\n".join(found)
