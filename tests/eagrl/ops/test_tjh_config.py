"""The checks of `eagrl tjh-tables`: the workbook, the output folder, and restricting the experts."""

from __future__ import annotations

import pytest
import yaml

from benchmark.config import ConfigError
from eagrl.ops.tjh_config import TITLE, check_out, check_workbook, restrict_models


def test_workbook_and_output_folder_checks(tmp_path):
    with pytest.raises(ConfigError, match=r"TJH workbook not found.*make tjh-tables TJH="):
        check_workbook(tmp_path / "absent.xlsx")
    (tmp_path / "book.csv").write_text("x")
    with pytest.raises(ConfigError, match="expected the Excel workbook"):
        check_workbook(tmp_path / "book.csv")
    check_out(tmp_path / "new")  # absent: fine
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "main.md").write_text("# Main\n")
    with pytest.raises(ConfigError, match="not written by `eagrl tjh-tables`"):
        check_out(foreign)
    ours = tmp_path / "tjh"
    ours.mkdir()
    (ours / "README.md").write_text(f"# {TITLE}\n")
    check_out(ours)


def test_restrict_models_keeps_comments_and_refuses_unknown_models(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experts:\n  models: [logistic, gru, concare]  # the matrix\n  top_k: 3  # why\n")
    restrict_models(path, ["concare", "logistic"])
    assert yaml.safe_load(path.read_text())["experts"] == {"models": ["logistic", "concare"], "top_k": 3}
    assert "# why" in path.read_text()
    with pytest.raises(ConfigError, match=r"--models \['retain'\]: not in experts.models"):
        restrict_models(path, ["retain"])
