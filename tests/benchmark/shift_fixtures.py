"""Helpers of the robustness / cross-domain tests: a work folder with params, cohorts and fitted experts."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmark.data.cohort import Cohort
from methods.experts import build_expert
from methods.experts.config import ExpertsConfig


def write_params(folder: Path, **sections) -> Path:
    """A params.yaml with a cheap bootstrap and the given sections."""
    params = {"metrics": {"bootstrap_resamples": 20}, "experts": {"models": ["logistic"]}, **sections}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def fit_logistic(cohort: Cohort, root: Path) -> None:
    """Fit the logistic floor on every task of ``cohort`` into ``root/<name>/logistic/<task>/model.pt``."""
    for task in cohort.tasks:
        expert = build_expert("logistic", task, ExpertsConfig().logistic)
        expert.fit(cohort.subset("train"), cohort.subset("val"))
        expert.save(root / cohort.name / "logistic" / task / "model.pt")
