"""Fixtures of the `eagrl tjh-tables` tests: a folder laid out like the command's scratch copy, and the TJH-only
tables written from it (built once for the tests of tjh_rows and tjh_readme)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from benchmark.data.cohort import Cohort
from benchmark.data.synthetic import SyntheticConfig, generate
from eagrl.cli import main
from eagrl.ops.tjh_rows import write_tables

LEVELS = ["none", "shuffle:1", "mask:0.5"]


def _as_real(cohort: Cohort, dropped: int, dropped_deaths: int) -> Cohort:
    """A synthetic cohort dressed as a real one: no ground truth, workbook counts in its provenance."""
    y = cohort.label("mortality")
    counts = {"patients_in_file": len(cohort) + dropped, "deaths_in_file": int(y.sum()) + dropped_deaths}
    return dataclasses.replace(cohort, salient=None, true_risk=None, provenance={"source": "tjh", "counts": counts})


@pytest.fixture(scope="package")
def workspace(tmp_path_factory) -> Path:
    """A folder laid out like the scratch copy: params.yaml, data/cohorts, models/experts, outputs/... for a
    source `src`, the target `tjh` and another target `other` whose rows must not appear in the TJH tables."""
    root = tmp_path_factory.mktemp("tjh-workspace")
    src = generate(SyntheticConfig(domain="icu", n_patients=200, n_test=50, seed=11,
                                   features=["Heart Rate", "Glucose", "pH", "Temperature"]), name="src")
    tjh = _as_real(generate(SyntheticConfig(domain="ward", n_patients=160, n_test=60, seed=12,
                                            features=["glucose", "PH value", "D-D dimer", "albumin"]), name="tjh"), 4, 3)
    other = generate(SyntheticConfig(domain="ward", n_patients=160, n_test=60, seed=13,
                                     features=["glucose", "PH value", "albumin"]), name="other")
    cohorts = root / "data" / "cohorts"
    for cohort in (src, tjh, other):
        cohort.save(cohorts / cohort.name)
    params = {
        "seed": 42,
        "datasets": {"src": {"source": "synthetic"}, "tjh": {"source": "tjh"}, "other": {"source": "synthetic"}},
        "metrics": {"bootstrap_resamples": 20},
        "experts": {"models": ["logistic"]},
        "robustness": {"dl": {"levels": LEVELS}},
        "cross_domain": {"pairs": [{"source": "src", "target": "tjh", "task": "mortality"},
                                   {"source": "src", "target": "other", "task": "mortality"}]},
        "llm": {"prompt": {"decimals": 2, "chat_template": True}},
        "report": {"sources": [{"pattern": "models/experts/{dataset}/{method}/{task}/metrics.json",
                                "fields": {"family": "expert"}}]},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    common = ["--params", str(root / "params.yaml"), "--cohorts", str(cohorts)]
    experts = str(root / "models" / "experts")
    for name in ("src", "tjh", "other"):
        assert main(["train-expert", name, "logistic", *common, "--out", experts]) == 0
    for name in ("tjh", "other"):
        assert main(["robustness-dl", name, "experts", "logistic", *common, "--out", str(root / "outputs" / "robustness"),
                     "--models", experts]) == 0
        assert main(["cross-domain", "src", name, "mortality", "logistic", *common,
                     "--out", str(root / "outputs" / "cross_domain"), "--models", experts]) == 0
    return root


@pytest.fixture(scope="package")
def tables(workspace) -> Path:
    folder = workspace / "results" / "tjh"
    write_tables(workspace, folder, source="src", dataset="tjh")
    return folder
