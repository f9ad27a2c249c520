"""methods/llm/evaluation.py: the LLM results collector."""

from __future__ import annotations

import shutil

from methods.llm.evaluation import collect
from tests.benchmark.fake_results import metrics_file


def test_collect_skips_the_hidden_folders_of_interrupted_runs(tmp_path):
    folder = tmp_path / "synthetic_icu" / "qd" / "mortality"
    metrics_file(folder, 1.0)
    # A killed stage leaves its temporary output beside the real one (benchmark.runtime.atomic_directory).
    shutil.copytree(folder.parent, tmp_path / "synthetic_icu" / ".qd.abc123")
    rows = collect(tmp_path)
    assert len(rows) == 1 and rows[0]["task"] == "mortality"
