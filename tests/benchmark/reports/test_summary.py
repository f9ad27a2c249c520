"""results/SUMMARY.md and results/metrics.json: a view of the other tables, and the one DVC metrics file."""

from __future__ import annotations

import json

import pytest
import yaml

from benchmark.reports.summary import headline_metrics, report_summary, verdict_key
from tests.conftest import REPO

PARAMS = {"eag_rl": {"rl": {"pairs": [{"dataset": "syn", "task": "mortality"}]}},
          "experts": {"models": ["gru", "concare"]}}


def _training_row(variant, seed, ratt_last, rewarded=True):
    return {"dataset": "syn", "task": "mortality", "variant": variant, "seed": seed, "steps": 201,
            "train_patients": 67, "ratt_first": 0.2, "ratt_last": ratt_last, "ratt_rewarded": rewarded,
            "ratt_varying_groups": 0.9, "parse_failure_final": 0.0}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    (folder / "plots" / "robustness").mkdir(parents=True)
    (folder / "plots" / "robustness" / "syn_mortality.png").write_bytes(b"png")
    (folder / "claims.json").write_text(json.dumps({
        "C1": {"status": "fails", "reason": "r1"}, "C2": {"status": "not testable with this profile", "reason": "r2"},
        "C3": {"status": "inconclusive", "reason": "r3"}, "C4": {"status": "not testable: the base model does not answer"}}))
    (folder / "main.json").write_text(json.dumps({"syn": {"mortality": {
        "gru": {"auroc_mean": 0.70, "n": 200}, "concare": {"auroc_mean": 0.80, "n": 200},
        "eag_rl (models/testbed)": {"auroc_mean": 0.61, "auroc_seeds_mean": 0.60, "n": 200, "n_seeds": 3},
        "grpo (models/testbed)": {"auroc_mean": 0.65, "auroc_seeds_mean": 0.64, "n": 200, "n_seeds": 3},
        "wo_stage2 (models/testbed)": {"auroc_mean": 0.62, "n": 200}}}}))
    (folder / "rl_training.json").write_text(json.dumps(
        [_training_row("eag_rl", 42, 0.30), _training_row("eag_rl", 43, 0.20), _training_row("eag_rl", 44, 0.25),
         _training_row("grpo", 42, 0.10, rewarded=False), _training_row("other", 42, 0.5) | {"task": "readmission"}]))
    (folder / "rl_comparison.json").write_text(json.dumps([{
        "dataset": "syn", "task": "mortality", "a": "eag_rl", "b": "grpo", "quantity": "auroc", "a_mean": 0.6,
        "a_std": 0.05, "a_seeds": 3, "b_mean": 0.64, "b_std": 0.06, "b_seeds": 3, "difference": -0.04,
        "ci_low": -0.09, "ci_high": 0.01, "p_value": 0.11, "min_detectable_effect": 0.07, "verdict": "inconclusive"}]))
    return folder


def test_headline_metrics_are_seed_means_of_the_reference_cell(results):
    metrics = headline_metrics(PARAMS, results)
    assert metrics["auroc"] == {"eag_rl": 0.6, "grpo": 0.64, "stage1": 0.62, "expert": 0.8}
    assert metrics["ratt"] == {"eag_rl": 0.25, "grpo": 0.1}  # (0.30 + 0.20 + 0.25) / 3; other tasks ignored
    assert metrics["claims"] == {"fails": 1, "undecided": 1, "untestable": 2}


def test_summary_page_holds_verdicts_comparison_training_methods_and_plots(results, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    report_summary(params, results)
    page = (results / "SUMMARY.md").read_text()
    for expected in ("| C1 ", "fails", "r3", "-0.040 [-0.090, 0.010]", "inconclusive", "0.250",
                     "concare", "![plots/robustness/syn_mortality.png](plots/robustness/syn_mortality.png)"):
        assert expected in page, expected
    assert page.index("concare") < page.index("| gru")  # best AUROC first
    assert json.loads((results / "metrics.json").read_text()) == headline_metrics(PARAMS, results)


def test_a_profile_without_rl_gets_the_claims_only(results):
    assert headline_metrics({}, results) == {"claims": {"fails": 1, "undecided": 1, "untestable": 2}}


def test_verdict_keys():
    assert verdict_key("not testable: the base model does not answer") == "untestable"
    assert verdict_key("inconclusive") == "undecided"
    assert verdict_key("holds") == "holds"


def test_dvc_declares_one_metrics_file_and_plots_that_a_clone_has():
    """`dvc metrics show` prints the headline only; `dvc plots show` draws committed files."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    metrics = [next(iter(m)) if isinstance(m, dict) else m
               for stage in dvc["stages"].values() for m in stage.get("metrics", [])]
    assert metrics == ["results/metrics.json"]
    assert not [name for name, stage in dvc["stages"].items() if "plots" in stage]
    for path in dvc["plots"]:
        assert (REPO / path).exists(), path
