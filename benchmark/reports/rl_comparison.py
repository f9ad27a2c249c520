"""EAG-RL against its outcome-only baselines, pooled over training seeds: ``results/rl_comparison.md|csv|json``.

The question the testbed exists to answer: does the attention reward (and ε(τ)) change what RL learns?
For every (data set, task) and every trained variant B other than the reference A (``eag_rl``), one row
per metric:

* AUROC and AUPRC — each variant's mean ± std over its training seeds (bootstrap means of each seed's
  evaluation on the whole test split), and the paired bootstrap of A − B on the *seed-mean* metric with
  every seed scored on the same patient resamples (:func:`benchmark.seeds.pooled_paired_test`): the
  difference, its 95 % interval, the two-sided p-value and the minimum detectable effect at 80 % power;
* test-time alignment with the guiding expert and with the true salient set (the ``mechanism`` block of
  each seed's metrics file, :mod:`benchmark.alignment`) — mean ± std over seeds, and the paired bootstrap of
  A − B on each patient's seed-mean Jaccard (``alignment.csv`` beside each seed's predictions,
  :func:`benchmark.seeds.pooled_paired_mean_test`), on the same resamples as the AUROC test;
* shuffle robustness — AUROC at the strongest shuffle level minus unperturbed AUROC on the same patients
  (``outputs/robustness/...``; every seed the robustness stage evaluated, :func:`benchmark.seeds.seed_folders`):
  each variant's mean ± std over seeds of that drop, and the paired bootstrap of A's seed-mean drop minus B's,
  all four terms scored on the same patient resamples (:func:`benchmark.seeds.pooled_paired_contrast_test`).

Verdict per row: ``A better`` / ``B better`` when the paired interval excludes zero, else ``inconclusive``
(with the minimum detectable effect saying how large a difference this n could have shown). Rows where
either side has no file are absent, never filled in.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.alignment import ALIGNMENT_FILE, read_alignment
from benchmark.config import ParamsSource, load_params
from benchmark.evaluate import metrics_config, read_predictions
from benchmark.metrics import resolve_unparsable
from benchmark.paths import LLM_MODELS, RESULTS, ROBUSTNESS, llm_model_dir, robustness_dir
from benchmark.pipeline_outs import declared_only
from benchmark.runtime import LOGGER
from benchmark.seeds import (
    pooled_paired_contrast_test,
    pooled_paired_mean_test,
    pooled_paired_test,
    seed_folders,
)
from benchmark.stage_cli import stage_parser
from benchmark.tables import write_table

REFERENCE = "eag_rl"
METRICS = ("auroc", "auprc")
COLUMNS = ["dataset", "task", "a", "b", "quantity", "a_mean", "a_std", "a_seeds", "b_mean", "b_std", "b_seeds",
           "difference", "ci_low", "ci_high", "p_value", "min_detectable_effect", "verdict"]
_SHUFFLE = re.compile(r"^shuffle_(\d+(?:\.\d+)?)$")


def _seed_values(runs: dict[int, Path], getter) -> list[float]:
    values = []
    for folder in runs.values():
        value = getter(json.loads((folder / "metrics.json").read_text()))
        if value is not None:
            values.append(float(value))
    return values


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def verdict(low: float, high: float) -> str:
    """'A better' / 'B better' when the interval excludes 0, else 'inconclusive'; 'not testable' when it is not
    finite or has no width (the difference never varies under resampling: e.g. both variants answer with one
    constant probability, so the data say nothing either way)."""
    if not (np.isfinite(low) and np.isfinite(high)) or low == high:
        return "not testable"
    if low > 0:
        return "A better"
    if high < 0:
        return "B better"
    return "inconclusive"


def _probabilities(runs: dict[int, Path], rule: str) -> tuple[np.ndarray, dict[int, np.ndarray], list[str]]:
    labels, ids, by_seed = None, None, {}
    for seed, folder in sorted(runs.items()):
        frame = read_predictions(folder / "predictions.csv").sort_values("id")
        if ids is None:
            ids, labels = list(frame["id"]), frame["label"].to_numpy()
        elif list(frame["id"]) != ids:
            raise ValueError(f"{folder}/predictions.csv: other patients than the variant's first seed")
        probabilities, _ = resolve_unparsable(frame["label"].to_numpy(), frame["probability"].to_numpy(float),
                                              frame["parsed"].to_numpy(bool), rule)
        by_seed[seed] = probabilities
    return labels, by_seed, ids


def metric_rows(dataset: str, task: str, a: str, b: str, runs_a: dict[int, Path], runs_b: dict[int, Path],
                params: ParamsSource) -> list[dict[str, Any]]:
    """AUROC / AUPRC rows: per-variant seed mean ± std and the pooled paired test A − B."""
    config = metrics_config(params)
    labels_a, probs_a, ids_a = _probabilities(runs_a, config.unparsable)
    labels_b, probs_b, ids_b = _probabilities(runs_b, config.unparsable)
    if ids_a != ids_b:
        raise ValueError(f"{dataset}/{task}: {a} and {b} were evaluated on different patients; no paired test")
    rows = []
    for metric in METRICS:
        test = pooled_paired_test(labels_a, probs_a, probs_b, metric, config.bootstrap_resamples, config.seed,
                                  config.ci_level, config.threshold)
        a_mean, a_std = _mean_std(_seed_values(runs_a, lambda m, k=metric: m[k]["mean"]))
        b_mean, b_std = _mean_std(_seed_values(runs_b, lambda m, k=metric: m[k]["mean"]))
        rows.append({"dataset": dataset, "task": task, "a": a, "b": b, "quantity": metric, "a_mean": a_mean,
                     "a_std": a_std, "a_seeds": len(runs_a), "b_mean": b_mean, "b_std": b_std, "b_seeds": len(runs_b),
                     "difference": test["difference"], "ci_low": test["ci_low"], "ci_high": test["ci_high"],
                     "p_value": test["p_value"], "min_detectable_effect": test["min_detectable_effect"],
                     "verdict": verdict(test["ci_low"], test["ci_high"])})
    return rows


def _per_patient(runs: dict[int, Path], key: str) -> tuple[list[str], np.ndarray, dict[int, np.ndarray]] | None:
    """Patient ids, labels and each seed's per-patient ``key`` from ``alignment.csv``; None where a seed lacks it."""
    ids, labels, by_seed = None, None, {}
    for seed, folder in sorted(runs.items()):
        if not (folder / ALIGNMENT_FILE).exists():
            return None
        frame = read_alignment(folder / ALIGNMENT_FILE)
        if frame[key].isna().any():
            return None
        if ids is None:
            ids = list(frame["id"])
            labels = read_predictions(folder / "predictions.csv").set_index("id").loc[ids, "label"].to_numpy()
        elif list(frame["id"]) != ids:
            raise ValueError(f"{folder}/{ALIGNMENT_FILE}: other patients than the variant's first seed")
        by_seed[seed] = frame[key].to_numpy(float)
    return ids, labels, by_seed


