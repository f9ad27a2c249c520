"""MIMIC-IV settings: the params entry through the source registry and errors that name the key."""

from __future__ import annotations

import pytest

from benchmark.config import ConfigError, from_mapping
from benchmark.data.mimic_iv import MimicIVConfig, build_mimic_iv
from benchmark.data.mimic_iv.config import MimicIVError
from benchmark.data.sources import build_cohort
from tests.benchmark.data.mimic_iv.fake_mimic import config


def test_params_entry_through_the_source_registry(mimic_root):
    entry = {"source": "mimic_iv", "path": str(mimic_root), "n_test": 2, "max_train_val": 0}
    built, settings = build_cohort("mimic_iv", entry, "params.yaml: datasets.mimic_iv")
    assert settings.stay_selection == "first" and len(built) == 11
    with pytest.raises(ConfigError, match="datasets.mimic_iv.stay_selection"):
        from_mapping(MimicIVConfig, {**entry, "stay_selection": "any"}, "params.yaml: datasets.mimic_iv")


def test_config_errors_name_the_key(mimic_root):
    with pytest.raises(ConfigError, match=r"mimic_iv\.features"):
        build_mimic_iv(config(mimic_root, features=["Lactate"]), "m", "params.yaml: datasets.mimic_iv")
    with pytest.raises(MimicIVError, match="only 11 patients qualify"):
        build_mimic_iv(config(mimic_root, n_test=11), "m")
