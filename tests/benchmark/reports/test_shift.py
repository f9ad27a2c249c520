"""The robustness and cross-domain reports, from fake metrics files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from benchmark.reports.shift import report_cross_domain, report_robustness
from benchmark.reports.shift_rows import degradation_rows, robustness_rows


def _metrics(path: Path, auroc: float, auprc: float, n: int = 40, failures: int = 0, **descriptor) -> None:
    path.mkdir(parents=True, exist_ok=True)
    data = {"n": n, "positives": 8, "parse_failures": failures, "parse_failure_rate": failures / n,
            "auroc": {"mean": auroc, "std": 0.05}, "auprc": {"mean": auprc, "std": 0.04},
            "descriptor": {"backbone": None, "condition": "standard", "train_dataset": None, **descriptor}}
    (path / "metrics.json").write_text(json.dumps(data))


def _robustness_tree(root: Path) -> None:
    scores = {"concare": {"none": 0.80, "shuffle:0.5": 0.70, "shuffle:1": 0.60, "noise:0.1": 0.75},
              "eag_rl": {"none": 0.70, "shuffle:0.5": 0.69, "shuffle:1": 0.68, "noise:0.1": 0.70}}
    for method, levels in scores.items():
        family = "expert" if method == "concare" else "eag_rl"
        for condition, auroc in levels.items():
            folder = root / "ds" / method / "mortality" / condition.replace(":", "_")
            _metrics(folder, auroc, auroc / 2, failures=2 if family == "eag_rl" else 0, dataset="ds",
                     task="mortality", method=method, family=family, condition=condition)
    (root / "ds" / "gru" / "mortality" / ".tmp").mkdir(parents=True)  # a stage still writing: ignored


def test_robustness_rows_and_degradation(tmp_path):
    _robustness_tree(tmp_path)
    rows = robustness_rows(tmp_path)
    assert len(rows) == 8
    row = next(r for r in rows if r["method"] == "concare" and r["condition"] == "shuffle:1")
    assert math.isclose(row["d_auroc"], -0.2) and math.isclose(row["rel_auroc_pct"], -25.0)
    summary = degradation_rows(rows)
    assert [s["method"] for s in summary] == ["eag_rl", "concare"]  # least shuffle degradation first
    assert math.isclose(summary[1]["shuffle_d_auroc"], -0.15) and math.isclose(summary[1]["noise_d_auroc"], -0.05)
    assert math.isnan(summary[1]["mask_d_auroc"]) and summary[0]["parse_failure_rate"] == 0.05


def test_report_robustness_writes_tables_and_plots(tmp_path):
    _robustness_tree(tmp_path / "outputs")
    paths = report_robustness(tmp_path / "outputs", tmp_path / "results", tmp_path / "no-params.yaml")
    names = sorted(p.relative_to(tmp_path / "results").as_posix() for p in paths)
    assert names == ["plots/robustness/ds_mortality.png", "robustness.csv", "robustness.json", "robustness.md"]
    table = pd.read_csv(tmp_path / "results" / "robustness.csv")
    assert len(table) == 8 and set(table["condition"]) == {"none", "shuffle:0.5", "shuffle:1", "noise:0.1"}
    text = (tmp_path / "results" / "robustness.md").read_text()
    assert "0.800 ± 0.050" in text and "## ds / mortality" in text
    data = json.loads((tmp_path / "results" / "robustness.json").read_text())
    assert data["degradation"][1]["mask_d_auroc"] is None  # NaN is written as null
    assert (tmp_path / "results" / "plots" / "robustness" / "ds_mortality.png").stat().st_size > 10_000


def test_report_cross_domain(tmp_path):
    root = tmp_path / "outputs"
    for method, family, auroc in (("concare", "expert", 0.55), ("eag_rl", "eag_rl", 0.66), ("vanilla", "prompting", 0.5)):
        _metrics(root / "icu_to_ward" / method / "mortality", auroc, 0.3, dataset="ward", task="mortality",
                 method=method, family=family, train_dataset="icu")
    paths = report_cross_domain(root, tmp_path / "results", tmp_path / "no-params.yaml", tmp_path)
    table = pd.read_csv(paths[1])
    assert list(table["method"]) == ["eag_rl", "concare", "vanilla"]  # best transfer first
    assert set(table["source"]) == {"icu"} and set(table["target"]) == {"ward"}
    assert "## icu → ward / mortality" in paths[0].read_text()
    assert paths[3].name == "cross_domain.png" and paths[3].stat().st_size > 10_000
