"""The expert importance files: one JSONL per split, the ranked features of every patient.

EAG-RL's stage 1 (MCTS) and stage 2 (attention-alignment reward) read the ``top_k`` of the expert named
in params. One line per patient::

    {"id": "icu-00012", "task": "mortality", "label": {"mortality": 1, "readmission": 1},
     "probability": 0.71,
     "ranking": [["Oxygen saturation", 0.41], ["Heart Rate", 0.22], ...],   # all d features, descending
     "top_k": ["Oxygen saturation", "Heart Rate", "pH"]}

``label`` holds every task of the cohort (the file's own task is ``task``); ``probability`` is the
expert's predicted risk for ``task``; ``ranking`` scores are the expert's importance distribution (they
sum to 1, rounded to 6 decimals); ties keep the cohort's feature order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.cohort import Cohort
from benchmark.runtime import atomic_write_text


def importance_records(cohort: Cohort, task: str, probabilities: np.ndarray, importance: np.ndarray,
                       top_k: int) -> list[dict[str, Any]]:
    """One record per patient of ``cohort`` in the format of the module docstring."""
    names = cohort.feature_names
    if importance.shape != (len(cohort), len(names)):
        raise ValueError(f"importance has shape {importance.shape}, expected {(len(cohort), len(names))}")
    k = min(top_k, len(names))
    records = []
    for i in range(len(cohort)):
        order = np.argsort(-importance[i], kind="stable")
        ranking = [[names[j], round(float(importance[i, j]), 6)] for j in order]
        records.append({
            "id": str(cohort.ids[i]),
            "task": task,
            "label": {t: int(cohort.labels[i, c]) for c, t in enumerate(cohort.tasks)},
            "probability": round(float(probabilities[i]), 6),
            "ranking": ranking,
            "top_k": [name for name, _ in ranking[:k]],
        })
    return records


def write_importance(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """Write records as JSONL (one compact JSON object per line), atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def read_importance(path: str | Path) -> list[dict[str, Any]]:
    """Read an importance JSONL file; a malformed line is reported with its number."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: importance file not found (run `eagrl train-expert` / `dvc repro`)")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number} is not JSON ({error})") from error
        for key in ("id", "ranking", "top_k"):
            if key not in record:
                raise ValueError(f"{path}: line {number} lacks field '{key}'")
        records.append(record)
    return records