def alignment_rows(dataset: str, task: str, a: str, b: str, runs_a: dict[int, Path],
                   runs_b: dict[int, Path], params: ParamsSource = "params.yaml") -> list[dict[str, Any]]:
    """Test-time alignment rows: mean ± std over seeds, and the pooled paired test of A − B on the seed-mean
    per-patient Jaccard (:func:`benchmark.seeds.pooled_paired_mean_test`) where every seed wrote
    ``alignment.csv``; without those files the difference of the means only (verdict ``descriptive``)."""
    config = metrics_config(params)
    rows = []
    for key in ("alignment_expert", "alignment_truth"):
        values_a = _seed_values(runs_a, lambda m, k=key: (m.get("mechanism") or {}).get(k))
        values_b = _seed_values(runs_b, lambda m, k=key: (m.get("mechanism") or {}).get(k))
        if not values_a or not values_b:
            continue
        (a_mean, a_std), (b_mean, b_std) = _mean_std(values_a), _mean_std(values_b)
        row = {"dataset": dataset, "task": task, "a": a, "b": b, "quantity": key, "a_mean": a_mean, "a_std": a_std,
               "a_seeds": len(values_a), "b_mean": b_mean, "b_std": b_std, "b_seeds": len(values_b),
               "difference": a_mean - b_mean, "ci_low": float("nan"), "ci_high": float("nan"),
               "p_value": float("nan"), "min_detectable_effect": float("nan"), "verdict": "descriptive"}
        per_a, per_b = _per_patient(runs_a, key), _per_patient(runs_b, key)
        if per_a is not None and per_b is not None:
            if per_a[0] != per_b[0]:
                raise ValueError(f"{dataset}/{task}: {a} and {b} were evaluated on different patients; no paired test")
            test = pooled_paired_mean_test(per_a[1], per_a[2], per_b[2], config.bootstrap_resamples, config.seed,
                                           config.ci_level)
            row.update({key_: test[key_] for key_ in ("difference", "ci_low", "ci_high", "p_value",
                                                      "min_detectable_effect")},
                       verdict=verdict(test["ci_low"], test["ci_high"]))
        rows.append(row)
    return rows


