"""Stage ``report_experts``: the expert tables (``eagrl report-experts``).

* ``results/experts.{md,csv,json}`` — every expert × data set × task on the test split: AUROC and AUPRC
  as bootstrap mean ± std (from each ``metrics.json``, i.e. :func:`benchmark.evaluate.evaluate`), the
  paired bootstrap difference in AUROC against the logistic-regression floor with its p-value
  (:func:`benchmark.evaluate.compare`) and training epochs; plus the cohort's **ceiling** (the
  ground-truth risk of a synthetic cohort scored the same way). Training times are not in the table (no
  output holds a wall-clock time): ``results/runtime.md`` gives each ``train_expert`` stage's wall time.
* ``results/faithfulness.{md,csv,json}`` — synthetic cohorts only: how well each expert's top-k features
  (the ``top_k`` of ``importance_test.jsonl``, what EAG-RL reads) recover each patient's ground-truth
  salient set ``S``: Jaccard ``|top_k ∩ S| / |top_k ∪ S|`` and recall@k ``|top_k ∩ S| / |S|``, averaged
  over all test patients and over the positive ones (whose salient features are deranged enough to
  matter). Two reference rows: ``random`` (the exact expectation under a uniformly random ranking) and
  ``most_abnormal`` (rank by the absolute z-score at the last visit: flags distractors too). The ± is the
  bootstrap std of the mean over the same patient resamples :mod:`benchmark.metrics` uses.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from benchmark.config import ParamsSource, load_params, section, select_datasets
from benchmark.data.cohort import Cohort
from benchmark.evaluate import compare, evaluate, metrics_config, read_predictions
from benchmark.metrics import MetricsConfig, bootstrap_indices
from benchmark.paths import COHORTS, EXPERTS, RESULTS, cohort_dir, expert_dir, importance_path
from benchmark.runtime import atomic_write_text
from benchmark.stage_cli import add_cohorts, stage_parser
from benchmark.tables import csv_text, markdown_table
from methods.experts.config import load_experts_config
from methods.experts.importance import read_importance

FLOOR = "logistic"


def _pm(entry: dict[str, float]) -> str:
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def performance_rows(datasets: list[str], models: list[str], root: Path, cohorts: Path,
                     config: MetricsConfig) -> list[dict[str, Any]]:
    """One row per (data set, task, model) plus a ceiling row per (data set, task) where known."""
    rows = []
    for dataset in datasets:
        cohort = Cohort.load(cohort_dir(dataset, cohorts))
        test = cohort.subset("test")
        for task in cohort.tasks:
            floor_path = expert_dir(dataset, FLOOR, task, root) / "predictions_test.csv"
            floor = read_predictions(floor_path) if floor_path.exists() else None
            for model in models:
                folder = expert_dir(dataset, model, task, root)
                metrics = json.loads((folder / "metrics.json").read_text())
                row = _row(dataset, task, model, metrics)
                if floor is not None and model != FLOOR:
                    paired = compare(read_predictions(folder / "predictions_test.csv"), floor, config, (model, FLOOR))
                    row["auroc_minus_floor"] = paired["auroc"]["difference"]
                    row["auroc_minus_floor_p"] = paired["auroc"]["p_value"]
                training = metrics.get("training", {})
                row["best_epoch"] = training.get("best_epoch")
                row["epochs_run"] = training.get("epochs_run")
                rows.append(row)
            if test.true_risk is not None:
                frame = pd.DataFrame({"id": test.ids, "label": test.label(task),
                                      "probability": test.true_risk[:, cohort.tasks.index(task)], "parsed": True})
                rows.append(_row(dataset, task, "ceiling (true risk)", evaluate(frame, config)))
    return rows


def _row(dataset: str, task: str, model: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": dataset, "task": task, "model": model, "n": metrics["n"], "positives": metrics["positives"],
            "auroc_mean": metrics["auroc"]["mean"], "auroc_std": metrics["auroc"]["std"],
            "auprc_mean": metrics["auprc"]["mean"], "auprc_std": metrics["auprc"]["std"],
            "auroc": _pm(metrics["auroc"]), "auprc": _pm(metrics["auprc"])}


def overlap(top: np.ndarray, salient: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per patient: Jaccard and recall of boolean top-k sets (n, d) against salient sets (n, d)."""
    hit = (top & salient).sum(1)
    union = (top | salient).sum(1)
    size = salient.sum(1)
    return hit / np.maximum(union, 1), hit / np.maximum(size, 1)


