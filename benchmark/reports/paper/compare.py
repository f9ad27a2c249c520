"""Paper vs reproduced: every cell of the transcription template (``tables.yaml``) against our numbers.

For each cell of Tables 1–3 that has a paper number or a reproduced number, the comparison reports the
paper's value, the reproduced bootstrap mean of the matching record (method, backbone, data set, task,
metric, condition and training data set, see the template's header), Δ = reproduced − paper, and a
verdict:

* **fully reproduced** — ``|Δ| ≤ ε`` (``paper.epsilon.<metric>`` in params.yaml);
* **acceptable** — ``ε < |Δ| ≤ paper.acceptable.<metric>``;
* **unacceptable** — ``|Δ|`` beyond that;
* **not reproduced** — the paper gives a number but this profile produced none for the cell (e.g. the
  default profile has no MIMIC-IV, and no 7B backbone);
* **no paper number** — we have a number but the template's cell is empty.

Cells with neither number are left out. The tolerances are this suite's choice, not the paper's: the
paper's own bootstrap std (when transcribed) is shown beside Δ so a reader can judge them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.config import ConfigError, option
from benchmark.descriptor import STANDARD
from benchmark.reports.collect import Record

TEMPLATE = Path(__file__).with_name("tables.yaml")
VERDICTS = ("fully reproduced", "acceptable", "unacceptable", "not reproduced", "no paper number")


@dataclass
class ComparisonConfig:
    """Tolerances of the paper comparison (``paper.epsilon`` and ``paper.acceptable`` in params.yaml)."""

    epsilon: dict[str, float] = option({"auroc": 0.01, "auprc": 0.01}, help="Per metric: |Δ| ≤ ε is 'fully reproduced'.")
    acceptable: dict[str, float] = option({"auroc": 0.03, "auprc": 0.05}, help="Per metric: ε < |Δ| ≤ this is 'acceptable'; beyond is 'unacceptable'.")

    def __post_init__(self) -> None:
        for metric, eps in self.epsilon.items():
            if eps < 0:
                raise ConfigError(f"paper.epsilon.{metric}: must be >= 0, got {eps}")
            if metric in self.acceptable and self.acceptable[metric] < eps:
                raise ConfigError(f"paper.acceptable.{metric} ({self.acceptable[metric]}) is below "
                                  f"paper.epsilon.{metric} ({eps}); 'acceptable' must be the wider band")


def load_template(path: str | Path = TEMPLATE) -> dict[str, Any]:
    """Read and check the transcription template; errors name the table, row and cell."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    tables = (data or {}).get("tables")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{path}: needs a mapping 'tables' of table id -> {{title, columns, rows}}")
    for table_id, table in tables.items():
        columns = table.get("columns") or []
        ids = [c.get("id") for c in columns]
        if len(ids) != len(set(ids)) or None in ids:
            raise ConfigError(f"{path}: {table_id}.columns: every column needs a unique 'id'")
        for column in columns:
            missing = [k for k in ("dataset", "task", "metric") if not column.get(k)]
            if missing:
                raise ConfigError(f"{path}: {table_id}, column {column.get('id')}: missing {missing}")
        for row in table.get("rows") or []:
            where = f"{path}: {table_id}, row {row.get('row')!r} (backbone {row.get('backbone')})"
            if not isinstance(row.get("match"), dict) or "method" not in row["match"]:
                raise ConfigError(f"{where}: needs match: {{method: ...}}")
            unknown = sorted(set(row.get("cells") or {}) - set(ids))
            if unknown:
                raise ConfigError(f"{where}: cells {unknown} are not columns of {table_id} ({ids})")
            for cell_id, value in (row.get("cells") or {}).items():
                if value is not None and paper_mean(value) is None:
                    raise ConfigError(f"{where}, cell {cell_id}: expected null, a number or {{mean, std}}, got {value!r}")
    return data


def paper_mean(value: Any) -> float | None:
    """The mean of a template cell (a number or ``{mean, std}``); None when empty or malformed."""
    if isinstance(value, dict):
        value = value.get("mean")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def paper_std(value: Any) -> float | None:
    """The std of a template cell when transcribed."""
    if isinstance(value, dict) and isinstance(value.get("std"), (int, float)):
        return float(value["std"])
    return None


def backbone_matches(wanted: str | None, actual: str | None) -> bool:
    """Compare backbones on the last path component, case-insensitively (None matches None only)."""
    if wanted is None or actual is None:
        return wanted is None and actual is None
    return Path(str(wanted)).name.lower() == Path(str(actual)).name.lower()


def find_record(records: list[Record], match: dict[str, Any], backbone: str | None, dataset: str, task: str,
                condition: str = STANDARD, train_dataset: str | None = None) -> Record | None:
    """The record for one cell, or None."""
    for record in records:
        d = record.descriptor
        if d.dataset != dataset or d.task != task or d.condition != condition:
            continue
        if d.source_dataset != (train_dataset or dataset):
            continue
        if any(getattr(d, key) != value for key, value in match.items()):
            continue
        if not backbone_matches(backbone, d.backbone):
            continue
        return record
    return None


def verdict(paper: float | None, reproduced: float | None, metric: str, config: ComparisonConfig) -> str:
    """The verdict of one cell (see the module docstring)."""
    if paper is None:
        return "no paper number"
    if reproduced is None or math.isnan(reproduced):
        return "not reproduced"
    if metric not in config.epsilon or metric not in config.acceptable:
        raise ConfigError(f"params.yaml: paper.epsilon / paper.acceptable have no tolerance for metric '{metric}'")
    delta = abs(reproduced - paper)
    if delta <= config.epsilon[metric] + 1e-12:
        return "fully reproduced"
    if delta <= config.acceptable[metric] + 1e-12:
        return "acceptable"
    return "unacceptable"


def compare_paper(records: list[Record], config: ComparisonConfig, template: dict[str, Any] | None = None
                  ) -> list[dict[str, Any]]:
    """One row per template cell with a paper or a reproduced number: paper, reproduced, Δ, verdict."""
    template = template or load_template()
    rows = []
    for table_id, table in template["tables"].items():
        scale = float(table.get("scale", 1) or 1)
        condition = table.get("condition", STANDARD)
        for row in table.get("rows") or []:
            cells = row.get("cells") or {}
            for column in table["columns"]:
                value = cells.get(column["id"])
                paper = paper_mean(value)
                paper = None if paper is None else paper / scale
                std = paper_std(value)
                record = find_record(records, row["match"], row.get("backbone"), column["dataset"], column["task"],
                                     condition, table.get("train_dataset"))
                reproduced = record.mean(column["metric"]) if record else None
                if reproduced is not None and math.isnan(reproduced):
                    reproduced = None
                if paper is None and reproduced is None:
                    continue
                rows.append({
                    "table": table_id, "row": row["row"], "backbone": row.get("backbone") or "",
                    "dataset": column["dataset"], "task": column["task"], "metric": column["metric"],
                    "paper": paper, "paper_std": None if std is None else std / scale,
                    "reproduced": reproduced,
                    "reproduced_std": record.summary(column["metric"])["std"] if record else None,
                    "delta": None if paper is None or reproduced is None else reproduced - paper,
                    "verdict": verdict(paper, reproduced, column["metric"], config),
                    "read_from": row.get("read_from") or "",
                    "metrics_file": record.path.as_posix() if record else "",
                })
    return rows


def filled_cells(template: dict[str, Any] | None = None) -> int:
    """How many template cells hold a paper number."""
    template = template or load_template()
    return sum(paper_mean(v) is not None for t in template["tables"].values() for r in t.get("rows") or []
               for v in (r.get("cells") or {}).values())