def shuffle_levels(root: Path, dataset: str, variant: str, task: str) -> tuple[Path, Path] | None:
    """(unperturbed folder, strongest ``shuffle:f`` folder) of a variant's robustness outputs; None when either is missing."""
    folder = robustness_dir(dataset, variant, task, root)
    levels = {float(m.group(1)): p for p in folder.glob("shuffle_*") if (m := _SHUFFLE.match(p.name))}
    if not levels or not (folder / "none" / "metrics.json").exists() or \
            not (levels[max(levels)] / "metrics.json").exists():
        return None
    return folder / "none", levels[max(levels)]


def shuffle_drop(root: Path, dataset: str, variant: str, task: str) -> float | None:
    """AUROC at the strongest ``shuffle:f`` level minus unperturbed AUROC, mean over the evaluated seeds."""
    found = shuffle_levels(root, dataset, variant, task)
    if found is None:
        return None
    drops = _seed_drops(*found)
    return float(np.mean(list(drops.values()))) if drops else None


def _seed_drops(none: Path, shuffled: Path) -> dict[int, float]:
    runs_none, runs_shuffled = seed_folders(none), seed_folders(shuffled)
    auroc = lambda folder: json.loads((folder / "metrics.json").read_text())["auroc"]["mean"]  # noqa: E731
    return {seed: float(auroc(runs_shuffled[seed]) - auroc(runs_none[seed]))
            for seed in sorted(set(runs_none) & set(runs_shuffled))}


def shuffle_rows(dataset: str, task: str, a: str, b: str, robustness_root: Path,
                 params: ParamsSource = "params.yaml") -> list[dict[str, Any]]:
    """The ``auroc_shuffle_drop`` row: each variant's drop (mean ± std over seeds) and the pooled paired test of
    A's drop minus B's (module docstring); no row where either variant lacks a level."""
    found_a = shuffle_levels(robustness_root, dataset, a, task)
    found_b = shuffle_levels(robustness_root, dataset, b, task)
    if found_a is None or found_b is None:
        return []
    config = metrics_config(params)
    (a_none, a_shuffled), (b_none, b_shuffled) = found_a, found_b
    drops_a, drops_b = _seed_drops(a_none, a_shuffled), _seed_drops(b_none, b_shuffled)
    terms = {}
    for name, folder, seeds in (("a_none", a_none, drops_a), ("a_shuffled", a_shuffled, drops_a),
                                ("b_none", b_none, drops_b), ("b_shuffled", b_shuffled, drops_b)):
        runs = {seed: path for seed, path in seed_folders(folder).items() if seed in seeds}
        terms[name] = _probabilities(runs, config.unparsable)
    ids = {name: term[2] for name, term in terms.items()}
    if len({tuple(v) for v in ids.values()}) != 1:
        raise ValueError(f"{dataset}/{task}: the robustness outputs of {a} and {b} hold different patients; "
                         f"no paired test (re-run their robustness stages)")
    labels = terms["a_none"][0]
    test = pooled_paired_contrast_test(labels, [terms["a_shuffled"][1], terms["b_none"][1]],
                                       [terms["a_none"][1], terms["b_shuffled"][1]], "auroc",
                                       config.bootstrap_resamples, config.seed, config.ci_level, config.threshold)
    (a_mean, a_std), (b_mean, b_std) = _mean_std(list(drops_a.values())), _mean_std(list(drops_b.values()))
    return [{"dataset": dataset, "task": task, "a": a, "b": b, "quantity": "auroc_shuffle_drop",
             "a_mean": a_mean, "a_std": a_std, "a_seeds": len(drops_a), "b_mean": b_mean, "b_std": b_std,
             "b_seeds": len(drops_b), "difference": test["difference"], "ci_low": test["ci_low"],
             "ci_high": test["ci_high"], "p_value": test["p_value"],
             "min_detectable_effect": test["min_detectable_effect"], "verdict": verdict(test["ci_low"], test["ci_high"])}]


