"""Stage report_ablations: EAG-RL vs its ablations, GRPO/DAPO and QD, with paired tests on the same patients."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

from benchmark.metrics import MetricsConfig
from benchmark.reports.ablation_rows import (
    ABLATIONS,
    FULL,
    Layout,
    build_blocks,
    layout_from_params,
    order_methods,
    row_label,
)
from benchmark.reports.ablations import write_ablations
from benchmark.reports.collect import ReportConfig, collect
from benchmark.reports.paper.claims import load_claims
from eagrl.cli import main
from eagrl.registry import METHODS
from tests.benchmark.fake_results import metrics_file

SOURCES = [
    {"pattern": "outputs/llm/{dataset}/{method}/{task}/metrics.json"},
    {"pattern": "models/llm/{dataset}/{method}/{task}/metrics.json"},
    {"pattern": "outputs/robustness/{dataset}/{method}/{task}/*/metrics.json"},
]
REPORT = ReportConfig(sources=SOURCES)
PAIRED = MetricsConfig(bootstrap_resamples=200, seed=3)  # enough resamples for p < 0.05 to be reachable (≥ 2/201)
BACKBONE = "smollm2"


def _descriptor(method: str, family: str, dataset: str = "synthetic_icu", task: str = "mortality") -> dict:
    return {"dataset": dataset, "task": task, "method": method, "family": family, "backbone": BACKBONE}


def _rl(root, method, family, quality, seed=1, dataset="synthetic_icu", task="mortality"):
    return metrics_file(root / f"models/llm/{dataset}/{method}/{task}", quality, _descriptor(method, family, dataset, task),
                        seed=seed)


def _tree(root):
    """EAG-RL strong; w/o R_att identical to it; GRPO at chance; w/o ε(τ) on other patients; DAPO not run."""
    _rl(root, "eag_rl", "eag_rl", 1.5, seed=1)
    _rl(root, "wo_ratt", "ablation", 1.5, seed=1)  # the same predictions as EAG-RL
    _rl(root, "grpo", "rl", 0.0, seed=2)  # chance: clearly worse
    _rl(root, "wo_stage1", "ablation", 1.2, seed=4)
    _rl(root, "expert_gru", "ablation", 1.0, seed=5)  # a variant the layout does not list: still shown
    eps = _rl(root, "wo_eps", "ablation", 1.4, seed=6)
    predictions = eps.with_name("predictions.csv")
    lines = predictions.read_text().splitlines()
    predictions.write_text("\n".join(lines[:-10]) + "\n")  # 10 patients fewer: no paired test possible
    metrics_file(root / "outputs/llm/synthetic_icu/wo_stage2/mortality", 0.8, _descriptor("wo_stage2", "ablation"), seed=7)
    metrics_file(root / "outputs/llm/synthetic_icu/qd/mortality", 0.2, _descriptor("qd", "prompting"), seed=8)
    # Another data set where only the base model was evaluated: its EAG-RL rows are listed as missing.
    metrics_file(root / "outputs/llm/synthetic_ward/qd/mortality", 0.2, _descriptor("qd", "prompting", "synthetic_ward"))
    # A perturbed evaluation of EAG-RL: not a row of this table.
    metrics_file(root / "outputs/robustness/synthetic_icu/eag_rl/mortality/shuffle_1", 0.1,
                 {**_descriptor("eag_rl", "eag_rl"), "condition": "shuffle:1"})


LAYOUT = Layout(pairs=[("synthetic_icu", "mortality"), ("synthetic_icu", "readmission")],
                methods=order_methods(["eag_rl", "grpo", "dapo", "wo_stage1", "wo_ratt", "wo_eps", "released_weights"]))


@pytest.fixture
def written(tmp_path):
    _tree(tmp_path)
    collection = collect(REPORT, tmp_path)
    assert not collection.skipped
    paths = write_ablations(collection, LAYOUT, REPORT, PAIRED, tmp_path / "results", alpha=0.05,
                            dataset_order=["synthetic_icu", "synthetic_ward"])
    return tmp_path, paths


def test_labels_and_order_follow_the_paper():
    assert [row_label(m) for m in order_methods(["eag_rl", "grpo", "dapo", "wo_stage1", "wo_ratt", "wo_eps",
                                                 "released_weights", "expert_gru", "expert_retain"])] == [
        "EAG-RL", "w/o Stage 1", "w/o Stage 2", "w/o R_att", "w/o ε(τ)", "released reward weights",
        "guidance: GRU", "guidance: RETAIN", "GRPO", "DAPO", "QD (base)"]
    assert row_label("guided", expert="concare") == "guidance: ConCare"
    assert row_label("some_new_variant") == "some_new_variant"


def test_rows_present_and_missing_per_block(written):
    root, _ = written
    blocks = build_blocks(collect(REPORT, root).records, LAYOUT, PAIRED, ["synthetic_icu", "synthetic_ward"])
    assert [(b.dataset, b.task) for b in blocks] == [("synthetic_icu", "mortality"), ("synthetic_icu", "readmission"),
                                                     ("synthetic_ward", "mortality")]
    icu = blocks[0]
    status = {row.label: row.status for row in icu.rows}
    assert list(status) == ["EAG-RL", "w/o Stage 1", "w/o Stage 2", "w/o R_att", "w/o ε(τ)", "released reward weights",
                            "guidance: GRU", "GRPO", "DAPO", "QD (base)"]
    assert [label for label, s in status.items() if s == "missing"] == ["released reward weights", "DAPO"]
    assert icu.row(FULL).record.descriptor.condition == "standard" and not icu.row(FULL).note  # not the shuffled one
    assert all(row.status == "missing" for row in blocks[1].rows)  # a configured pair with nothing run yet
    ward = {row.method: row.status for row in blocks[2].rows}
    assert ward["qd"] == "ok" and ward["eag_rl"] == "missing"


def test_delta_and_paired_p_against_eag_rl(written):
    root, paths = written
    data = json.loads(paths[2].read_text())
    icu = data["synthetic_icu"]["mortality"]
    # Identical predictions: no difference, and the test cannot reject "no difference".
    assert icu["w/o R_att"]["delta_auroc"] == 0.0 and icu["w/o R_att"]["delta_auprc"] == 0.0
    assert icu["w/o R_att"]["p_auroc"] == 1.0 and icu["w/o R_att"]["p_auprc"] == 1.0
    # A chance-level variant against a strong EAG-RL: clearly worse, clearly significant.
    assert icu["GRPO"]["delta_auroc"] == pytest.approx(icu["GRPO"]["auroc_mean"] - icu["EAG-RL"]["auroc_mean"])
    assert icu["GRPO"]["delta_auroc"] < -0.2
    assert icu["GRPO"]["p_auroc"] < 0.05 and icu["GRPO"]["p_auprc"] < 0.05
    # Not on the same patients: Δ of the means is shown, the paired p is not (and the note says why).
    assert icu["w/o ε(τ)"]["p_auroc"] is None and icu["w/o ε(τ)"]["delta_auroc"] is not None
    rows = list(csv.DictReader(paths[1].open()))
    eps = next(r for r in rows if r["dataset"] == "synthetic_icu" and r["task"] == "mortality" and r["method"] == "wo_eps")
    assert "same patients" in eps["note"] and eps["p_auroc"] == ""


def test_json_shape(written):
    _, paths = written
    data = json.loads(paths[2].read_text())
    assert set(data) == {"synthetic_icu", "synthetic_ward"}
    assert set(data["synthetic_icu"]) == {"mortality", "readmission"}
    full = data["synthetic_icu"]["mortality"]["EAG-RL"]
    assert {"status", "method", "n", "parse_failure_rate", "auroc_mean", "auroc_std", "auprc_mean", "auprc_std"} <= set(full)
    assert not any(key.startswith(("delta_", "p_")) for key in full)  # the reference row
    assert full["n"] == 120 and full["status"] == "ok"
    assert {"delta_auroc", "p_auroc", "delta_auprc", "p_auprc"} <= set(data["synthetic_icu"]["mortality"]["GRPO"])
    assert data["synthetic_icu"]["mortality"]["DAPO"] == {"status": "missing", "method": "dapo"}
    assert data["synthetic_ward"]["mortality"]["QD (base)"]["delta_auroc"] is None  # no EAG-RL there to compare with
    for task in data.values():
        for rows in task.values():
            for numbers in rows.values():
                assert all(not (isinstance(v, float) and math.isnan(v)) for v in numbers.values())


def test_markdown_says_who_wins_from_the_numbers(written):
    _, paths = written
    text = paths[0].read_text()
    line = next(line for line in text.splitlines() if line.startswith("- **synthetic_icu · mortality**"))
    assert "EAG-RL vs GRPO: EAG-RL has the higher mean on every metric" in line
    assert "(significant)" in line
    assert "EAG-RL vs DAPO: DAPO has not been evaluated here." in line
    ward = next(line for line in text.splitlines() if line.startswith("- **synthetic_ward · mortality**"))
    assert "EAG-RL has not been evaluated here" in ward
    assert "null hypothesis: no difference" in text
    assert "| guidance: GRU" in text and "missing" in text


def test_markdown_reports_when_a_baseline_wins(tmp_path):
    _rl(tmp_path, "eag_rl", "eag_rl", 0.0, seed=2)
    _rl(tmp_path, "dapo", "rl", 1.5, seed=1)
    paths = write_ablations(collect(REPORT, tmp_path), LAYOUT, REPORT, PAIRED, tmp_path / "results")
    text = paths[0].read_text()
    assert "EAG-RL vs DAPO: DAPO has the higher or equal mean on every metric" in text
    assert json.loads(paths[2].read_text())["synthetic_icu"]["mortality"]["DAPO"]["delta_auroc"] > 0.2


def test_claim_c3_tests_the_same_ablations():
    (c3,) = [claim for claim in load_claims() if claim["test"] == "ablation_order"]
    assert (c3["without_stage1"], c3["without_stage2"], c3["without_ratt"], c3["without_eps"]) == ABLATIONS
    assert c3["eag_rl"] == FULL


def test_cli_reads_pairs_variants_and_labels_from_params(tmp_path, monkeypatch):
    _tree(tmp_path)
    params = {
        "datasets": {"synthetic_icu": {}, "synthetic_ward": {}},
        "metrics": {"bootstrap_resamples": 50, "seed": 3},
        "report": {"sources": SOURCES},
        "paper": {"claims": {"alpha": 0.05}},
        "eag_rl": {"rl": {"pairs": [{"dataset": "synthetic_icu", "task": "mortality"}],
                          "variants": {"eag_rl": {"family": "eag_rl"}, "grpo": {"family": "rl"},
                                       "dapo": {"family": "rl"}, "guided": {"expert": "retain"}}}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    layout = layout_from_params(params, METHODS)
    assert layout.label("guided") == "guidance: RETAIN"
    monkeypatch.chdir(tmp_path)
    assert main(["report-ablations", "--out", "out"]) == 0
    data = json.loads((tmp_path / "out/ablations.json").read_text())
    rows = data["synthetic_icu"]["mortality"]
    assert rows["guidance: RETAIN"] == {"status": "missing", "method": "guided"}
    assert rows["guidance: GRU"]["status"] == "ok"  # on disk, not configured: still a row
    assert {"w/o Stage 1", "w/o Stage 2", "w/o R_att", "w/o ε(τ)", "QD (base)"} <= set(rows)
    assert (tmp_path / "out/ablations.md").exists() and (tmp_path / "out/ablations.csv").exists()
