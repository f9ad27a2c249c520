"""Stage ``report_main``: every evaluated method → ``results/main.{md,csv,json}``.

The main table is built only from metrics files already on disk, so it works with whatever subset of
methods has been run: a method appears as soon as its stage has written a metrics JSON (see
:mod:`benchmark.evaluate`) that the collector (:mod:`benchmark.reports.collect`) can place.

Where the collector looks (``report.sources`` in params.yaml)
-------------------------------------------------------------
A list of path patterns, relative to the repository root, each with optional fixed descriptor fields::

    report:
      sources:
        - pattern: models/experts/{dataset}/{method}/{task}/metrics.json
          fields: {family: expert}
        - pattern: outputs/llm/{dataset}/{method}/{task}/metrics.json

``{field}`` matches one path component and fills that descriptor field (``dataset``, ``task``,
``method``, ``family``, ``backbone``, ``condition``, ``train_dataset``); ``*`` matches within a
component and ``**`` any number of components, as in glob. Patterns that match nothing are fine (the
method has not been run yet).

What each file is (the descriptor, :mod:`benchmark.descriptor`)
--------------------------------------------------------------
Fields are taken, in this order of precedence, from the ``descriptor`` key inside the metrics JSON (or
a ``descriptor.json`` beside it), then the pattern's placeholders, then the source's ``fields``, then
``report.families`` (family by method name). A contradiction between the file and its path is an error;
a file whose descriptor stays incomplete is not dropped silently — it is listed under "Not collected" in
``results/main.md`` with the missing fields, and logged.

The table
---------
Rows: methods (family, method, backbone) on the standard (unperturbed, in-domain) test sets; columns:
data set × task; cells: bootstrap mean ± std of each metric of ``report.metrics`` (AUROC and AUPRC by
default, as in the paper), with the parse-failure rate, the number of test patients and, for LLM methods,
the metrics with unparsable answers scored worst case (``1 − label``) in the long table below it. ``main.csv`` is the long table (one row per method × data set × task, with CIs);
``main.json`` nests ``{dataset: {task: {method: {...numbers}}}}`` for ``dvc metrics show/diff`` and for
``make regress``. Perturbed and cross-domain evaluations are collected too (``eagrl verify`` uses them)
but belong to the robustness and cross-domain tables, not to this one.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmark.config import ParamsSource, from_mapping, load_params
from benchmark.descriptor import FAMILIES
from benchmark.paths import RESULTS
from benchmark.reports.collect import Collection, Record, ReportConfig, as_number, collect, method_key
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.stage_cli import params_epilog, stage_parser
from benchmark.tables import csv_text, markdown_table


def _sort_key(record: Record, dataset_order: Sequence[str]) -> tuple:
    d = record.descriptor
    order = list(dataset_order)
    return (order.index(d.dataset) if d.dataset in order else len(order), d.dataset, d.task,
            FAMILIES.index(d.family), d.method, d.backbone or "")


def long_rows(records: Iterable[Record], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per record: descriptor, counts, per metric mean/std/CI, then the same with unparsable answers
    scored worst case (``<metric>_worst_case_*``: LLM files only, NaN for experts), in full precision."""
    rows = []
    for record in records:
        d = record.descriptor
        row: dict[str, Any] = {"dataset": d.dataset, "task": d.task, "family": d.family, "method": d.method,
                               "backbone": d.backbone or "", "n": int(record.metrics.get("n", 0)),
                               "positives": int(record.metrics.get("positives", 0)),
                               "parse_failures": int(record.metrics.get("parse_failures", 0)),
                               "parse_failure_rate": as_number(record.metrics.get("parse_failure_rate", 0.0))}
        for metric in metrics:
            summary = record.summary(metric)
            row.update({f"{metric}_{key}": summary[key] for key in ("mean", "std", "ci_low", "ci_high")})
        for metric in metrics:
            summary = record.worst_case(metric)
            row.update({f"{metric}_worst_case_{key}": summary[key] for key in ("mean", "std", "ci_low", "ci_high")})
        row.update(seed_columns(record.metrics, metrics))
        row.update(mechanism_columns(record.metrics))
        row["metrics_file"] = record.path.as_posix()
        rows.append(row)
    return rows


MECHANISM = ("names_feature_rate", "truncation_rate", "alignment_truth", "alignment_expert")


