"""Reports read only the outputs of stages of the current dvc.yaml (benchmark/pipeline_outs.py)."""

from __future__ import annotations

import os

import pytest
import yaml
from dvc.repo import Repo

from benchmark.pipeline_outs import declared_only, declared_outs, is_declared, persisted_outs
from benchmark.reports.collect import ReportConfig, collect
from tests.benchmark.fake_results import metrics_file

PATTERN = "outputs/llm/{dataset}/{method}/{task}/metrics.json"


@pytest.fixture
def project(tmp_path):
    """A DVC project whose pipeline writes outputs/llm/icu/vanilla only; a removed stage left outputs/llm/icu/qd."""
    Repo.init(str(tmp_path), no_scm=True).close()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"methods": ["vanilla"]}))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"llm_eval": {
        "foreach": "${methods}", "do": {"cmd": "true", "outs": ["outputs/llm/icu/${item}"]}}}}))
    for method in ("vanilla", "qd"):
        metrics_file(tmp_path / "outputs/llm/icu" / method / "mortality", 0.5,
                     {"dataset": "icu", "task": "mortality", "method": method, "family": "prompting"})
    return tmp_path


def test_declared_outs_are_the_interpolated_outs_of_the_pipeline(project, tmp_path):
    assert declared_outs(project) == ["outputs/llm/icu/vanilla"]
    assert declared_outs(tmp_path / "outputs") is None  # no DVC project there
    assert is_declared("outputs/llm/icu/vanilla/mortality/metrics.json", ["outputs/llm/icu/vanilla"])
    assert not is_declared("outputs/llm/icu/vanilla2/x", ["outputs/llm/icu/vanilla"])


def test_collect_leaves_out_what_a_removed_stage_wrote_and_says_so(project):
    collection = collect(ReportConfig(sources=[{"pattern": PATTERN}]), project)
    assert [r.descriptor.method for r in collection.records] == ["vanilla"]
    (skipped, reason), = collection.skipped
    assert skipped.as_posix() == "outputs/llm/icu/qd/mortality/metrics.json" and "delete it" in reason


def test_declared_only_filters_paths_of_the_project(project, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(project)
    stale, kept = project / "outputs/llm/icu/qd", project / "outputs/llm/icu/vanilla"
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert declared_only([stale, kept, elsewhere]) == [kept, elsewhere]
    assert os.path.samefile(declared_only([kept], project)[0], kept)


def test_persisted_outs_are_the_outs_marked_persist(tmp_path):
    Repo.init(str(tmp_path), no_scm=True).close()
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "search": {"cmd": "true", "outs": [{"outputs/search": {"persist": True}}, "outputs/summary.json"]},
        "report": {"cmd": "true", "outs": ["results/table.md"]}}}))
    assert persisted_outs(tmp_path) == ["outputs/search"]
    assert persisted_outs(tmp_path / "outputs") == []  # no DVC project there
