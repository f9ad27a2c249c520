"""Stage ``report_main``: every evaluated method → ``results/main.{md,csv,json}``.

The main table is built only from metrics files already on disk, so it works with whatever subset of
methods has been run: a method appears as soon as its stage has written a metrics JSON (see
:mod:`benchmark.evaluate`) that the collector can place.

Where the collector looks (``report.sources`` in params.yaml)
-------------------------------------------------------------
A list of path patterns, relative to the repository root, each with optional fixed descriptor fields::

    report:
      sources:
        - pattern: models/experts/{dataset}/{method}/{task}/metrics.json
          fields: {family: expert}
        - pattern: outputs/llm/{dataset}/{task}/{method}/metrics.json

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
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import ConfigError, describe, from_mapping, load_params, option
from benchmark.descriptor import (
    FAMILIES,
    STANDARD,
    DescriptorError,
    MethodDescriptor,
    embedded_descriptor,
)
from benchmark.evaluate import PredictionsError, compare, read_predictions
from benchmark.metrics import MetricsConfig
from benchmark.pipeline_outs import declared_outs, is_declared
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.tables import csv_text, markdown_table

RESULTS = Path("results")
DESCRIPTOR_FIELDS = ("dataset", "task", "method", "family", "backbone", "condition", "train_dataset")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass
class SourceConfig:
    """One place where metrics files are found (an entry of ``report.sources``)."""

    pattern: str = option(help="Path pattern relative to the repository root with {field} placeholders "
                               "(one path component each) and glob wildcards (* within a component, ** across).")
    fields: dict[str, Any] = option({}, help="Descriptor fields fixed for every file this pattern matches, e.g. {family: expert}.")


@dataclass
class ReportConfig:
    """The ``report`` section of params.yaml: where metrics files are and what the main table shows."""

    sources: list[dict[str, Any]] = option([], help="Where metrics files are found: a list of {pattern, fields} (SourceConfig).")
    families: dict[str, str] = option({}, help="Family of a method by its name, used when neither the file nor its source says it (e.g. label_sft: finetune).")
    metrics: list[str] = option(["auroc", "auprc"], help="Metrics shown in the main table as bootstrap mean ± std (the paper shows AUROC and AUPRC).")
    decimals: int = option(3, help="Decimals shown in the Markdown tables (CSV and JSON keep full precision).")

    def source_configs(self, where: str = "params.yaml: report") -> list[SourceConfig]:
        """``sources`` as checked :class:`SourceConfig` objects."""
        out = []
        for i, entry in enumerate(self.sources):
            source = from_mapping(SourceConfig, entry, f"{where}.sources[{i}]")
            names = _PLACEHOLDER.findall(source.pattern)
            unknown = sorted(set(names) - set(DESCRIPTOR_FIELDS))
            if unknown:
                raise ConfigError(f"{where}.sources[{i}].pattern: unknown placeholder(s) {unknown}; "
                                  f"use {list(DESCRIPTOR_FIELDS)}")
            if len(names) != len(set(names)):
                raise ConfigError(f"{where}.sources[{i}].pattern: a placeholder appears twice in {source.pattern!r}")
            bad = sorted(set(source.fields) - set(DESCRIPTOR_FIELDS))
            if bad:
                raise ConfigError(f"{where}.sources[{i}].fields: unknown descriptor field(s) {bad}; use {list(DESCRIPTOR_FIELDS)}")
            out.append(source)
        return out

    def __post_init__(self) -> None:
        bad = {method: family for method, family in self.families.items() if family not in FAMILIES}
        if bad:
            raise ConfigError(f"report.families: unknown famil(ies) {bad}; use one of {FAMILIES}")
        if not self.metrics:
            raise ConfigError("report.metrics: list at least one metric (e.g. [auroc, auprc])")


def report_config(params_path: str | Path = "params.yaml") -> ReportConfig:
    """The ``report`` section of ``params_path`` (defaults where absent)."""
    params = load_params(params_path)
    config = from_mapping(ReportConfig, params.get("report"), f"{params_path}: report")
    config.source_configs(f"{params_path}: report")  # validate early
    return config


# ------------------------------------------------------------------------------------------ collecting
@dataclass(frozen=True)
class Record:
    """One metrics file with its descriptor."""

    descriptor: MethodDescriptor
    metrics: dict[str, Any]
    path: Path
    root: Path = Path(".")  # the folder ``path`` (and a relative ``predictions`` path) is relative to

    def mean(self, metric: str) -> float:
        """Bootstrap mean of ``metric`` (NaN when absent)."""
        return _number(self.metrics.get(metric, {}).get("mean"))

    def summary(self, metric: str, block: dict[str, Any] | None = None) -> dict[str, float]:
        """``{point, mean, std, ci_low, ci_high}`` of ``metric`` in ``block`` (the file's top level; NaN where absent)."""
        entry = (self.metrics if block is None else block).get(metric) or {}
        return {key: _number(entry.get(key)) for key in ("point", "mean", "std", "ci_low", "ci_high")}

    def worst_case(self, metric: str) -> dict[str, float]:
        """:meth:`summary` with unparsable answers scored ``worst_case`` (an LLM's file holds it beside the main
        rule, :func:`benchmark.evaluate.evaluate`); NaN for files without LLM answers (experts)."""
        if (self.metrics.get("config") or {}).get("unparsable") == "worst_case":
            return self.summary(metric, {} if "uninformative" not in self.metrics else None)
        return self.summary(metric, self.metrics.get("worst_case") or {})

    @property
    def predictions(self) -> Path | None:
        """The predictions CSV this file was computed from, when it is still on disk.

        Taken from the metrics file's ``predictions`` key (written by ``evaluate_file``; a relative path is
        relative to ``root``), else a sibling ``predictions.csv`` or ``predictions_test.csv`` (the experts'
        layout); None when there is none.
        """
        value = self.metrics.get("predictions")
        candidates = [self.root / value] if value else []  # an absolute value stays as it is
        here = self.root / self.path
        candidates += [here.with_name("predictions.csv"), here.with_name("predictions_test.csv")]
        return next((path for path in candidates if path.is_file()), None)

    @property
    def seed_predictions(self) -> dict[int, Path]:
        """Every training seed's predictions CSV: ``{seed: path}`` from the file's ``seeds.predictions`` block
        (RL variants, :func:`benchmark.seeds.seed_block`; paths relative to the metrics file), when all of them
        are on disk; else the one run of :attr:`predictions` under seed 0; empty when there is none."""
        listed = ((self.metrics.get("seeds") or {}).get("predictions")) or {}
        folder = (self.root / self.path).parent
        paths = {int(seed): folder / relative for seed, relative in listed.items()}
        if paths and all(path.is_file() for path in paths.values()):
            return paths
        return {} if self.predictions is None else {0: self.predictions}


def paired_test(a: Record, b: Record, config: MetricsConfig | None = None) -> dict[str, dict[str, float]]:
    """Paired bootstrap test of record A against record B (A − B) from their predictions files.

    :func:`benchmark.evaluate.compare` on the same patients: per metric ``{difference, mean, std, ci_low,
    ci_high, p_value}`` (two-sided p of "no difference"). Raises :class:`~benchmark.evaluate.PredictionsError`
    when a predictions file is not on disk or the two files do not cover the same patients and labels.
    """
    for record in (a, b):
        if record.predictions is None:
            raise PredictionsError(f"{record.path}: no predictions file on disk beside it (nor at its 'predictions' key)")
    return compare(read_predictions(a.predictions), read_predictions(b.predictions), config,
                   (a.path.as_posix(), b.path.as_posix()))


@dataclass
class Collection:
    """What the collector found: placed records and files it could not place (with the reason)."""

    records: list[Record] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def standard(self) -> list[Record]:
        """Records on unperturbed, in-domain test sets (the main table's rows)."""
        return [r for r in self.records if r.descriptor.condition == STANDARD and not r.descriptor.cross_domain]


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching a relative POSIX path against a source pattern, capturing its placeholders."""
    components = pattern.strip("/").split("/")
    pieces = []
    for i, component in enumerate(components):
        if component == "**":
            pieces.append("(?:[^/]+/)*")
            continue
        out, pos = "", 0
        for match in _PLACEHOLDER.finditer(component):
            out += re.escape(component[pos:match.start()]).replace(r"\*", "[^/]*")
            out += f"(?P<{match.group(1)}>[^/]+)"
            pos = match.end()
        out += re.escape(component[pos:]).replace(r"\*", "[^/]*")
        pieces.append(out if i == len(components) - 1 else out + "/")
    return re.compile("^" + "".join(pieces) + "$")


def pattern_glob(pattern: str) -> str:
    """The glob equivalent of a source pattern (placeholders become ``*``)."""
    return _PLACEHOLDER.sub("*", pattern.strip("/"))


def resolve_descriptor(path: Path, data: dict[str, Any], from_path: dict[str, str], fixed: dict[str, Any],
                       families: dict[str, str]) -> MethodDescriptor:
    """Merge the descriptor sources of one file (see the module docstring); errors name the file."""
    inside = embedded_descriptor(path, data)
    for name, value in from_path.items():
        if name in inside and inside[name] is not None and str(inside[name]) != value:
            raise DescriptorError(f"{path}: descriptor field '{name}' is {inside[name]!r} in the file but the path "
                                  f"says {value!r}; fix the file's descriptor or report.sources in params.yaml")
    merged: dict[str, Any] = {**fixed, **from_path, **{k: v for k, v in inside.items() if v is not None}}
    if not merged.get("family") and merged.get("method") in families:
        merged["family"] = families[merged["method"]]
    return MethodDescriptor.from_dict(merged, str(path))


def collect(config: ReportConfig, root: str | Path = ".") -> Collection:
    """Find every metrics file of ``config.sources`` under ``root`` and attach its descriptor.

    Two files with the same descriptor are an error (the table could not say which one it shows). In a DVC
    project, a file outside every ``outs`` of the current ``dvc.yaml`` is not collected: it was written by a
    stage that no longer exists (:mod:`benchmark.pipeline_outs`), and is listed as skipped with the fix.
    """
    root = Path(root)
    outs = declared_outs(root)
    collection = Collection()
    seen: dict[MethodDescriptor, Path] = {}
    visited: set[Path] = set()
    for source in config.source_configs():
        regex = pattern_regex(source.pattern)
        for path in sorted(root.glob(pattern_glob(source.pattern))):
            if not path.is_file() or path in visited:
                continue
            relative = path.relative_to(root).as_posix()
            match = regex.match(relative)
            if match is None or any(part.startswith(".") for part in relative.split("/")):
                continue  # hidden folders are temporary outputs of a stage still writing (atomic_directory)
            visited.add(path)
            if outs is not None and not is_declared(relative, outs):
                collection.skipped.append((Path(relative), "written by no stage of the current dvc.yaml (a removed "
                                           "stage, or another profile's): delete it"))
                LOGGER.warning("report: not collected: %s is no output of the current pipeline; delete it", relative)
                continue
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                collection.skipped.append((Path(relative), f"not valid JSON ({error})"))
                continue
            if not isinstance(data, dict) or "n" not in data:
                collection.skipped.append((Path(relative), "not a metrics file of `eagrl evaluate` (no 'n')"))
                continue
            try:
                descriptor = resolve_descriptor(Path(relative), data, match.groupdict(), source.fields, config.families)
            except DescriptorError as error:
                collection.skipped.append((Path(relative), str(error)))
                LOGGER.warning("report: not collected: %s", error)
                continue
            if descriptor in seen:
                raise DescriptorError(f"{seen[descriptor]} and {relative} have the same descriptor {descriptor.to_dict()}; "
                                      f"give them different methods/conditions or remove one")
            seen[descriptor] = Path(relative)
            collection.records.append(Record(descriptor, data, Path(relative), root))
    return collection


# ------------------------------------------------------------------------------------------ the table
def _sort_key(record: Record, dataset_order: Sequence[str]) -> tuple:
    d = record.descriptor
    order = list(dataset_order)
    return (order.index(d.dataset) if d.dataset in order else len(order), d.dataset, d.task,
            FAMILIES.index(d.family), d.method, d.backbone or "")


def method_key(descriptor: MethodDescriptor) -> str:
    """The row name of a method: ``method`` or ``method (backbone)``."""
    return descriptor.method if descriptor.backbone is None else f"{descriptor.method} ({descriptor.backbone})"


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
                               "parse_failure_rate": _number(record.metrics.get("parse_failure_rate", 0.0))}
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
        row[f"{metric}_seeds_mean"] = _number(entry.get("mean", float("nan")))
        row[f"{metric}_seeds_std"] = _number(entry.get("std", float("nan")))
    return row


def mechanism_columns(metrics_file: dict[str, Any]) -> dict[str, float]:
    """The ``mechanism`` block of an LLM's file (:mod:`benchmark.alignment`); NaN where absent (experts)."""
    block = metrics_file.get("mechanism") or {}
    return {name: _number(block.get(name) if block.get(name) is not None else float("nan")) for name in MECHANISM}


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


def write_main(collection: Collection, config: ReportConfig, out: str | Path = RESULTS,
               dataset_order: Sequence[str] = ()) -> list[Path]:
    """Write ``main.md``, ``main.csv`` and ``main.json`` under ``out``; returns the paths."""
    out = Path(out)
    records = sorted(collection.standard(), key=lambda r: _sort_key(r, dataset_order))
    long = long_rows(records, config.metrics)
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
        detail = []
        for row in long:
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
            detail.append(item)
        lines.append(markdown_table(detail))
    else:
        lines.append("No evaluated method was found yet: no metrics file matches `report.sources` in params.yaml.")
    if collection.skipped:
        lines += ["", "## Not collected", "",
                  "Metrics files that match `report.sources` but could not be placed (fix the descriptor, see "
                  "`benchmark/descriptor.py`):", ""]
        lines += [f"- `{path.as_posix()}`: {reason}" for path, reason in collection.skipped]
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


def report_main(params_path: str | Path = "params.yaml", root: str | Path = ".", out: str | Path = RESULTS) -> list[Path]:
    """Collect every metrics file and write the main table (the ``report_main`` stage)."""
    configure_logging()
    params = load_params(params_path)
    config = from_mapping(ReportConfig, params.get("report"), f"{params_path}: report")
    collection = collect(config, root)
    paths = write_main(collection, config, out, list((params.get("datasets") or {}).keys()))
    LOGGER.info("report-main: %d evaluation(s) collected (%d in the main table), %d not collected -> %s",
                len(collection.records), len(collection.standard()), len(collection.skipped), paths[0])
    return paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-main``."""
    parser = subparsers.add_parser(
        "report-main", help="Write results/main.{md,csv,json} from every metrics file (DVC stage report_main).",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="params.yaml section 'report':\n" + describe(ReportConfig))
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".", help="Folder the source patterns are relative to.")
    parser.add_argument("--out", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: report_main(args.params, args.root, args.out))
