"""Paper vs reproduced: the template loads, and each verdict is given where it should be."""

from __future__ import annotations

import pytest
import yaml

from benchmark.config import ConfigError
from benchmark.reports.paper.compare import (
    TEMPLATE,
    ComparisonConfig,
    backbone_matches,
    compare_paper,
    filled_cells,
    load_template,
    verdict,
)
from tests.benchmark.fake_results import record

CONFIG = ComparisonConfig(epsilon={"auroc": 0.01, "auprc": 0.01}, acceptable={"auroc": 0.03, "auprc": 0.05})


def test_the_shipped_template_is_valid_and_holds_no_unread_number():
    template = load_template()
    assert set(template["tables"]) == {"table1", "table2", "table3"}
    # Only numbers actually read in the paper may be filled; none could be read from this workplace.
    assert filled_cells(template) == 0


@pytest.mark.parametrize("paper, reproduced, expected", [
    (0.80, 0.805, "fully reproduced"),
    (0.80, 0.78, "acceptable"),
    (0.80, 0.70, "unacceptable"),
    (0.80, None, "not reproduced"),
    (None, 0.70, "no paper number"),
])
def test_verdicts(paper, reproduced, expected):
    assert verdict(paper, reproduced, "auroc", CONFIG) == expected


def test_backbone_matching():
    assert backbone_matches("Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct")
    assert backbone_matches(None, None)
    assert not backbone_matches("Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-3B-Instruct")
    assert not backbone_matches(None, "smollm2")


def _template(tmp_path, cells, scale=1):
    data = {"tables": {"t1": {"scale": scale, "columns": [
        {"id": "icu_auroc", "dataset": "synthetic_icu", "task": "mortality", "metric": "auroc"},
        {"id": "icu_auprc", "dataset": "synthetic_icu", "task": "mortality", "metric": "auprc"}],
        "rows": [{"row": "GRU", "match": {"method": "gru"}, "backbone": None, "cells": cells},
                 {"row": "ConCare", "match": {"method": "concare"}, "backbone": None, "cells": {"icu_auroc": 0.9}}]}}}
    path = tmp_path / "tables.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_template(path)


def test_compare_paper_rows(tmp_path):
    gru = record(tmp_path / "gru", 1.5, dataset="synthetic_icu", task="mortality", method="gru", family="expert")
    reproduced = gru.mean("auroc")
    rows = compare_paper([gru], CONFIG, _template(tmp_path, {"icu_auroc": {"mean": reproduced * 100 + 0.5, "std": 1.0}}, scale=100))
    by_cell = {(r["row"], r["metric"]): r for r in rows}
    assert by_cell[("GRU", "auroc")]["verdict"] == "fully reproduced"
    assert by_cell[("GRU", "auroc")]["delta"] == pytest.approx(-0.005)
    assert by_cell[("GRU", "auroc")]["paper_std"] == pytest.approx(0.01)
    assert by_cell[("GRU", "auprc")]["verdict"] == "no paper number"
    assert by_cell[("ConCare", "auroc")]["verdict"] == "not reproduced"
    assert ("ConCare", "auprc") not in by_cell  # neither number: left out


def test_malformed_cells_are_named(tmp_path):
    with pytest.raises(ConfigError, match="icu_auroc"):
        _template(tmp_path, {"icu_auroc": "0.8"})
    with pytest.raises(ConfigError, match="nope"):
        _template(tmp_path, {"nope": 0.8})


def test_template_path_is_the_package_file():
    assert TEMPLATE.name == "tables.yaml" and TEMPLATE.exists()
