import numpy as np
import pytest

from benchmark.config import ConfigError
from benchmark.data.signal import signal_check
from benchmark.data.synthetic import SyntheticConfig, generate, physiology
from eagrl.registry import METHODS


def test_deterministic_given_seed():
    a = generate(SyntheticConfig(n_patients=100, n_test=20, seed=3))
    b = generate(SyntheticConfig(n_patients=100, n_test=20, seed=3))
    c = generate(SyntheticConfig(n_patients=100, n_test=20, seed=4))
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(np.nan_to_num(a.raw), np.nan_to_num(c.raw))


def test_values_within_physiological_bounds(small_icu, small_ward):
    for cohort in (small_icu, small_ward):
        table = physiology(cohort.domain)
        for j, name in enumerate(cohort.feature_names):
            observed = cohort.raw[:, :, j][cohort.mask[:, :, j]]
            assert observed.min() >= table[name]["low"] and observed.max() <= table[name]["high"], name


def test_every_real_visit_has_a_value_and_irregular_times(small_icu):
    real = np.arange(small_icu.raw.shape[1])[None] < small_icu.n_visits[:, None]
    assert small_icu.mask.any(axis=2)[real].all()
    gaps = np.diff(small_icu.times, axis=1)[real[:, 1:]]
    assert gaps.min() > 0 and gaps.std() > 0.1


def test_salient_sets_drive_the_labels():
    cohort = generate(SyntheticConfig(n_patients=3000, n_test=300, seed=1))
    sizes = cohort.salient.sum(1)
    assert sizes.min() >= 2 and sizes.max() <= 3
    # The true risk is informative (ceiling) and the prevalence hits its target.
    assert abs(cohort.label("mortality").mean() - 0.2) < 0.03
    check = signal_check(cohort, "mortality", METHODS)
    assert check["ceiling_auroc"] > 0.85
    assert 0.6 < check["floor_auroc"] < check["ceiling_auroc"]
    # Salient features are more deranged than non-salient ones among patients who died.
    z = np.abs(cohort.values[np.arange(len(cohort)), cohort.n_visits - 1])
    died = cohort.label("mortality") == 1
    assert z[died][cohort.salient[died]].mean() > z[died][~cohort.salient[died]].mean() + 0.3


def test_readmission_includes_in_hospital_deaths(small_icu):
    died = small_icu.label("mortality") == 1
    assert (small_icu.label("readmission")[died] == 1).all()


def test_bad_config_is_named():
    with pytest.raises(ConfigError, match="features: unknown feature"):
        generate(SyntheticConfig(features=["Heart Rate", "Heartrate"]), where="params.yaml: datasets.x")
    with pytest.raises(ConfigError, match="readmission counts in-hospital deaths"):
        generate(SyntheticConfig(prevalence={"mortality": 0.3, "readmission": 0.2}))
