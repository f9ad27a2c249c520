"""`eagrl train-hybrid` on the small cohort with the tiny backbone: the expert stage's files, a hybrid descriptor."""

from __future__ import annotations

import json

import pytest
import yaml

from benchmark.evaluate import read_predictions
from benchmark.reports.collect import ReportConfig, collect
from eagrl.cli import main
from eagrl.registry import load_model
from methods.experts.importance import read_importance
from tests.methods.hybrid.conftest import tiny_params

FILES = {"model.pt", "metrics.json", "predictions_val.csv", "predictions_test.csv",
         "importance_train.jsonl", "importance_val.jsonl", "importance_test.jsonl"}


@pytest.fixture(scope="module")
def workspace(small_icu, tiny_backbone, tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid-stage")
    small_icu.save(root / "cohorts" / "small_icu")
    params = {"datasets": {"small_icu": {"source": "synthetic", "domain": "icu"}},
              "metrics": {"bootstrap_resamples": 20, "seed": 1}, **tiny_params(tiny_backbone)}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["train-hybrid", "small_icu", "hybrid_retriever", "--params", str(root / "params.yaml"),
                 "--cohorts", str(root / "cohorts"), "--out", str(root / "models" / "hybrid")]) == 0
    return root


def test_stage_writes_the_expert_layout_per_task(workspace, small_icu):
    for task in small_icu.tasks:
        folder = workspace / "models" / "hybrid" / "small_icu" / "hybrid_retriever" / task
        assert {p.name for p in folder.iterdir()} == FILES
        model = load_model(folder / "model.pt")
        assert model.name == "hybrid_retriever" and model.task == task
        test = small_icu.subset("test")
        frame = read_predictions(folder / "predictions_test.csv")
        assert frame["id"].tolist() == test.ids.tolist()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["n"] == len(test) and metrics["model"] == "hybrid_retriever"
        assert metrics["descriptor"]["family"] == "hybrid" and metrics["descriptor"]["task"] == task
        assert metrics["descriptor"]["backbone"] == model.config.backbone.source
        records = read_importance(folder / "importance_test.jsonl")
        assert len(records) == len(test) and all(len(r["top_k"]) == 2 for r in records)


def test_main_table_collects_hybrids_as_their_family(workspace, small_icu):
    config = ReportConfig(sources=[
        {"pattern": "models/hybrid/{dataset}/{method}/{task}/metrics.json", "fields": {"family": "hybrid"}}])
    records = collect(config, workspace).records
    assert {(r.descriptor.task, r.descriptor.method, r.descriptor.family) for r in records} == {
        (task, "hybrid_retriever", "hybrid") for task in small_icu.tasks}


def test_unknown_model_is_refused(workspace):
    with pytest.raises(SystemExit):
        main(["train-hybrid", "small_icu", "hybrid_nope", "--params", str(workspace / "params.yaml")])
