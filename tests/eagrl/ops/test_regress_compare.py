"""Comparing committed and fresh numbers within tolerances, on the reference's machine and on another one."""

from __future__ import annotations

from eagrl.ops.regress_compare import compare
from eagrl.ops.regress_config import RegressConfig


def test_nan_equals_nan():
    config = RegressConfig()
    diffs = compare({"a.json": {"x": float("nan")}}, {"a.json": {"x": float("nan")}}, config)
    assert [d.status for d in diffs] == ["ok"]


def test_on_another_machine_a_machine_sensitive_row_keyed_by_its_scores_may_move():
    """llm.json keys a row by its formatted scores: on another CPU the old key is 'machine', not 'missing'."""
    config = RegressConfig(machine_sensitive=["llm.json:*"])
    committed = {"llm.json": [{"row": "Vanilla 0.830", "n": 4}], "cohorts.json": [{"patients": 200}]}
    fresh = {"llm.json": [{"row": "Vanilla 0.812", "n": 4}], "cohorts.json": [{"other": 200}]}
    flat = {d.key: d.status for d in compare(committed, fresh, config, other_machine=True)}
    strict = {d.key: d.status for d in compare(committed, fresh, config, other_machine=False)}
    assert {s for k, s in flat.items() if k.startswith("llm.json") and s != "ok"} <= {"machine", "new"}
    assert any(s == "missing" for k, s in flat.items() if k.startswith("cohorts.json"))  # strict elsewhere
    assert any(s == "missing" for k, s in strict.items() if k.startswith("llm.json"))  # strict on the same machine


def test_on_another_machine_a_score_may_move_a_few_bootstrap_stds_and_no_more():
    """Regression with teeth on any CPU: a machine-sensitive score within machine_stds of its committed bootstrap
    std is 'machine'; beyond it, or a number without a std beyond machine_abs_tol, fails there too."""
    config = RegressConfig(machine_sensitive=["main.json:*"], machine_stds=3.0, machine_abs_tol=0.1, abs_tol=0.005)
    committed = {"main.json": {"eag_rl": {"auroc": {"mean": 0.70, "std": 0.03}, "auroc_mean": 0.70, "auroc_std": 0.03,
                                          "parse_failure_rate": 0.02}}}

    def statuses(auroc: float, parse: float) -> dict[str, str]:
        fresh = {"main.json": {"eag_rl": {"auroc": {"mean": auroc, "std": 0.03}, "auroc_mean": auroc, "auroc_std": 0.03,
                                          "parse_failure_rate": parse}}}
        return {d.key.split(":", 1)[1]: d.status for d in compare(committed, fresh, config, other_machine=True)}

    moved = statuses(0.70 + 0.09, 0.02 + 0.09)  # 3 stds (0.09) + 0.005: still within
    assert moved == {"eag_rl/auroc/mean": "machine", "eag_rl/auroc/std": "ok", "eag_rl/auroc_mean": "machine",
                     "eag_rl/auroc_std": "ok", "eag_rl/parse_failure_rate": "machine"}
    broke = statuses(0.70 - 0.10, 0.02 + 0.11)  # 0.10 > 0.095; 0.11 > 0.1
    assert broke["eag_rl/auroc/mean"] == broke["eag_rl/auroc_mean"] == broke["eag_rl/parse_failure_rate"] == "changed"
    same_machine = {d.key: d.status for d in compare(committed, {"main.json": {"eag_rl": {
        "auroc": {"mean": 0.72, "std": 0.03}, "auroc_mean": 0.70, "auroc_std": 0.03, "parse_failure_rate": 0.02}}},
        config, other_machine=False)}
    assert same_machine["main.json:eag_rl/auroc/mean"] == "changed"  # the reference's machine: strict
