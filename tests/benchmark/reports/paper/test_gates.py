"""Verdict gates: the parse rate over seeds, and where R_att variation is read from."""

from __future__ import annotations

import pytest

from benchmark.reports.paper.gates import load_training_rows, parse_rate, ratt_problem, ratt_shares
from tests.benchmark.fake_results import record

FIELDS = {"dataset": "d", "task": "t", "method": "eag_rl", "family": "eag_rl"}


def test_parse_rate_is_the_mean_over_the_seeds(tmp_path):
    one = record(tmp_path / "a", 1.0, unparsable=30, **FIELDS)
    assert parse_rate(one) == pytest.approx(0.75)
    one.metrics["seeds"] = {"metrics": {"parse_failure_rate": {"per_seed": {"1": 0.5, "2": 0.1}}}}
    assert parse_rate(one) == pytest.approx(0.7)
    del one.metrics["seeds"], one.metrics["parse_failure_rate"]
    assert parse_rate(one) is None


def test_without_any_record_of_ratt_the_gate_is_open(tmp_path):
    eag = record(tmp_path / "a", 1.0, **FIELDS)
    assert ratt_shares(eag) == ([], "") and ratt_problem(eag) is None
    assert load_training_rows(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text("{")
    assert load_training_rows(tmp_path / "bad.json") == []
    other = [{"dataset": "d", "task": "t", "variant": "grpo", "ratt_varying_groups": 0.0}]
    assert ratt_problem(eag, other) is None  # another variant's runs say nothing about EAG-RL's
