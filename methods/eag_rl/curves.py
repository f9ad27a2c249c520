"""Training curves of a stage-2 run: the trainer's log lines, kept per optimiser step and written as ``curves.csv``.

:class:`CurveRecorder` keeps every log line of the trainer; :func:`write_curves` writes them as ``curves.csv`` /
``curves.json`` (one row per optimiser step, for ``dvc plots``) without the wall-clock columns (:func:`is_timing`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from transformers import TrainerCallback

from benchmark.runtime import atomic_write_json, atomic_write_text

# Curve columns that describe a generation batch; the μ optimiser steps trained on one batch share them.
BATCH_COLUMNS = ("reward", "rewards/", "reward_parts/", "frac_reward_zero_std", "eps_tau/", "span_entropy/",
                 "completions/", "dynamic_sampling/", "num_tokens")


def is_timing(column: str) -> bool:
    """A trainer log key that measures wall-clock time (TRL's ``step_time``, HF's ``train_runtime``, ``*_per_second``)."""
    return column == "step_time" or column.endswith(("_runtime", "_per_second"))


def write_curves(folder: Path, rows: list[dict[str, float]]) -> None:
    """``curves.csv`` / ``curves.json``: one row per optimiser step (batch-level columns carried over the μ steps).

    Timing columns (:func:`is_timing`) are left out: they differ on every run.
    """
    frame = pd.DataFrame([{k: v for k, v in row.items() if not is_timing(k)} for row in rows])
    if not frame.empty:
        frame = frame.groupby("step", as_index=False).last()  # the final summary line repeats the last step
        batch = [c for c in frame.columns if c.startswith(BATCH_COLUMNS)]
        frame[batch] = frame[batch].ffill()  # so that `dvc plots` draws connected lines
    atomic_write_text(folder / "curves.csv", frame.to_csv(index=False))
    atomic_write_json(folder / "curves.json", frame.replace({np.nan: None}).to_dict(orient="records"))


class CurveRecorder(TrainerCallback):
    """Keeps every log line of the trainer (one per optimiser step with ``logging_steps = 1``)."""

    def __init__(self):
        self.rows: list[dict[str, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Keep the numeric values of one log line, with its optimiser step."""
        if logs:
            row = {"step": int(state.global_step)}
            row.update({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
            self.rows.append(row)