def seed_columns(metrics_file: dict[str, Any], metrics: Sequence[str]) -> dict[str, Any]:
    """``n_seeds`` and, per metric, the mean and std over training seeds of the file's ``seeds`` block (RL
    variants: :func:`benchmark.seeds.seed_block`); NaN for a method with one run (n_seeds 1)."""
    block = metrics_file.get("seeds") or {}
    row: dict[str, Any] = {"n_seeds": int(block.get("n_seeds", 1))}
    for metric in metrics:
        entry = (block.get("metrics") or {}).get(metric) or {}
        row[f"{metric}_seeds_mean"] = as_number(entry.get("mean", float("nan")))
        row[f"{metric}_seeds_std"] = as_number(entry.get("std", float("nan")))
    return row


def mechanism_columns(metrics_file: dict[str, Any]) -> dict[str, float]:
    """The ``mechanism`` block of an LLM's file (:mod:`benchmark.alignment`); NaN where absent (experts)."""
    block = metrics_file.get("mechanism") or {}
    return {name: as_number(block.get(name) if block.get(name) is not None else float("nan")) for name in MECHANISM}


def _rate(value: float, decimals: int) -> str:
    return "" if math.isnan(value) else f"{value:.{decimals}f}"


def _pm(mean: float, std: float, decimals: int) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def wide_rows(records: Sequence[Record], metrics: Sequence[str], decimals: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The paper's layout: a row per method, a column per data set · task · metric ("mean ± std")."""
    columns: list[str] = []
    rows: dict[tuple, dict[str, Any]] = {}
    for record in records:
        d = record.descriptor
        for metric in metrics:
            column = f"{d.dataset} · {d.task} · {metric.upper()}"
            if column not in columns:
                columns.append(column)
        key = (FAMILIES.index(d.family), d.method, d.backbone or "")
        row = rows.setdefault(key, {"family": d.family, "method": d.method, "backbone": d.backbone or "—"})
        for metric in metrics:
            summary = record.summary(metric)
            row[f"{d.dataset} · {d.task} · {metric.upper()}"] = _pm(summary["mean"], summary["std"], decimals)
    ordered = [rows[k] for k in sorted(rows)]
    for row in ordered:
        for column in columns:
            row.setdefault(column, "—")
    return ordered, ["family", "method", "backbone", *columns]


def nested_json(records: Iterable[Record], metrics: Sequence[str]) -> dict[str, Any]:
    """``{dataset: {task: {method (backbone): {n, positives, parse_failure_rate, <metric>_<stat>...}}}}``."""
    records = list(records)
    out: dict[str, Any] = {}
    for row, record in zip(long_rows(records, metrics), records, strict=True):
        numbers = {k: v for k, v in row.items() if k not in ("dataset", "task", "family", "method", "backbone", "metrics_file")}
        out.setdefault(row["dataset"], {}).setdefault(row["task"], {})[method_key(record.descriptor)] = numbers
    return out


def _detail_row(row: dict[str, Any], config: ReportConfig) -> dict[str, Any]:
    """One row of the "Details" table from a long row: counts, CIs, worst case, over seeds and mechanism, as text."""
    item = {"dataset": row["dataset"], "task": row["task"], "family": row["family"], "method": row["method"],
            "backbone": row["backbone"] or "—", "n": row["n"], "positives": row["positives"],
            "pf rate": f"{row['parse_failure_rate']:.3f}"}
    for metric in config.metrics:
        item[metric.upper()] = _pm(row[f"{metric}_mean"], row[f"{metric}_std"], config.decimals)
        low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
        item[f"{metric.upper()} CI"] = "n/a" if math.isnan(low) else f"[{low:.{config.decimals}f}, {high:.{config.decimals}f}]"
    for metric in config.metrics:
        worst = row[f"{metric}_worst_case_mean"]
        item[f"{metric.upper()} (worst case)"] = ("" if math.isnan(worst) else
                                                  _pm(worst, row[f"{metric}_worst_case_std"], config.decimals))
    for metric in config.metrics:
        seeds_mean = row[f"{metric}_seeds_mean"]
        item[f"{metric.upper()} over seeds"] = ("" if math.isnan(seeds_mean) else
                                                f"{_pm(seeds_mean, row[f'{metric}_seeds_std'], config.decimals)} "
                                                f"({row['n_seeds']})")
    for name in MECHANISM:
        item[name.replace("_rate", "").replace("_", " ")] = _rate(row[name], config.decimals)
    return item


def _main_markdown(collection: Collection, records: Sequence[Record], long: list[dict[str, Any]],
                   config: ReportConfig) -> list[str]:
    """The lines of ``main.md``: the introduction, the wide table, its details and what could not be collected."""
    wide, wide_columns = wide_rows(records, config.metrics, config.decimals)
    metric_names = ", ".join(m.upper() for m in config.metrics)
    lines = [
        "# Main results",
        "",
        f"Every evaluated method on the standard (unperturbed, in-domain) test sets: {metric_names} as bootstrap "
        "mean ± std over test-patient resamples (`metrics.bootstrap_resamples` in params.yaml), as in the paper's "
        "tables. Built by `eagrl report-main` from the metrics files listed in the last column of `main.csv`; "
        "a method appears once its stage has run. Unparsable LLM answers are scored by `metrics.unparsable` "
        "and counted in the parse-failure rate, never dropped. Evaluations under perturbations or across "
        "domains are in `robustness.md` and `cross_domain.md` (this table does not count them: their files "
        "are not inputs of this stage, so a count would depend on which stages happened to run first).",
        "",
    ]
    if records:
        lines += [markdown_table(wide, wide_columns), "", "## Details", "",
                  "`n`: test patients scored; `pf rate`: share of unparsable answers; CI: percentile bootstrap interval; "
                  "`(worst case)`: LLM methods scored with every unparsable answer confidently wrong "
                  "(probability 1 − label) instead of 0.5, a lower bound (blank for experts, which always answer); "
                  "`over seeds`: mean ± std of the bootstrap means over training seeds (their number in brackets; "
                  "blank for a method with one run: its ± is over test patients only); `names feature`, `truncation`: "
                  "share of answers naming a cohort feature / cut at max_new_tokens; `alignment truth` / "
                  "`alignment expert`: mean Jaccard of the named features with the patient's true salient set / the "
                  "guiding expert's top-k (benchmark/alignment.py; blank where not measured).", ""]
        lines.append(markdown_table([_detail_row(row, config) for row in long]))
    else:
        lines.append("No evaluated method was found yet: no metrics file matches `report.sources` in params.yaml.")
    if collection.skipped:
        lines += ["", "## Not collected", "",
                  "Metrics files that match `report.sources` but could not be placed (fix the descriptor, see "
                  "`benchmark/descriptor.py`):", ""]
        lines += [f"- `{path.as_posix()}`: {reason}" for path, reason in collection.skipped]
    return lines


def write_main(collection: Collection, config: ReportConfig, out: str | Path = RESULTS,
               dataset_order: Sequence[str] = ()) -> list[Path]:
    """Write ``main.md``, ``main.csv`` and ``main.json`` under ``out``; returns the paths."""
    out = Path(out)
    records = sorted(collection.standard(), key=lambda r: _sort_key(r, dataset_order))
    long = long_rows(records, config.metrics)
    lines = _main_markdown(collection, records, long, config)
    columns = list(long[0]) if long else ["dataset", "task", "family", "method", "backbone", "n"]
    paths = [
        atomic_write_text(out / "main.md", "\n".join(lines) + "\n"),
        atomic_write_text(out / "main.csv", csv_text(long, columns)),
        atomic_write_json(out / "main.json", finite_json(nested_json(records, config.metrics))),
    ]
    return paths


def finite_json(value: Any) -> Any:
    """NaN → None so that the JSON stays standard (and ``dvc metrics`` can read it)."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def report_main(params: ParamsSource = "params.yaml", root: str | Path = ".", out: str | Path = RESULTS) -> list[Path]:
    """Collect every metrics file and write the main table (the ``report_main`` stage)."""
    configure_logging()
    params = load_params(params)
    config = from_mapping(ReportConfig, params.get("report"), f"{params}: report")
    collection = collect(config, root)
    paths = write_main(collection, config, out, list((params.get("datasets") or {}).keys()))
    LOGGER.info("report-main: %d evaluation(s) collected (%d in the main table), %d not collected -> %s",
                len(collection.records), len(collection.standard()), len(collection.skipped), paths[0])
    return paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-main``."""
    parser = stage_parser(subparsers, "report-main",
                          "Write results/main.{md,csv,json} from every metrics file (DVC stage report_main).",
                          __doc__, params_epilog("report", ReportConfig))
    parser.add_argument("--root", default=".", help="Folder the source patterns are relative to.")
    parser.add_argument("--out", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: report_main(args.params, args.root, args.out))
