"""The cross-domain stage (DL form) on small synthetic icu -> ward cohorts that share glucose and pH."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.config import ConfigError
from benchmark.data.synthetic import SyntheticConfig, generate
from benchmark.evaluate import read_predictions
from benchmark.experiments.cross_domain import load_cross_domain_config, mapping_summary, run
from eagrl.registry import METHODS
from tests.benchmark.shift_fixtures import fit_logistic, write_params


@pytest.fixture(scope="module")
def icu_with_labs():
    """ICU patients whose features include Glucose and pH (the icu/ward overlap)."""
    return generate(SyntheticConfig(domain="icu", n_patients=240, n_test=60, seed=11,
                                    features=["Heart Rate", "Glucose", "pH", "Temperature"]), name="icu_labs")


def test_mapping_feeds_each_source_column_at_most_once(icu_with_labs, small_ward):
    summary = mapping_summary(icu_with_labs, small_ward)
    sources = [v["from"] for v in summary["columns"].values() if v is not None]
    assert len(sources) == len(set(sources)) and summary["of"] == 4
    assert summary["columns"]["Heart Rate"] is None and summary["mapped"] >= 1


def test_cross_domain_dl_gives_probabilities_on_the_target(tmp_path, monkeypatch, icu_with_labs, small_ward):
    monkeypatch.chdir(tmp_path)
    icu_with_labs.save(tmp_path / "cohorts" / "icu_labs")
    small_ward.save(tmp_path / "cohorts" / "small_ward")
    fit_logistic(icu_with_labs, tmp_path / "models" / "experts")
    write_params(tmp_path, cross_domain={"pairs": [{"source": "icu_labs", "target": "small_ward", "task": "mortality"}]})
    out = run("icu_labs", "small_ward", "mortality", "logistic", cohort_root=tmp_path / "cohorts",
              out_root=tmp_path / "outputs", methods=METHODS)
    assert out == tmp_path / "outputs" / "icu_labs_to_small_ward" / "logistic" / "mortality"
    frame = read_predictions(out / "predictions.csv")
    test = small_ward.subset("test")
    assert list(frame["id"]) == list(test.ids) and list(frame["label"]) == list(test.label("mortality"))
    p = frame["probability"].to_numpy()
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all() and p.std() > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["descriptor"]["dataset"] == "small_ward" and metrics["descriptor"]["train_dataset"] == "icu_labs"
    assert metrics["run"]["mapping"]["mapped"] == mapping_summary(icu_with_labs, small_ward)["mapped"]
    with pytest.raises(ConfigError, match="no task 'readmission'"):
        run("icu_labs", "small_ward", "readmission", "logistic", cohort_root=tmp_path / "cohorts",
            out_root=tmp_path / "outputs", methods=METHODS)


def test_pairs_are_checked():
    with pytest.raises(ConfigError, match="source, target and task"):
        load_cross_domain_config({"cross_domain": {"pairs": [{"source": "a", "target": "b"}]}})
    with pytest.raises(ConfigError, match="both 'a'"):
        load_cross_domain_config({"cross_domain": {"pairs": [{"source": "a", "target": "a", "task": "t"}]}})
