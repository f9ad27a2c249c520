"""Verdict gates: when a comparison of a claim is evidence at all, before any test is run on it.

A paired test can show that EAG-RL beats a model that does not answer, or that it degrades less than a model
that says nothing. Neither is evidence for the paper's claims, so the claim tests
(:mod:`benchmark.reports.paper.claims`) set such comparisons aside as "not testable", with the reason:

* :func:`answer_problem` — the model does not answer: fewer than ``paper.claims.min_parse_rate`` of its
  answers parse (``1 − parse_failure_rate`` of its metrics file, the mean over its training seeds where the
  file lists them). Unparsable answers are scored by ``metrics.unparsable`` (0.5 by default), so such a
  model's AUROC measures its output format more than its reasoning;
* :func:`chance_problem` — the model is at chance: the lower bound of its AUROC bootstrap interval is ≤ 0.5;
* :func:`ratt_problem` — EAG-RL's attention reward R_att never varied within a generation group during its
  training (every group's R_att had max − min ≤ 1e-9, :func:`benchmark.reports.rl_training.varying_share`),
  so GRPO's group-relative advantage gave R_att no signal: EAG-RL trained as GRPO did, and the comparisons
  that isolate R_att (C3; EAG-RL against GRPO and DAPO in C1) cannot show its effect.

Where R_att variation comes from (:func:`ratt_shares`), first found wins: the run folders of the record's
seeds (``epsilon.csv`` beside each seed's predictions, under ``models/llm``, which the verify stage reads),
then the rows of ``results/rl_training.json`` (``eagrl report-rl-training``) for the same data set, task and
variant. Where neither exists the gate is open (the comparison is judged), as it was before this gate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.paths import RESULTS
from benchmark.reports.collect import Record, method_key
from benchmark.reports.rl_training import varying_share

RL_TRAINING_FILE = "rl_training.json"


def parse_rate(record: Record) -> float | None:
    """Share of the record's answers that parse (mean over its seeds where listed); None when not recorded."""
    per_seed = (((record.metrics.get("seeds") or {}).get("metrics") or {}).get("parse_failure_rate") or {})
    values = [float(v) for v in (per_seed.get("per_seed") or {}).values() if v is not None]
    if not values and record.metrics.get("parse_failure_rate") is not None:
        values = [float(record.metrics["parse_failure_rate"])]
    values = [v for v in values if math.isfinite(v)]
    return None if not values else 1.0 - sum(values) / len(values)


def _role(record: Record, role: str | None) -> str:
    return role or f"'{method_key(record.descriptor)}'"


def answer_problem(record: Record, min_parse_rate: float = 0.9, role: str | None = None) -> str | None:
    """Why ``record`` does not count as answering (fewer than ``min_parse_rate`` of its answers parse), or None.

    E.g. "the base model does not answer: 38 % of answers parse (< 90 %)"; ``role`` names the model (default:
    its method key).
    """
    rate = parse_rate(record)
    if rate is None or rate >= min_parse_rate - 1e-12:
        return None
    return (f"{_role(record, role)} does not answer: {100 * rate:.0f} % of answers parse "
            f"(< {100 * min_parse_rate:.0f} %)")


def chance_problem(record: Record, role: str | None = None) -> str | None:
    """Why ``record`` is at chance (the lower bound of its AUROC interval is ≤ 0.5), or None.

    E.g. "the base model is at chance: AUROC 0.49 [0.41, 0.57]"; None when the file has no AUROC interval.
    """
    s = record.summary("auroc")
    if not math.isfinite(s["ci_low"]) or s["ci_low"] > 0.5:
        return None
    return f"{_role(record, role)} is at chance: AUROC {s['mean']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"


def answer_or_chance(record: Record, min_parse_rate: float, role: str | None = None) -> str | None:
    """:func:`answer_problem`, else :func:`chance_problem`: why ``record`` is no valid reference, or None."""
    return answer_problem(record, min_parse_rate, role) or chance_problem(record, role)


def load_training_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of ``results/rl_training.json`` (one per RL run), or [] when the file is absent or unreadable."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text()) if path.is_file() else []
    except (OSError, json.JSONDecodeError):
        return []
    return rows if isinstance(rows, list) else []


def _read_trajectories(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path) if path.is_file() else None
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return None


def ratt_shares(record: Record, training_rows: list[dict[str, Any]] | None = None) -> tuple[list[float], str]:
    """Per training seed of ``record``, the share of generation groups whose R_att varied, and where it was
    read (module docstring); ``([], "")`` when nothing records it."""
    shares = []
    for path in record.seed_predictions.values():
        share = varying_share(_read_trajectories(path.parent / "epsilon.csv"))
        if share is not None:
            shares.append(share)
    if shares:
        return shares, "epsilon.csv of its run folder(s)"
    d = record.descriptor
    shares = [float(row["ratt_varying_groups"]) for row in training_rows or []
              if (row.get("dataset"), row.get("task"), row.get("variant")) == (d.dataset, d.task, d.method)
              and row.get("ratt_varying_groups") is not None]
    return shares, ((RESULTS / RL_TRAINING_FILE).as_posix() if shares else "")


def ratt_problem(record: Record, training_rows: list[dict[str, Any]] | None = None) -> str | None:
    """Why comparisons that isolate R_att cannot be judged for this EAG-RL record (R_att never varied in any of
    its training seeds), or None (it varied, or nothing records it)."""
    shares, where = ratt_shares(record, training_rows)
    if not shares or max(shares) > 0.0:
        return None
    d = record.descriptor
    return (f"R_att never varied within a generation group in EAG-RL's training on {d.dataset}/{d.task} "
            f"({len(shares)} seed(s), {where}): the reward gave R_att no advantage signal")
