"""Seed aggregation and the seed-pooled paired bootstrap behave as documented in benchmark/seeds.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.metrics import MetricsConfig, auroc, paired_bootstrap
from benchmark.seeds import (
    aggregate_seeds,
    min_detectable_effect,
    pooled_paired_contrast_test,
    pooled_paired_test,
    seed_block,
    seed_folders,
)


def _case(seed: int, n: int = 200, signal: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return y, np.clip(signal * y + rng.normal(0.35, 0.2, n), 0, 1)


def _noisy(y: np.ndarray, seed: int, signal: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(signal * y + rng.normal(0.35, 0.2, y.size), 0, 1)


# ------------------------------------------------------------------------------------------ aggregate
def test_aggregate_matches_hand_computation_on_three_seeds():
    out = aggregate_seeds({1: {"auroc": 0.70, "auprc": 0.40}, 2: {"auroc": 0.80, "auprc": 0.50},
                           3: {"auroc": 0.90, "auprc": 0.30}})
    assert out["n_seeds"] == 3 and out["seeds"] == [1, 2, 3]
    auroc_ = out["metrics"]["auroc"]
    assert auroc_["per_seed"] == {1: 0.70, 2: 0.80, 3: 0.90}
    assert auroc_["mean"] == pytest.approx(0.80)
    # deviations -0.1, 0, 0.1: sum of squares 0.02 over n - 1 = 2 -> variance 0.01
    assert auroc_["std"] == pytest.approx(0.10)
    assert out["metrics"]["auprc"]["mean"] == pytest.approx(0.40)
    assert out["metrics"]["auprc"]["std"] == pytest.approx(0.10)


def test_aggregate_one_seed_has_std_zero_and_mismatched_metrics_are_refused():
    out = aggregate_seeds({7: {"auroc": 0.6}})
    assert (out["n_seeds"], out["metrics"]["auroc"]["mean"], out["metrics"]["auroc"]["std"]) == (1, 0.6, 0.0)
    with pytest.raises(ValueError, match="same metrics"):
        aggregate_seeds({1: {"auroc": 0.6}, 2: {"auprc": 0.3}})
    with pytest.raises(ValueError, match="no seeds"):
        aggregate_seeds({})


# ------------------------------------------------------------------------------------- pooled test
@pytest.mark.parametrize("metric", ["auroc", "auprc", "f1"])
def test_one_seed_each_equals_the_single_pair_paired_test(metric):
    y, pa = _case(0)
    pb = _noisy(y, 1, 0.15)
    config = MetricsConfig(bootstrap_resamples=200, seed=5)
    single = paired_bootstrap(y, pa, pb, config)[metric]
    pooled = pooled_paired_test(y, {0: pa}, {3: pb}, metric, n_resamples=200, seed=5)
    for key in ("difference", "mean", "std", "ci_low", "ci_high", "p_value"):
        assert pooled[key] == pytest.approx(single[key], abs=1e-12), key


def test_statistic_is_the_difference_of_seed_means_on_the_same_resamples():
    """A hand-written loop over 5 resamples: every seed of both methods sees the same indices."""
    from benchmark.metrics import bootstrap_indices

    y, a0 = _case(2, n=40)
    a1, b0 = _noisy(y, 3, 0.3), _noisy(y, 4, 0.1)
    pooled = pooled_paired_test(y, {0: a0, 1: a1}, {0: b0}, "auroc", n_resamples=5, seed=9)
    assert pooled["difference"] == pytest.approx((auroc(y, a0) + auroc(y, a1)) / 2 - auroc(y, b0))
    deltas = [(auroc(y[i], a0[i]) + auroc(y[i], a1[i])) / 2 - auroc(y[i], b0[i])
              for i in bootstrap_indices(y, 5, 9)]
    assert pooled["mean"] == pytest.approx(np.mean(deltas))
    assert pooled["std"] == pytest.approx(np.std(deltas))
    assert (pooled["n_seeds_a"], pooled["n_seeds_b"]) == (2, 1)


def test_a_contrast_of_two_changes_is_computed_on_the_same_resamples():
    """(A_shuffled − A_none) − (B_shuffled − B_none) by hand over 5 resamples, seeds averaged per term."""
    from benchmark.metrics import bootstrap_indices

    y, a_none = _case(5, n=60)
    a_shuffled = {1: _noisy(y, 6, 0.1), 2: _noisy(y, 7, 0.15)}
    a_clean = {1: a_none, 2: _noisy(y, 8, 0.3)}
    b_clean, b_shuffled = {1: _noisy(y, 9, 0.3)}, {1: _noisy(y, 10, 0.3)}
    test = pooled_paired_contrast_test(y, [a_shuffled, b_clean], [a_clean, b_shuffled], "auroc", 5, 11)

    def seed_mean(term, idx):
        return np.mean([auroc(y[idx], p[idx]) for p in term.values()])

    every = np.arange(y.size)
    assert test["difference"] == pytest.approx(seed_mean(a_shuffled, every) + seed_mean(b_clean, every)
                                               - seed_mean(a_clean, every) - seed_mean(b_shuffled, every))
    deltas = [seed_mean(a_shuffled, i) + seed_mean(b_clean, i) - seed_mean(a_clean, i) - seed_mean(b_shuffled, i)
              for i in bootstrap_indices(y, 5, 11)]
    assert test["mean"] == pytest.approx(np.mean(deltas)) and test["std"] == pytest.approx(np.std(deltas))
    # a two-term contrast is the pooled paired test, bit for bit
    pair = pooled_paired_test(y, a_shuffled, b_clean, "auroc", 50, 3)
    contrast = pooled_paired_contrast_test(y, [a_shuffled], [b_clean], "auroc", 50, 3)
    assert all(pair[k] == contrast[k] for k in contrast)
    with pytest.raises(ValueError, match="each side"):
        pooled_paired_contrast_test(y, [a_shuffled], [], "auroc", 5, 11)


def test_seed_block_and_seed_folders_round_trip(tmp_path):
    import json

    block = seed_block({42: {"auroc": 0.6}, 43: {"auroc": 0.8}}, [42, 43], subdir=lambda s: f"seeds/{s}")
    assert block["predictions"] == {"42": "predictions.csv", "43": "seeds/43/predictions.csv"}
    assert block["metrics"]["auroc"]["mean"] == pytest.approx(0.7)
    (tmp_path / "metrics.json").write_text(json.dumps({"seeds": block}))
    assert seed_folders(tmp_path) == {42: tmp_path, 43: tmp_path / "seeds" / "43"}
    (tmp_path / "metrics.json").write_text(json.dumps({"training": {"seed": 7}}))
    assert seed_folders(tmp_path) == {7: tmp_path}  # one run


def test_identical_methods_give_zero_difference_and_p_one():
    y, p = _case(3)
    seeds = {0: p, 1: _noisy(y, 8, 0.2)}
    out = pooled_paired_test(y, seeds, dict(seeds), "auroc", n_resamples=100, seed=1)
    assert out["difference"] == 0.0 and out["std"] == 0.0 and out["p_value"] == 1.0
    assert out["min_detectable_effect"] == 0.0


def test_clearly_better_method_is_significant_on_200_patients():
    y, _ = _case(4)
    better = {s: _noisy(y, 10 + s, 0.45) for s in range(3)}
    worse = {s: _noisy(y, 20 + s, 0.02) for s in range(2)}
    out = pooled_paired_test(y, better, worse, "auroc", n_resamples=300, seed=0)
    assert out["difference"] > 0.2 and out["ci_low"] > 0
    assert out["p_value"] < 0.05
    assert out["min_detectable_effect"] == pytest.approx(min_detectable_effect(out["std"]))


def test_min_detectable_effect_is_z_sum_times_std():
    assert min_detectable_effect(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)  # 2.80 at 95 % / 80 %
    assert min_detectable_effect(0.5, ci_level=0.9, power=0.9) == pytest.approx(0.5 * (1.644854 + 1.281552), abs=1e-5)
    assert math.isnan(min_detectable_effect(float("nan")))
    with pytest.raises(ValueError, match="power"):
        min_detectable_effect(1.0, power=1.0)


def test_bad_inputs_are_refused():
    y, p = _case(5, n=30)
    with pytest.raises(ValueError, match="unknown metric"):
        pooled_paired_test(y, {0: p}, {0: p}, "brier")
    with pytest.raises(ValueError, match="at least one seed"):
        pooled_paired_test(y, {}, {0: p}, "auroc", n_resamples=3)
    with pytest.raises(ValueError, match="same length"):
        pooled_paired_test(y, {0: p[:-1]}, {0: p}, "auroc", n_resamples=3)
