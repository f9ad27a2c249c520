"""The rows of the TJH tables on small fixtures: the pipeline's reports restricted to TJH, the counts from the
workbook to the splits, and the prompt lengths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.config import ConfigError, select_datasets
from benchmark.data.cohort import Cohort
from eagrl.ops.tjh_rows import count_rows, prompt_length_rows
from eagrl.registry import METHODS
from tests.eagrl.ops.conftest import LEVELS


def _json(path: Path):
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------ the tables
def test_every_table_holds_tjh_rows_only(tables):
    assert {r["dataset"] for r in _json(tables / "cohorts.json")} == {"tjh"}
    assert {r["dataset"] for r in _json(tables / "cohort_signal.json")} == {"tjh"}
    experts = _json(tables / "experts.json")
    assert {(r["dataset"], r["model"]) for r in experts} == {("tjh", "logistic")}
    robustness = _json(tables / "robustness.json")
    assert {r["dataset"] for r in robustness["conditions"]} == {"tjh"}
    assert sorted(r["condition"] for r in robustness["conditions"]) == sorted(LEVELS)
    cross = _json(tables / "cross_domain.json")
    assert {(r["source"], r["target"], r["method"]) for r in cross} == {("src", "tjh", "logistic")}
    assert (tables / "plots" / "robustness" / "tjh_mortality.png").exists()
    assert not (tables / "plots" / "robustness" / "other_mortality.png").exists()
    for stem in ("cohorts", "experts", "robustness", "cross_domain", "counts", "external_reference"):
        for suffix in (".md", ".csv", ".json"):
            assert (tables / f"{stem}{suffix}").exists(), f"{stem}{suffix}"


def test_the_external_reference_holds_the_tjh_rows_of_clinicrealm(tables):
    data = _json(tables / "external_reference.json")
    assert data["source"]["name"] == "ClinicRealm" and {r["dataset"] for r in data["rows"]} == {"tjh"}
    experts = {(r["method"], r["metric"]): r for r in data["rows"] if r["comparator"] == "expert"}
    assert set(experts) == {(m, k) for m in ("ConCare", "AdaCare", "GRU") for k in ("auroc", "auprc")}
    # the fixture trains logistic only, which ClinicRealm does not report: their experts have no run of ours here
    assert {r["verdict"] for r in experts.values()} == {"not reproduced"}
    assert all("no metrics file" in r["note"] for r in experts.values())
    assert "ClinicRealm" in (tables / "external_reference.md").read_text()


def test_the_empty_faithfulness_table_of_real_data_is_not_kept(tables):
    assert not list(tables.glob("faithfulness.*"))


def test_counts_go_from_the_workbook_to_the_splits(tables, workspace):
    rows = _json(tables / "counts.json")
    cohort = Cohort.load(workspace / "data" / "cohorts" / "tjh")
    y = cohort.label("mortality")
    assert rows[0] == {"step": "workbook (every patient in the file)", "patients": len(cohort) + 4,
                       "deaths": int(y.sum()) + 3, "survivors": len(cohort) + 4 - int(y.sum()) - 3}
    assert rows[1]["step"] == "cohort (4 patients without a dated row dropped)" and rows[1]["patients"] == len(cohort)
    splits = {r["step"]: r for r in rows[2:]}
    assert splits["test split"]["patients"] == 60
    assert sum(r["patients"] for r in splits.values()) == len(cohort)
    assert sum(r["deaths"] for r in splits.values()) == int(y.sum())


def test_counts_of_a_cohort_without_file_counts(small_ward):
    rows = count_rows(small_ward)
    assert [r["step"] for r in rows] == ["cohort", "train split", "val split", "test split"]
    assert rows[0]["patients"] == rows[0]["deaths"] + rows[0]["survivors"] == len(small_ward)


def test_the_filters_keep_the_default_and_refuse_unknown_data_sets(workspace, tmp_path):
    from benchmark.reports.cohorts import report_cohorts

    report_cohorts(workspace / "params.yaml", workspace / "data" / "cohorts", tmp_path, methods=METHODS)  # no filter: every data set
    assert {r["dataset"] for r in _json(tmp_path / "cohorts.json")} == {"src", "tjh", "other"}
    assert select_datasets(["a", "b", "c"], ["c", "a"]) == ["a", "c"]
    with pytest.raises(ConfigError, match=r"\['mimic_iv'\] not under 'datasets'.*eagrl configure"):
        report_cohorts(workspace / "params.yaml", workspace / "data" / "cohorts", tmp_path, datasets=["mimic_iv"], methods=METHODS)


# ------------------------------------------------------------------------------------ prompt lengths
def test_prompt_lengths_count_the_rendered_prompts(workspace):
    from methods.llm.config import PromptConfig
    from methods.llm.prompting import rendered_prompts
    from tests.methods.llm.conftest import _corpus, build_tokenizer

    cohort = Cohort.load(workspace / "data" / "cohorts" / "tjh")
    tokenizer = build_tokenizer(_corpus(cohort))
    rows = prompt_length_rows([cohort], tokenizer, workspace / "params.yaml", "qd", tokenizer_name="tiny")
    test = cohort.subset("test")
    expected = [len(tokenizer(r.text, add_special_tokens=False)["input_ids"])
                for r in rendered_prompts(tokenizer, test, "mortality", "qd", PromptConfig())]
    assert rows == [{"dataset": "tjh", "style": "qd", "split": "test", "patients": len(test), "features": 4,
                     "tokens_median": float(np.median(expected)), "tokens_min": min(expected),
                     "tokens_max": max(expected), "tokenizer": "tiny"}]
