"""The claim tests' evidence: the three-way outcome rule, and contrasts that agree with the pooled paired test."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.descriptor import MethodDescriptor
from benchmark.evaluate import PredictionsError
from benchmark.metrics import MetricsConfig
from benchmark.reports.collect import Record
from benchmark.reports.paper.evidence import (
    CONTRADICTS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    SUPPORTS,
    UNDECIDED,
    Evidence,
    judge,
    overall,
)
from benchmark.seeds import pooled_paired_test
from tests.benchmark.fake_results import labels, metrics_file, probabilities, record

CONFIG = MetricsConfig(bootstrap_resamples=40, seed=3)
FIELDS = {"dataset": "d", "task": "t", "family": "rl"}


@pytest.mark.parametrize(("difference", "p", "comparisons", "expected"), [
    (0.1, 0.01, 5, SUPPORTS),        # the claimed way, significant
    (0.1, 0.20, 5, UNDECIDED),       # the claimed way, not significant
    (-0.1, 0.005, 5, CONTRADICTS),   # the other way, below alpha / m = 0.01
    (-0.1, 0.02, 5, UNDECIDED),      # the other way, below alpha but not alpha / m
    (0.1, None, 1, UNDECIDED),       # no paired test
    (0.1, float("nan"), 1, UNDECIDED),
])
def test_judge_paired(difference, p, comparisons, expected):
    assert judge(difference, p, 0.05, comparisons, "paired_test") == expected


def test_judge_by_the_mean_ignores_p():
    assert judge(0.01, 0.9, 0.05, 3, "mean") == SUPPORTS
    assert judge(-0.01, None, 0.05, 3, "mean") == CONTRADICTS
    with pytest.raises(ValueError, match="decision"):
        judge(0.1, 0.01, 0.05, 1, "vote")


def test_overall():
    assert overall([SUPPORTS, SUPPORTS]) == HOLDS
    assert overall([SUPPORTS, UNDECIDED]) == INCONCLUSIVE
    assert overall([SUPPORTS, UNDECIDED, CONTRADICTS]) == FAILS
    with pytest.raises(ValueError):
        overall([])


def _seeded(folder, qualities, **fields):
    """A record whose file lists one predictions file per seed (the RL variants' layout)."""
    import json

    path = metrics_file(folder, qualities[0], seed=100)
    listed = {"0": "predictions.csv"}
    for k, quality in enumerate(qualities[1:], start=1):
        metrics_file(folder / f"seed{k}", quality, seed=100 + k)
        listed[str(k)] = f"seed{k}/predictions.csv"
    data = json.loads(path.read_text())
    data["seeds"] = {"n_seeds": len(qualities), "predictions": listed}
    return Record(MethodDescriptor(dataset="d", task="t", method=fields.get("method", "m"), family="rl"), data, path)


def test_a_two_term_contrast_is_the_pooled_paired_test(tmp_path):
    a = _seeded(tmp_path / "a", [1.0, 0.5, 0.8], method="a")
    b = _seeded(tmp_path / "b", [0.6], method="b")
    contrast = Evidence(CONFIG, 300, 9).contrast([(1.0, a), (-1.0, b)], "auroc")
    y = labels()
    order = np.argsort([f"P{i}" for i in range(y.size)], kind="stable")  # patients in id order, as rl_comparison reads them
    by_seed_a = {k: probabilities(q, y.size, 100 + k)[order] for k, q in enumerate([1.0, 0.5, 0.8])}
    expected = pooled_paired_test(y[order], by_seed_a, {0: probabilities(0.6, y.size, 100)[order]}, "auroc",
                                  n_resamples=300, seed=9)
    assert contrast.difference == pytest.approx(expected["difference"])
    assert contrast.p_value == pytest.approx(expected["p_value"])
    assert (contrast.ci_low, contrast.ci_high) == pytest.approx((expected["ci_low"], expected["ci_high"]))
    assert contrast.n_patients == y.size and contrast.resampled.shape == (300,)


def test_a_contrast_is_linear_in_its_terms(tmp_path):
    records = [record(tmp_path / str(q), q, seed=int(10 * q), method=str(q), **FIELDS) for q in (0.2, 0.9, 1.5)]
    evidence = Evidence(CONFIG, 50, 1)
    weights = (1.0, -0.5, -0.5)
    combined = evidence.contrast(list(zip(weights, records, strict=True)), "auprc")
    points, resampled, _ = evidence.scores(records, "auprc")
    assert combined.difference == pytest.approx(float(np.dot(weights, points)))
    assert np.allclose(combined.resampled, np.dot(weights, resampled))


def test_records_on_other_patients_cannot_be_paired(tmp_path):
    a = record(tmp_path / "a", 1.0, method="a", **FIELDS)
    b = record(tmp_path / "b", 1.0, method="b", **FIELDS)
    frame = (b.path.parent / "predictions.csv")
    frame.write_text(frame.read_text().replace("P0,", "Q0,", 1))
    with pytest.raises(PredictionsError, match="same patients"):
        Evidence(CONFIG, 20, 1).contrast([(1.0, a), (-1.0, b)], "auroc")


def test_the_minimum_detectable_effect_is_the_hand_computed_one(tmp_path):
    from scipy.stats import norm

    from benchmark.reports.paper.claims import ClaimsConfig
    from benchmark.reports.paper.evidence import Context

    a = record(tmp_path / "a", 1.0, seed=4, method="a", **FIELDS)
    b = record(tmp_path / "b", 0.6, seed=5, method="b", **FIELDS)
    config = ClaimsConfig(resamples=300, alpha=0.1)
    ctx = Context([a, b], config, CONFIG)
    comparison = ctx.measure("a − b", [(1.0, a), (-1.0, b)], "auroc")
    resampled = ctx.evidence.contrast([(1.0, a), (-1.0, b)], "auroc").resampled
    se = float(np.std(resampled))  # the bootstrap standard error of the paired difference
    expected = (norm.ppf(1 - 0.1 / 2) + norm.ppf(0.8)) * se
    assert comparison.min_detectable == pytest.approx(expected)
    assert 0 < comparison.min_detectable < 1
    assert comparison.row()["MDE (80 % power)"] == f"{expected:.3f}"
