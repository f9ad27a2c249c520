"""params.yaml is the one source of truth: the config dataclasses' defaults equal its values.

A stage reads params.yaml, so the dataclass defaults only act where a key is missing (a partial profile, a
test, a script). Were they to differ, the same key would mean two things; this test keeps them one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from benchmark.config import load_params
from benchmark.metrics import MetricsConfig
from methods.eag_rl.config import DistillConfig, ProposerConfig, RLConfig, SearchConfig, SFTStageConfig
from methods.eag_rl.mcts import MCTSConfig
from methods.eag_rl.rewards import RewardConfig
from tests.conftest import REPO

SECTIONS = {
    "metrics": MetricsConfig,
    "eag_rl.search": SearchConfig,
    "eag_rl.proposer": ProposerConfig,
    "eag_rl.mcts": MCTSConfig,
    "eag_rl.reward": RewardConfig,
    "eag_rl.distill": DistillConfig,
    "eag_rl.sft": SFTStageConfig,
    "eag_rl.rl.train": RLConfig,
}


def _default(field: dataclasses.Field) -> Any:
    """A field's default value (built by its factory where it has one)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def disagreements(cls: type, values: dict[str, Any], where: str) -> list[str]:
    """``where.key: code X, params Y`` for every key of ``values`` whose default in ``cls`` differs (nested
    dataclasses walked); a key ``cls`` lacks is reported too."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    found = []
    for key, value in values.items():
        if key not in fields:
            found.append(f"{where}.{key}: no such field in {cls.__name__}")
            continue
        default = _default(fields[key])
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            found += disagreements(type(default), value, f"{where}.{key}")
        elif (type(default), default) != (type(value), value):
            found.append(f"{where}.{key}: code {default!r}, params.yaml {value!r}")
    return found


@pytest.mark.parametrize("dotted", SECTIONS)
def test_dataclass_defaults_equal_params_yaml(dotted):
    """Every key of the section equals the default of the field of the same name."""
    node = load_params(REPO / "params.yaml")
    for key in dotted.split("."):
        node = node[key]
    found = disagreements(SECTIONS[dotted], node, dotted)
    assert not found, "change the dataclass default (params.yaml is the source of truth):\n" + "\n".join(found)