def random_overlap(salient: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact expected Jaccard and recall@k per patient under a uniformly random ranking (hypergeometric)."""
    d = salient.shape[1]
    k = min(k, d)
    jaccard, recall = np.zeros(len(salient)), np.zeros(len(salient))
    for i, s in enumerate(salient.sum(1)):
        hits = np.arange(0, min(k, s) + 1)
        pmf = hypergeom.pmf(hits, d, s, k)
        jaccard[i] = float((pmf * hits / np.maximum(k + s - hits, 1)).sum())
        recall[i] = k / d if s else 0.0
    return jaccard, recall


def _faith_row(dataset: str, task: str, model: str, k: int, jaccard: np.ndarray, recall: np.ndarray,
               labels: np.ndarray, config: MetricsConfig) -> dict[str, Any]:
    indices = bootstrap_indices(labels, config.bootstrap_resamples, config.seed)
    positive = labels == 1
    row: dict[str, Any] = {"dataset": dataset, "task": task, "model": model, "k": k, "patients": len(labels)}
    for name, values in (("jaccard", jaccard), ("recall", recall)):
        row[f"{name}_mean"] = float(values.mean())
        row[f"{name}_std"] = float(values[indices].mean(1).std())
        row[f"{name}_positives"] = float(values[positive].mean()) if positive.any() else float("nan")
    return row


def faithfulness_rows(datasets: list[str], models: list[str], root: Path, cohorts: Path, top_k: int,
                      config: MetricsConfig) -> list[dict[str, Any]]:
    """Top-k overlap with the ground-truth salient sets, per synthetic data set, task and expert."""
    rows = []
    for dataset in datasets:
        cohort = Cohort.load(cohort_dir(dataset, cohorts))
        if cohort.salient is None:
            continue
        test = cohort.subset("test")
        position = {pid: i for i, pid in enumerate(test.ids.tolist())}
        names = {name: j for j, name in enumerate(test.feature_names)}
        salient = test.salient.astype(bool)
        for task in cohort.tasks:
            labels = test.label(task)
            for model in models:
                records = read_importance(importance_path(dataset, model, task, "test", root))
                top = np.zeros_like(salient)
                for record in records:
                    top[position[record["id"]], [names[f] for f in record["top_k"]]] = True
                k = len(records[0]["top_k"])
                rows.append(_faith_row(dataset, task, model, k, *overlap(top, salient), labels, config))
            last = np.abs(test.last_observed(normalised=True))
            order = np.argsort(-last, axis=1, kind="stable")[:, :top_k]
            top = np.zeros_like(salient)
            np.put_along_axis(top, order, True, axis=1)
            rows.append(_faith_row(dataset, task, "most_abnormal (abs z, last visit)", top_k, *overlap(top, salient),
                                   labels, config))
            rows.append(_faith_row(dataset, task, "random ranking (expected)", top_k,
                                   *random_overlap(salient, top_k), labels, config))
    return rows


def _write(rows: list[dict[str, Any]], display: list[dict[str, Any]], stem: Path, title: str, intro: str) -> list[Path]:
    body = f"# {title}\n\n{intro.strip()}\n\n{markdown_table(display)}\n"
    return [atomic_write_text(stem.with_suffix(".md"), body),
            atomic_write_text(stem.with_suffix(".csv"), csv_text(rows)),
            atomic_write_text(stem.with_suffix(".json"), json.dumps(rows, indent=2, default=str) + "\n")]


def report_experts(params: ParamsSource = "params.yaml", root: str | Path = EXPERTS,
                   cohorts: str | Path = COHORTS, out: str | Path = RESULTS,
                   datasets: Sequence[str] | None = None) -> list[Path]:
    """Write ``results/experts.*`` and ``results/faithfulness.*`` from the ``train_expert`` outputs.

    ``datasets`` restricts both tables to those data sets of params.yaml (default: every one), e.g. for the
    TJH tables of ``eagrl tjh-tables``; the faithfulness table is then empty when none of them is synthetic.
    """
    params = load_params(params)
    datasets = select_datasets(section(params, "datasets", params), datasets, params)
    experts = load_experts_config(params, params)
    scoring = metrics_config(params)
    root, cohorts, out = Path(root), Path(cohorts), Path(out)
    perf = performance_rows(datasets, experts.models, root, cohorts, scoring)
    display = [{"dataset": r["dataset"], "task": r["task"], "model": r["model"], "AUROC": r["auroc"],
                "AUPRC": r["auprc"],
                "ΔAUROC vs floor (p)": (f"{r['auroc_minus_floor']:+.3f} ({r['auroc_minus_floor_p']:.3f})"
                                        if "auroc_minus_floor" in r else ""),
                "epochs (best)": (f"{r['epochs_run']} ({r['best_epoch']})" if r.get("epochs_run") else "")}
               for r in perf]
    paths = _write(perf, display, out / "experts", "Expert models",
                   f"Test split, {scoring.bootstrap_resamples} bootstrap resamples (bootstrap mean ± std; "
                   "`eagrl report-experts`). `logistic` is the floor (logistic regression on last observed values + "
                   "age + sex); `ceiling (true risk)` scores the synthetic generator's ground-truth probability. "
                   "ΔAUROC vs floor: AUROC difference to the floor on all test patients, with the two-sided paired "
                   "bootstrap p-value. Training wall times are in `results/runtime.md`, not here.")
    faith = faithfulness_rows(datasets, experts.models, root, cohorts, experts.top_k, scoring)
    display = [{"dataset": r["dataset"], "task": r["task"], "model": r["model"], "k": r["k"],
                "Jaccard": f"{r['jaccard_mean']:.3f} ± {r['jaccard_std']:.3f}",
                "recall@k": f"{r['recall_mean']:.3f} ± {r['recall_std']:.3f}",
                "Jaccard (positives)": f"{r['jaccard_positives']:.3f}",
                "recall@k (positives)": f"{r['recall_positives']:.3f}"} for r in faith]
    paths += _write(faith, display, out / "faithfulness", "Expert faithfulness to the ground-truth salient features",
                    "Synthetic cohorts only, test split. Each patient's risk is driven by 2-3 salient features (kept by "
                    "the generator); an expert's top-k features (the `top_k` of `importance_test.jsonl`) are compared "
                    "with that set: Jaccard |top-k ∩ S| / |top-k ∪ S| and recall@k |top-k ∩ S| / |S|, mean over test "
                    "patients ± bootstrap std, and the mean over positive patients. `most_abnormal` ranks features by "
                    "the absolute z-score at the last visit (no model); `random ranking` is the exact expectation of a random "
                    "ranking.")
    return paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-experts``."""
    parser = stage_parser(subparsers, "report-experts",
                          "Write results/experts.* and results/faithfulness.* (DVC stage report_experts).", __doc__)
    parser.add_argument("--experts", default=str(EXPERTS), help="Folder of the train_expert outputs.")
    add_cohorts(parser)
    parser.add_argument("--out", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: report_experts(args.params, args.experts, args.cohorts, args.out))
