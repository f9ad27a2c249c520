"""End to end: `eagrl train-expert` then `eagrl report-experts` on a tiny cohort and tiny params."""

from __future__ import annotations

import json

import pytest
import yaml

from benchmark.evaluate import read_predictions
from eagrl.cli import main
from methods.experts import load_expert
from methods.experts.importance import read_importance

PARAMS = {
    "datasets": {"small_icu": {"source": "synthetic", "domain": "icu"}},
    "metrics": {"bootstrap_resamples": 20, "seed": 1},
    "experts": {
        "models": ["logistic", "gru"],
        "top_k": 2,
        "train": {"epochs": 3, "batch_size": 64, "progress": False},
        "gru": {"hidden": 8},
    },
}


@pytest.fixture(scope="module")
def workspace(small_icu, tmp_path_factory):
    root = tmp_path_factory.mktemp("experts")
    small_icu.save(root / "cohorts" / "small_icu")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    common = ["--params", str(root / "params.yaml"), "--cohorts", str(root / "cohorts")]
    for model in ("logistic", "gru"):
        assert main(["train-expert", "small_icu", model, *common, "--out", str(root / "models")]) == 0
    assert main(["report-experts", *common, "--experts", str(root / "models"), "--out", str(root / "results")]) == 0
    return root


def test_train_expert_writes_every_output_per_task(workspace, small_icu):
    for task in small_icu.tasks:
        folder = workspace / "models" / "small_icu" / "gru" / task
        expert = load_expert(folder / "model.pt")
        assert expert.task == task and expert.features == small_icu.feature_names
        test = small_icu.subset("test")
        frame = read_predictions(folder / "predictions_test.csv")
        assert frame["id"].tolist() == test.ids.tolist() and frame["label"].tolist() == test.label(task).tolist()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["n"] == len(test) and 0 <= metrics["auroc"]["mean"] <= 1
        assert metrics["training"]["epochs_run"] == 3 and len(metrics["history"]) == 3
        for split in ("train", "val", "test"):
            records = read_importance(folder / f"importance_{split}.jsonl")
            assert len(records) == len(small_icu.subset(split))
            assert all(len(r["top_k"]) == 2 and len(r["ranking"]) == len(small_icu.features) for r in records)


def test_report_tables_cover_models_tasks_floor_and_ceiling(workspace, small_icu):
    rows = json.loads((workspace / "results" / "experts.json").read_text())
    models = {(r["task"], r["model"]) for r in rows}
    for task in small_icu.tasks:
        assert {(task, "logistic"), (task, "gru"), (task, "ceiling (true risk)")} <= models
    gru = next(r for r in rows if r["model"] == "gru")
    assert "auroc_minus_floor_p" in gru and 0 < gru["auroc_minus_floor_p"] <= 1
    text = (workspace / "results" / "experts.md").read_text()
    assert "± " in text and "ceiling (true risk)" in text
    faith = json.loads((workspace / "results" / "faithfulness.json").read_text())
    random = next(r for r in faith if r["model"].startswith("random"))
    assert random["recall_mean"] == pytest.approx(2 / len(small_icu.features))
    assert {r["model"] for r in faith} >= {"logistic", "gru", "most_abnormal (abs z, last visit)"}
    assert all(0 <= r["jaccard_mean"] <= 1 for r in faith)


def test_unknown_data_set_is_a_configuration_error(workspace, capsys):
    code = main(["train-expert", "nowhere", "gru", "--params", str(workspace / "params.yaml")])
    assert code == 2 and "nowhere" in capsys.readouterr().err


def test_a_second_run_writes_the_same_bytes(workspace):
    """No wall-clock time in any output (model.pt, metrics.json, ...): a re-run leaves every DVC hash as it was."""
    common = ["--params", str(workspace / "params.yaml"), "--cohorts", str(workspace / "cohorts")]
    for model in ("logistic", "gru"):
        assert main(["train-expert", "small_icu", model, *common, "--out", str(workspace / "again")]) == 0

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    first, second = files(workspace / "models"), files(workspace / "again")
    assert {p.name for p in first} >= {"model.pt", "metrics.json"} and first.keys() == second.keys()
    assert [p for p in first if first[p] != second[p]] == []
    for path in (p for p in first if p.name == "metrics.json"):
        assert not [key for key in json.loads(first[path])["training"] if "seconds" in key]
    for path in (p for p in first if p.name == "model.pt"):
        assert not [key for key in load_expert(workspace / "models" / path).summary if "seconds" in key]
    rows = json.loads((workspace / "results" / "experts.json").read_text())  # training times: results/runtime.md
    assert not [key for row in rows for key in row if "seconds" in key]
    assert "train time" not in (workspace / "results" / "experts.md").read_text()
