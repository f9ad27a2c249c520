"""Metrics equal scikit-learn's; bootstrap and paired test behave as documented in benchmark/metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from benchmark.config import ConfigError, from_mapping, load_params
from benchmark.metrics import (
    METRICS,
    MetricsConfig,
    accuracy,
    auprc,
    auroc,
    bootstrap,
    bootstrap_indices,
    compute_metrics,
    f1,
    minpse,
    paired_bootstrap,
    resolve_unparsable,
)
from tests.conftest import REPO


def _case(seed: int, n: int = 150, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0, 1)
    if ties:
        p = np.round(p, 1)  # many tied scores, including exactly 0.5
    return y, p


def _sk_minpse(y: np.ndarray, p: np.ndarray) -> float:
    precision, recall, _ = sk.precision_recall_curve(y, p)
    return float(np.max(np.minimum(precision, recall)))


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, False), (3, True)])
def test_metrics_equal_sklearn(seed, ties):
    y, p = _case(seed, ties=ties)
    assert auroc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
    assert auprc(y, p) == pytest.approx(sk.average_precision_score(y, p), abs=1e-12)
    assert minpse(y, p) == pytest.approx(_sk_minpse(y, p), abs=1e-12)
    predicted = (p > 0.5).astype(int)
    assert f1(y, p) == pytest.approx(sk.f1_score(y, predicted, zero_division=0), abs=1e-12)
    assert accuracy(y, p) == pytest.approx(sk.accuracy_score(y, predicted), abs=1e-12)
    assert compute_metrics(y, p) == {"auroc": auroc(y, p), "auprc": auprc(y, p), "minpse": minpse(y, p),
                                     "f1": f1(y, p), "accuracy": accuracy(y, p)}


def test_threshold_is_strict():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.5, 0.5, 0.9, 0.1])
    assert accuracy(y, p) == 0.75  # the two 0.5s are predicted negative
    assert f1(y, p, threshold=0.4) == pytest.approx(sk.f1_score(y, p > 0.4))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        auroc([0, 1], [0.2, np.nan])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        auroc([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="0 or 1"):
        auroc([0, 2], [0.2, 0.5])
    with pytest.raises(ValueError, match="same length"):
        auroc([0, 1, 1], [0.2, 0.5])
    assert np.isnan(auroc([1, 1], [0.2, 0.5]))  # single class: undefined, not an exception


def test_bootstrap_reproducible_with_seed_and_different_with_another():
    y, p = _case(4)
    config = MetricsConfig(bootstrap_resamples=200, seed=42)
    first = bootstrap(y, p, config)
    again = bootstrap(y, p, config)
    other = bootstrap(y, p, MetricsConfig(bootstrap_resamples=200, seed=7))
    assert first == again
    assert first["auroc"]["mean"] != other["auroc"]["mean"]
    assert first["auroc"]["point"] == other["auroc"]["point"] == auroc(y, p)


def test_ci_contains_point_estimate():
    y, p = _case(5, n=200)
    result = bootstrap(y, p, MetricsConfig(bootstrap_resamples=300))
    assert set(result) == set(METRICS)
    for name, summary in result.items():
        assert summary["ci_low"] <= summary["point"] <= summary["ci_high"], name
        assert summary["ci_low"] <= summary["mean"] <= summary["ci_high"], name
        assert 0 < summary["std"] < 0.2, name


def test_single_class_resamples_are_redrawn():
    y = np.array([1] + [0] * 9)  # one positive in ten: ~35% of plain resamples would miss it
    indices = bootstrap_indices(y, 500, seed=0)
    assert indices.shape == (500, 10)
    assert all(0 < y[i].sum() < 10 for i in indices)
    with pytest.raises(ValueError, match="single class"):
        bootstrap_indices(np.zeros(10, dtype=int), 10, seed=0)


def test_separate_evaluations_share_resamples():
    """Resamples depend on labels and seed only: paired mean difference = difference of separate means."""
    y, p = _case(6)
    q = np.clip(p + np.random.default_rng(0).normal(0, 0.1, p.size), 0, 1)
    config = MetricsConfig(bootstrap_resamples=100, seed=3)
    a, b = bootstrap(y, p, config), bootstrap(y, q, config)
    paired = paired_bootstrap(y, p, q, config)
    for name in METRICS:
        assert paired[name]["mean"] == pytest.approx(a[name]["mean"] - b[name]["mean"], abs=1e-12)


def test_paired_identical_gives_p_one():
    y, p = _case(7)
    result = paired_bootstrap(y, p, p.copy(), MetricsConfig(bootstrap_resamples=200))
    for name in METRICS:
        assert result[name]["difference"] == 0
        assert result[name]["p_value"] == 1.0


def test_paired_clearly_better_gives_small_p():
    rng = np.random.default_rng(8)
    y = (rng.random(300) < 0.3).astype(int)
    good = np.clip(0.5 * y + rng.normal(0.25, 0.15, 300), 0, 1)
    weak = np.clip(0.08 * y + rng.normal(0.4, 0.2, 300), 0, 1)
    result = paired_bootstrap(y, good, weak, MetricsConfig(bootstrap_resamples=300))
    assert result["auroc"]["difference"] == pytest.approx(auroc(y, good) - auroc(y, weak))
    assert result["auroc"]["difference"] > 0.2
    assert result["auroc"]["p_value"] < 0.01
    assert result["auroc"]["ci_low"] > 0
    reverse = paired_bootstrap(y, weak, good, MetricsConfig(bootstrap_resamples=300))
    assert reverse["auroc"]["p_value"] < 0.01 and reverse["auroc"]["ci_high"] < 0


def test_unparsable_rule_counts_and_scores():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, np.nan, np.nan, 0.2])
    parsed = np.array([True, False, False, True])
    filled, failures = resolve_unparsable(y, p, parsed, "uninformative")
    assert failures == 2
    assert filled.tolist() == [0.9, 0.5, 0.5, 0.2]
    worst, failures = resolve_unparsable(y, p, parsed, "worst_case")
    assert failures == 2
    assert worst.tolist() == [0.9, 1.0, 0.0, 0.2]
    with pytest.raises(ValueError, match="unknown unparsable rule"):
        resolve_unparsable(y, p, parsed, "drop")


def test_config_from_params_and_checks():
    config = from_mapping(MetricsConfig, load_params(REPO / "params.yaml")["metrics"], "params.yaml: metrics")
    assert config.bootstrap_resamples == 1000 and config.seed == 42 and config.ci_level == 0.95
    with pytest.raises(ConfigError, match="ci_level"):
        MetricsConfig(ci_level=1.5)
    with pytest.raises(ConfigError, match="unparsable"):
        MetricsConfig(unparsable="drop")
