"""benchmark/config.py: params are checked for keys, types and ranges, and every error names the key."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from benchmark.config import ConfigError, from_mapping, option
from benchmark.data.synthetic import SyntheticConfig
from methods.eag_rl.config import RLConfig
from methods.experts.trainer import TrainConfig


@dataclass
class Sizes:
    steps: int = option(4, help="Optimiser steps.", minimum=1)
    share: float = option(0.5, help="A share.", minimum=0.0, maximum=1.0)
    free: int = option(0, help="Unbounded.")


def test_values_inside_the_bounds_pass():
    assert from_mapping(Sizes, {"steps": 1, "share": 1, "free": -3}, "p.yaml: s") == Sizes(1, 1.0, -3)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("steps", 0, r"p\.yaml: s\.steps: 0 is out of range; it must be >= 1 \(Optimiser steps\.\)"),
    ("share", 1.5, r"p\.yaml: s\.share: 1\.5 is out of range; it must be between 0\.0 and 1\.0"),
    ("share", -0.1, "between 0.0 and 1.0"),
])
def test_values_outside_the_bounds_name_the_key_and_the_range(key, value, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(Sizes, {key: value}, "p.yaml: s")


@pytest.mark.parametrize(("cls", "data", "key"), [
    (TrainConfig, {"epochs": -1}, "epochs"),           # used to report an untrained model with exit 0
    (TrainConfig, {"batch_size": 0}, "batch_size"),    # used to become 1 silently
    (SyntheticConfig, {"n_patients": -5}, "n_patients"),
    (SyntheticConfig, {"val_fraction": 1.5}, "val_fraction"),
    (SyntheticConfig, {"n_test": -1}, "n_test"),
    (RLConfig, {"num_generations": 1}, "num_generations"),  # a group of one has no advantage
])
def test_the_suites_settings_have_ranges(cls, data, key):
    with pytest.raises(ConfigError, match=rf"params\.yaml: x\.{key}: .* is out of range"):
        from_mapping(cls, data, "params.yaml: x")


def test_a_misspelt_top_level_section_is_an_error(tmp_path):
    from benchmark.config import load_params

    path = tmp_path / "params.yaml"
    path.write_text("runtim:\n  threads: 2\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: unknown top-level section\(s\) 'runtim' \(did you mean 'runtime'\?\)"):
        load_params(path)
