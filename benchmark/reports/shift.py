"""Stages ``report_robustness`` and ``report_cross_domain``: the distribution-shift tables and plots.

``eagrl report-robustness`` reads every ``outputs/robustness/<dataset>/<method>/<task>/<condition>/metrics.json``
(LLM methods) and ``outputs/robustness/<dataset>/<group>/<model>/<task>/<condition>/metrics.json`` (DL models)
(:mod:`benchmark.experiments.robustness`; each file's descriptor names its method) and writes

* ``results/robustness.csv`` / ``.json`` — one row per (data set, task, method, condition): bootstrap mean and
  std of AUROC and AUPRC, the parse-failure rate, and the change against the method's own ``none`` level
  (``d_auroc`` = level − none, ``rel_auroc_pct`` = 100 · d / none; same for AUPRC);
* ``results/robustness.md`` — per data set and task, a method × condition table of AUROC and of AUPRC
  (mean ± std), then the degradation summary: per method the mean change over the shuffle, noise and mask
  levels, sorted by the shuffle degradation (the paper's perturbation): "who degrades least" is its top;
* ``results/plots/robustness/<dataset>_<task>.png`` — AUROC and AUPRC against the level, one panel per kind,
  one line per method (solid: DL models, dashed: LLM methods), error bars = bootstrap std.

``eagrl report-cross-domain`` reads ``outputs/cross_domain/<source>_to_<target>/<method>/<task>/metrics.json``
(:mod:`benchmark.experiments.cross_domain`) and writes ``results/cross_domain.{md,csv,json}`` — per pair and task, each
method's target scores, sorted by AUROC ("who transfers best" is the top), beside its in-domain scores on the
target and on the source when those evaluations exist (found like the main table's, ``report.sources``) —
and ``results/plots/cross_domain.png``.

LLM rows are scored on a subset of patients (``robustness.llm.n_patients``, ``llm.evaluation``), DL rows on
the whole test split: ``n`` says which; compare degradations (differences within a method), not raw levels
across the two.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

from benchmark.config import ParamsSource
from benchmark.paths import CROSS_DOMAIN, RESULTS, ROBUSTNESS
from benchmark.reports.shift_plots import plot_cross_domain, plot_robustness
from benchmark.reports.shift_rows import (
    KIND_ORDER,
    METRICS,
    cross_domain_rows,
    degradation_rows,
    in_domain_scores,
    robustness_rows,
)
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.stage_cli import add_params, stage_parser
from benchmark.tables import csv_text, markdown_table


def _pm(row: dict[str, Any], metric: str) -> str:
    return f"{row[f'{metric}_mean']:.3f} ± {row[f'{metric}_std']:.3f}"


def _fmt(value: float, signed: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def robustness_markdown(rows: list[dict[str, Any]], summary: list[dict[str, Any]], intro: str) -> str:
    """The Markdown report: per data set/task a wide table per metric, then the degradation summary."""
    lines = ["# Robustness to feature perturbations", "", intro.strip(), ""]
    pairs = sorted({(r["dataset"], r["task"]) for r in rows})
    for dataset, task in pairs:
        part = [r for r in rows if (r["dataset"], r["task"]) == (dataset, task)]
        conditions = sorted({(KIND_ORDER.index(r["kind"]), r["level"], r["condition"]) for r in part})
        columns = [c[2] for c in conditions]
        lines += [f"## {dataset} / {task}", ""]
        for metric in METRICS:
            table = []
            for key in dict.fromkeys((r["family"], r["method"]) for r in part):
                cells = {r["condition"]: _pm(r, metric) for r in part if (r["family"], r["method"]) == key}
                n = {r["n"] for r in part if (r["family"], r["method"]) == key}
                table.append({"family": key[0], "method": key[1], "n": "/".join(map(str, sorted(n))),
                              **{c: cells.get(c, "—") for c in columns}})
            lines += [f"{metric.upper()} (bootstrap mean ± std) per condition:", "",
                      markdown_table(table, ["family", "method", "n", *columns]), ""]
        degraded = [s for s in summary if (s["dataset"], s["task"]) == (dataset, task)]
        table = [{"method": s["method"], "family": s["family"], "AUROC none": _fmt(s["auroc_none"], False),
                  "Δ AUROC shuffle": _fmt(s["shuffle_d_auroc"]), "Δ AUPRC shuffle": _fmt(s["shuffle_d_auprc"]),
                  "Δ AUROC noise": _fmt(s["noise_d_auroc"]), "Δ AUROC mask": _fmt(s["mask_d_auroc"]),
                  "parse failures": f"{s['parse_failure_rate']:.2f}"} for s in degraded]
        lines += ["Mean change against the method's own `none` level over the levels of each kind, sorted by the "
                  "shuffle change (least degradation first):", "", markdown_table(table), ""]
    return "\n".join(lines)


ROBUSTNESS_COLUMNS = ["dataset", "task", "family", "method", "backbone", "condition", "kind", "level", "n",
                      "positives", "auroc_mean", "auroc_std", "auprc_mean", "auprc_std", "parse_failure_rate",
                      "d_auroc", "rel_auroc_pct", "d_auprc", "rel_auprc_pct"]


def report_robustness(root: str | Path = ROBUSTNESS, out: str | Path = RESULTS,
                      params: ParamsSource = "params.yaml", datasets: Collection[str] | None = None) -> list[Path]:
    """Write ``results/robustness.{md,csv,json}`` and the per-task PNGs; returns the paths.

    ``datasets`` restricts the tables and plots to those data sets (default: every one found).
    """
    configure_logging()
    rows = robustness_rows(root, datasets)
    if not rows:
        which = "" if datasets is None else f" of data set(s) {sorted(datasets)}"
        raise FileNotFoundError(f"{root}: no */*/*/*/metrics.json{which} found; run the robustness stages first")
    summary = degradation_rows(rows)
    intro = _robustness_intro(params)
    out = Path(out)
    paths = [atomic_write_text(out / "robustness.md", robustness_markdown(rows, summary, intro)),
             atomic_write_text(out / "robustness.csv", csv_text(rows, ROBUSTNESS_COLUMNS)),
             atomic_write_json(out / "robustness.json", {"conditions": [_finite(r) for r in rows],
                                                         "degradation": [_finite(s) for s in summary]})]
    paths += plot_robustness(rows, out / "plots" / "robustness")
    LOGGER.info("report-robustness: %d evaluations of %d methods -> %s", len(rows), len(summary), paths[0])
    return paths


def _robustness_intro(params: ParamsSource) -> str:
    text = ("Every method on perturbed test sets (`eagrl robustness-dl`, `eagrl robustness-llm`; "
            "benchmark/perturb.py). `shuffle:f` — the paper's perturbation: the order of a fraction f of the "
            "features is shuffled (prompt lines for LLMs, each line keeping its name and values; input columns "
            "for DL models, whose slots then hold other features' values); `noise:s` — every observed value "
            "multiplied by 1 + s·z, z ~ N(0,1) clipped to ±3 (relative to the value: large for features with a "
            "large offset such as pH or temperature); `mask:p` — a fraction p of each patient's observed values "
            "removed. `none` is the unperturbed reference on the same patients. Each perturbation is seeded per "
            "patient, so DL and LLM methods see the same perturbed values. DL rows use the whole test split, LLM "
            "rows a seeded label-stratified subset (column n): compare changes, not levels, across the two.")
    try:
        from benchmark.config import load_params
        from benchmark.experiments.robustness import load_robustness_config

        config = load_robustness_config(load_params(params), params)
        text += (f" Settings: perturbation seed {config.seed}; LLM subset {config.llm.n_patients or 'all'} patients "
                 f"(seed {config.llm.seed}).")
    except Exception as error:  # the report still works without a params file (e.g. in tests)
        LOGGER.info("report-robustness: settings not added to the intro (%s)", error)
    return text


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


CROSS_DOMAIN_COLUMNS = ["source", "target", "task", "family", "method", "backbone", "n", "positives", "auroc_mean",
                        "auroc_std", "auprc_mean", "auprc_std", "parse_failure_rate", "zero_shot", "mapped_features",
                        "auroc_in_domain_target", "auroc_in_domain_source", "auroc_gap_to_target",
                        "auprc_in_domain_target", "auprc_in_domain_source", "auprc_gap_to_target"]


def cross_domain_markdown(rows: list[dict[str, Any]]) -> str:
    """Per pair and task, methods sorted by target AUROC, with in-domain references."""
    lines = ["# Cross-domain generalisation", "",
             "Each method trained on the source domain and tested zero-shot on the target's test patients "
             "(`eagrl cross-domain`; benchmark/experiments/cross_domain.py). DL models read the target through the documented "
             "feature mapping (benchmark/data/mapping.py; `mapped` = source columns that receive a target feature, "
             "the rest are missing and imputed with the source's train median); LLM methods read the target's text "
             "as it is, with the adapter trained on the source; prompting methods learn nothing from the source, so "
             "their row is zero-shot on the target. `in-domain` columns: the same method trained and tested on the "
             "target / on the source (main evaluations, when present). Sorted by target AUROC: the best "
             "transfer first. LLM rows use the `llm.evaluation` subset, DL rows the whole target test split (n).",
             ""]
    for key in dict.fromkeys((r["source"], r["target"], r["task"]) for r in rows):
        part = [r for r in rows if (r["source"], r["target"], r["task"]) == key]
        table = [{"method": r["method"], "family": r["family"], "n": r["n"], "AUROC": _pm(r, "auroc"),
                  "AUPRC": _pm(r, "auprc"), "mapped": r["mapped_features"],
                  "parse failures": f"{r['parse_failure_rate']:.2f}",
                  "AUROC in-domain target": _fmt(r["auroc_in_domain_target"], False),
                  "AUROC in-domain source": _fmt(r["auroc_in_domain_source"], False),
                  "Δ AUROC vs in-domain target": _fmt(r["auroc_gap_to_target"])} for r in part]
        lines += [f"## {key[0]} → {key[1]} / {key[2]}", "", markdown_table(table), ""]
    return "\n".join(lines)


def report_cross_domain(root: str | Path = CROSS_DOMAIN, out: str | Path = RESULTS,
                        params: ParamsSource = "params.yaml", repo: str | Path = ".",
                        datasets: Collection[str] | None = None) -> list[Path]:
    """Write ``results/cross_domain.{md,csv,json}`` and ``results/plots/cross_domain.png``.

    ``datasets`` restricts them to the pairs whose source or target is one of these (default: every pair).
    """
    configure_logging()
    rows = cross_domain_rows(root, in_domain_scores(params, repo), datasets)
    if not rows:
        which = "" if datasets is None else f" with source or target in {sorted(datasets)}"
        raise FileNotFoundError(f"{root}: no */*/*/metrics.json{which} found; run the cross_domain stages first")
    out = Path(out)
    paths = [atomic_write_text(out / "cross_domain.md", cross_domain_markdown(rows)),
             atomic_write_text(out / "cross_domain.csv", csv_text(rows, CROSS_DOMAIN_COLUMNS)),
             atomic_write_json(out / "cross_domain.json", [_finite(r) for r in rows]),
             plot_cross_domain(rows, out / "plots" / "cross_domain.png")]
    LOGGER.info("report-cross-domain: %d evaluations -> %s", len(rows), paths[0])
    return paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-robustness`` and ``eagrl report-cross-domain``."""
    for name, summary, root, outputs, report in (
            ("report-robustness", "results/robustness.{md,csv,json} + plots/robustness/*.png.", ROBUSTNESS,
             "robustness", report_robustness),
            ("report-cross-domain", "results/cross_domain.{md,csv,json} + plots/cross_domain.png.", CROSS_DOMAIN,
             "cross-domain", report_cross_domain)):
        parser = stage_parser(subparsers, name, summary, __doc__, params=False)
        parser.add_argument("--root", default=str(root), help=f"Folder of the {outputs} outputs.")
        parser.add_argument("--out", default=str(RESULTS), help="Results folder.")
        add_params(parser, read=False)  # optional: the reports read it only for notes
        parser.set_defaults(handler=lambda a, report=report: report(a.root, a.out, a.params))