def comparison_rows(rl_root: str | Path = LLM_MODELS, robustness_root: str | Path = ROBUSTNESS,
                    params: ParamsSource = "params.yaml", reference: str = REFERENCE) -> list[dict[str, Any]]:
    """Every row of the comparison (module docstring), reference against each other trained variant."""
    params = load_params(params)
    rl_root, robustness_root = Path(rl_root), Path(robustness_root)
    rows: list[dict[str, Any]] = []
    pairs = sorted((p.parent.parent.parent.name, p.parent.name) for p in rl_root.glob(f"*/{reference}/*/metrics.json"))
    for dataset, task in pairs:
        runs_a = seed_folders(llm_model_dir(dataset, reference, task, rl_root))
        others = sorted(p.parent for p in rl_root.glob(f"{dataset}/*/{task}/metrics.json") if p.parent.parent.name != reference)
        for folder in declared_only(others):
            variant, runs_b = folder.parent.name, seed_folders(folder)
            rows += metric_rows(dataset, task, reference, variant, runs_a, runs_b, params)
            rows += alignment_rows(dataset, task, reference, variant, runs_a, runs_b, params)
            rows += shuffle_rows(dataset, task, reference, variant, robustness_root, params)
    return rows


def report_rl_comparison(rl_root: str | Path = LLM_MODELS, robustness_root: str | Path = ROBUSTNESS,
                         out: str | Path = RESULTS, params: ParamsSource = "params.yaml") -> list[Path]:
    """Write ``results/rl_comparison.{md,csv,json}``."""
    params = load_params(params)
    rows = comparison_rows(rl_root, robustness_root, params)
    resamples = load_params(params).get("metrics", {}).get("bootstrap_resamples")
    intro = ("EAG-RL (A) against every other trained RL variant (B) on the same test patients. `a_mean ± a_std`: "
             "mean and std over training seeds (`a_seeds`) of each seed's bootstrap mean. AUROC/AUPRC rows: "
             f"paired bootstrap ({resamples} patient resamples) of the seed-mean difference A − B with every seed "
             "scored on the same resamples; `verdict` says `inconclusive` when the 95 % interval covers 0 (`not testable` when it has no width: the difference never varies, as when both variants answer one constant probability), and "
             "`min_detectable_effect` is the difference this n detects with 80 % power. Alignment rows: mean "
             "Jaccard of the named features with the guiding expert's top-k / the true salient set, and the paired "
             "bootstrap of each patient's seed-mean Jaccard, A − B. "
             "`auroc_shuffle_drop`: AUROC with every feature line shuffled minus unperturbed, mean ± std over the "
             "seeds evaluated under perturbation, and the paired bootstrap of A's drop minus B's on the same "
             "resamples. "
             "Built by `eagrl report-rl-comparison` (benchmark/reports/rl_comparison.py).")
    if not rows:
        intro += "\n\nNo comparison yet: no `eag_rl` run beside another variant under models/llm."
    paths = write_table(rows, Path(out) / "rl_comparison", "EAG-RL against its RL baselines, over seeds", intro,
                        COLUMNS)
    LOGGER.info("report-rl-comparison: %d rows -> %s", len(rows), paths[0])
    return paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-rl-comparison``."""
    parser = stage_parser(subparsers, "report-rl-comparison",
                          "EAG-RL vs its RL baselines pooled over seeds (DVC stage report_rl_comparison).", __doc__)
    parser.add_argument("--rl", default=str(LLM_MODELS), help="Root of the trained LLM methods, RL runs among them (models/llm).")
    parser.add_argument("--robustness", default=str(ROBUSTNESS), help="Root of the robustness outputs.")
    parser.add_argument("--out", default="results", help="Folder of the tables (default: results).")
    parser.set_defaults(handler=lambda a: report_rl_comparison(a.rl, a.robustness, a.out, a.params))
