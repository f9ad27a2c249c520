"""Stage ``report_rl_training``: did the RL runs train? One row per (data set, task, variant, seed).

``eagrl report-rl-training`` reads every RL run folder under ``models/llm`` — ``<dataset>/<variant>/<task>/``
(one seed; the seed is ``config.seed`` of its ``summary.json``) or ``<dataset>/<variant>/<task>/seed<k>/``
(the seed is ``k``) — each with ``curves.csv`` (one row per optimiser step, TRL's log keys),
``epsilon.csv`` (one row per trained trajectory: :data:`methods.eag_rl.trainer.TRAJECTORY_COLUMNS`) and
``summary.json`` (resolved configuration and training summary), and writes

* ``results/rl_training.md`` / ``.csv`` / ``.json`` — the columns below;
* ``results/plots/rl_training/<dataset>_<task>.png`` — mean reward and mean R_att against the optimiser
  step, one line per variant (mean over its seeds) with a band across seeds: mean ± 1.96·std/√n (std with
  ddof = 1, n = seeds logged at that step) where n ≥ 3, the min–max range where n = 2, none for one seed.

Columns
-------
=========================  ==========================================================================
``steps``                  optimiser steps logged in ``curves.csv``
``train_patients``         distinct patient ids among the trained trajectories (``epsilon.csv`` ``id``)
``reward_first/last``      mean logged ``reward`` over the first / last ⌈10 %⌉ of the steps (≥ 1 step)
``ratt_first/last``        the same for ``reward_parts/attention`` (mean R_att of the batch)
``ratt_varying_groups``    share of groups — trajectories of the same ``step`` and ``group`` (one patient's
                           completions) — whose R_att varies (max − min > 1e-9): only those give R_att an
                           advantage signal
``ratt_advantage_corr``    Pearson correlation of the trained trajectories' advantages with their R_att: how
                           far R_att steers the update, which follows the advantage. About 0 where R_att is not
                           rewarded, and small where the outcome part's spread within a group drowns it
``upper_clip_share``       mean over the steps of TRL's ``clip_ratio/high_mean``: share of completion tokens
                           with ratio > 1 + ε_high and a positive advantage, i.e. where the upper clip binds
``parse_failure_final``    1 − mean ``reward_parts/parsed`` over the last ⌈10 %⌉ of the steps
=========================  ==========================================================================

No training time: the run folders hold no wall-clock time (their hashes must not change from run to
run); ``results/runtime.md`` (``eagrl runtime-report``) gives each ``rl`` stage's wall time, and the
stage's log its load, training and per-step times.

Missing, never invented
-----------------------
A column that the run's files cannot give is missing — NaN in the CSV, null in the JSON, ``—`` in the
Markdown — and the Markdown lists, per column, how many runs lack it. This is the case for: runs written
before ``epsilon.csv`` carried ``id`` and ``attention`` (``train_patients``, ``ratt_varying_groups``); a loss
without a clipped ratio (no ``clip_ratio/high_mean``); and a seed with no ``summary.json`` (``seed``).
R_att is measured for every completion of every variant (:func:`methods.eag_rl.rewards.composite_reward`);
``ratt_rewarded`` says whether the variant's reward used it (false for GRPO, DAPO and w/o R_att, whose
R_att columns show what the policy does without being paid for it).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.paths import LLM_MODELS, RESULTS
from benchmark.pipeline_outs import declared_only
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.stage_cli import stage_parser
from benchmark.tables import csv_text, markdown_table

STEM = "rl_training"
PLOTS = Path("plots") / STEM
WINDOW = 0.10  # share of the steps in the "first" and "last" windows (at least one step each)
VARIES = 1e-9  # a group's R_att varies when max - min exceeds this
COLUMNS = ["dataset", "task", "variant", "seed", "steps", "train_patients", "reward_first", "reward_last",
           "ratt_rewarded", "ratt_first", "ratt_last", "ratt_varying_groups", "ratt_advantage_corr", "upper_clip_share", "parse_failure_final"]
_SEED_FOLDER = re.compile(r"seed(\d+)")
MISSING_MD = "—"


# ---------------------------------------------------------------------------------------------- runs
def find_runs(root: str | Path = LLM_MODELS) -> list[dict[str, Any]]:
    """Every RL run folder under ``root`` with its dataset, task, variant and seed (None where unknown).

    Accepts ``<dataset>/<variant>/<task>/curves.csv`` (seed from ``summary.json``'s ``config.seed``) and
    ``<dataset>/<variant>/<task>/seed<k>/curves.csv`` (seed ``k``); a folder that no stage of the current
    ``dvc.yaml`` writes is left out (:func:`benchmark.pipeline_outs.declared_only`).
    """
    root = Path(root)
    runs = []
    flat = [(c.parent, c.parent, None) for c in declared_only(sorted(root.glob("*/*/*/curves.csv")))]
    per_seed = [(c.parent, c.parent.parent, _SEED_FOLDER.fullmatch(c.parent.name))
                for c in declared_only(sorted(root.glob("*/*/*/seed*/curves.csv")))]
    for folder, task_dir, named in flat + [run for run in per_seed if run[2] is not None]:
        summary = _json(folder / "summary.json")
        seed = int(named.group(1)) if named else (summary.get("config") or {}).get("seed")
        runs.append({"dataset": task_dir.parent.parent.name, "task": task_dir.name, "variant": task_dir.parent.name,
                     "seed": None if seed is None else int(seed), "folder": folder, "summary": summary})
    return runs


def _json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        LOGGER.warning("report-rl-training: unreadable %s (%s)", path, error)
        return {}


def window(n: int, share: float = WINDOW) -> int:
    """Steps in the first / last window of ``n`` steps: ⌈share · n⌉, at least 1 (0 for no steps)."""
    return 0 if n <= 0 else max(1, math.ceil(share * n - 1e-9))


def _mean(frame: pd.DataFrame, column: str) -> float | None:
    if column not in frame or frame[column].isna().all():
        return None
    return float(frame[column].mean())


def _uses_attention(summary: dict[str, Any]) -> bool:
    """False only when the run's summary says R_att was off; True when unknown (the logs then decide)."""
    return (summary.get("reward") or {}).get("use_attention", True) is not False


# ---------------------------------------------------------------------------------------------- rows
def run_row(run: dict[str, Any]) -> dict[str, Any]:
    """The report's columns for one run (None for a quantity its files do not give)."""
    folder, summary = run["folder"], run["summary"]
    curves = pd.read_csv(folder / "curves.csv")
    curves = curves[curves["step"] >= 1].sort_values("step") if "step" in curves else curves.iloc[0:0]
    n = int(curves["step"].nunique()) if len(curves) else 0
    k = window(n)
    first, last = curves.head(k), curves.tail(k)
    trajectories = _trajectories(folder / "epsilon.csv")
    parsed_last = _mean(last, "reward_parts/parsed")
    return {"dataset": run["dataset"], "task": run["task"], "variant": run["variant"], "seed": run["seed"],
            "steps": n, "train_patients": _distinct_patients(trajectories),
            "reward_first": _mean(first, "reward"), "reward_last": _mean(last, "reward"),
            "ratt_rewarded": _uses_attention(summary),
            "ratt_first": _mean(first, "reward_parts/attention"),
            "ratt_last": _mean(last, "reward_parts/attention"),
            "ratt_varying_groups": varying_share(trajectories),
            "ratt_advantage_corr": advantage_correlation(trajectories),
            "upper_clip_share": _mean(curves, "clip_ratio/high_mean"),
            "parse_failure_final": None if parsed_last is None else 1.0 - parsed_last}


def _trajectories(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_csv(path, dtype={"id": str})
    except pd.errors.EmptyDataError:
        return None


def _distinct_patients(trajectories: pd.DataFrame | None) -> int | None:
    if trajectories is None or "id" not in trajectories or trajectories["id"].isna().all():
        return None
    return int(trajectories["id"].dropna().nunique())


def varying_share(trajectories: pd.DataFrame | None, tolerance: float = VARIES) -> float | None:
    """Share of (step, group) groups whose R_att varies (max − min > tolerance); None without R_att."""
    if trajectories is None or "attention" not in trajectories or trajectories["attention"].isna().all():
        return None
    groups = trajectories.dropna(subset=["attention"]).groupby(["step", "group"])["attention"]
    spread = groups.max() - groups.min()
    return float((spread > tolerance).mean())


def advantage_correlation(trajectories: pd.DataFrame | None) -> float | None:
    """Pearson correlation of the trajectories' ``advantage`` with their ``attention`` (R_att); None where
    either column is missing, fewer than 3 rows have both, or one of them is constant."""
    if trajectories is None or not {"advantage", "attention"} <= set(trajectories):
        return None
    both = trajectories[["advantage", "attention"]].dropna()
    if len(both) < 3 or both["advantage"].std() == 0 or both["attention"].std() == 0:
        return None
    return float(np.corrcoef(both["advantage"], both["attention"])[0, 1])


def training_rows(root: str | Path = LLM_MODELS) -> list[dict[str, Any]]:
    """One row per RL run under ``root``, sorted by dataset, task, variant and seed."""
    rows = [run_row(run) for run in find_runs(root)]
    return sorted(rows, key=lambda r: (r["dataset"], r["task"], r["variant"], -1 if r["seed"] is None else r["seed"]))


# ------------------------------------------------------------------------------------------- writing
def _as_csv(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (float("nan") if v is None else v) for k, v in row.items()}


def _as_md(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (MISSING_MD if v is None else f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()}


def training_markdown(rows: list[dict[str, Any]], plots: list[Path], out: Path) -> str:
    """The Markdown report: what each column is, the table, the missing counts and the plots."""
    missing = {c: sum(r[c] is None for r in rows) for c in COLUMNS}
    lines = ["# RL training", "",
             f"One row per RL run (data set, task, variant, seed) found under `models/llm` ({len(rows)} runs). "
             f"First / last = the first / last ⌈{WINDOW:.0%}⌉ of the optimiser steps (at least one step). "
             "`ratt_varying_groups`: share of generation groups (one patient's completions at one step) whose R_att "
             "varies; `ratt_advantage_corr`: correlation of a trajectory's advantage with its R_att (how far R_att steers "
             "the update); `upper_clip_share`: mean share of tokens where the upper clip 1 + ε_high binds (TRL's "
             "`clip_ratio/high_mean`); `parse_failure_final`: 1 − parsed share over the last steps. Definitions: "
             "`benchmark/reports/rl_training.py`.", "",
             markdown_table([_as_md(r) for r in rows], COLUMNS), ""]
    gaps = [f"`{c}` ({v} of {len(rows)})" for c, v in missing.items() if v]
    lines += [f"{MISSING_MD} = not computable from the run's files (never estimated): "
              + (", ".join(gaps) if gaps else "none") + ". See the module docstring for when each column is missing.",
              ""]
    for path in plots:
        lines += [f"![{path.stem}]({path.relative_to(out).as_posix()})", "",
                  f"*{path.stem}: mean reward and mean R_att per optimiser step, one line per variant (mean over its "
                  "seeds); band = mean ± 1.96·std/√n across seeds where n ≥ 3 seeds, min–max where n = 2, none for "
                  "one seed (the legend gives n).*", ""]
    return "\n".join(lines)


def seed_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high, n) per column of a (seeds, steps) array with NaN for unlogged steps (module docstring)."""
    import warnings

    n = np.sum(np.isfinite(values), axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # steps no seed logged: NaN, as they should be
        mean = np.nanmean(values, axis=0)
        half = 1.96 * np.nanstd(values, axis=0, ddof=1) / np.sqrt(n)
        low = np.where(n >= 3, mean - half, np.where(n == 2, np.nanmin(values, axis=0), mean))
        high = np.where(n >= 3, mean + half, np.where(n == 2, np.nanmax(values, axis=0), mean))
    return mean, low, high, n


def plot_training(root: str | Path, folder: str | Path) -> list[Path]:
    """One PNG per (data set, task): reward and R_att against the step, a line and seed band per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("reward", "reward (mean of the batch)"), ("reward_parts/attention", "R_att (mean of the batch)"))
    runs = find_runs(root)
    folder = Path(folder)
    paths = []
    for dataset, task in sorted({(r["dataset"], r["task"]) for r in runs}):
        fig, axes = plt.subplots(1, len(panels), figsize=(11, 3.8), squeeze=False)
        part = [r for r in runs if (r["dataset"], r["task"]) == (dataset, task)]
        for i, variant in enumerate(sorted({r["variant"] for r in part})):
            seeds = [r for r in part if r["variant"] == variant]
            curves = [pd.read_csv(r["folder"] / "curves.csv") for r in seeds]
            for ax, (column, _) in zip(axes[0], panels, strict=True):
                logged = [c[["step", column]].dropna() for c in curves if column in c]
                if not logged:
                    continue
                steps = sorted(set().union(*(set(c["step"]) for c in logged)))
                values = np.array([c.set_index("step")[column].reindex(steps).to_numpy(float) for c in logged])
                mean, low, high, n = seed_band(values)
                colour = plt.get_cmap("tab10")(i % 10)
                ax.plot(steps, mean, color=colour, marker="o", markersize=3, label=f"{variant} (n={int(n.max())})")
                if n.max() >= 2:
                    ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        for ax, (_, label) in zip(axes[0], panels, strict=True):
            ax.set_xlabel("optimiser step")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, title="variant (seeds)", title_fontsize=8)
        fig.suptitle(f"RL training: {dataset} / {task} (band: mean ± 1.96·std/√n over seeds if n ≥ 3, "
                     f"min–max if n = 2)", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        path = folder / f"{dataset}_{task}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def report_rl_training(root: str | Path = LLM_MODELS, out: str | Path = RESULTS) -> list[Path]:
    """Write ``results/rl_training.{md,csv,json}`` and the per-task PNGs; returns the paths."""
    configure_logging()
    rows = training_rows(root)
    if not rows:
        raise FileNotFoundError(f"{root}: no */*/*/curves.csv or */*/*/seed<k>/curves.csv found; run the rl stages first")
    out = Path(out)
    plots = plot_training(root, out / PLOTS)
    paths = [atomic_write_text(out / f"{STEM}.md", training_markdown(rows, plots, out)),
             atomic_write_text(out / f"{STEM}.csv", csv_text([_as_csv(r) for r in rows], COLUMNS)),
             atomic_write_json(out / f"{STEM}.json", rows)] + plots
    LOGGER.info("report-rl-training: %d runs -> %s", len(rows), paths[0])
    return paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-rl-training``."""
    parser = stage_parser(subparsers, "report-rl-training",
                          "results/rl_training.{md,csv,json} + plots/rl_training/*.png: one row per RL run.",
                          __doc__, params=False)
    parser.add_argument("--root", default=str(LLM_MODELS), help="Folder of the trained LLM methods, RL runs among them (models/llm).")
    parser.add_argument("--out", default=str(RESULTS), help="Results folder.")
    parser.set_defaults(handler=lambda a: report_rl_training(a.root, a.out))
