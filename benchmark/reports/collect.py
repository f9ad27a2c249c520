"""The collector behind every table of evaluations: metrics files found through ``report.sources``, each placed.

:func:`collect` finds the metrics files of ``report.sources`` (params.yaml, :class:`ReportConfig`) and attaches to
each its descriptor (:mod:`benchmark.descriptor`): a :class:`Record`; what it cannot place it lists with the reason
(:class:`Collection`). The main table (:mod:`benchmark.reports.main`, whose docstring states the rules: where the
collector looks, what each file is), the ablations, the cross-domain references and ``eagrl verify`` all read
their evaluations through it; :func:`paired_test` compares two records on the same patients.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import ConfigError, ParamsSource, from_mapping, load_params, option
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
from benchmark.runtime import LOGGER

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


def report_config(params: ParamsSource = "params.yaml") -> ReportConfig:
    """The ``report`` section of ``params`` (defaults where absent)."""
    params = load_params(params)
    config = from_mapping(ReportConfig, params.get("report"), f"{params}: report")
    config.source_configs(f"{params}: report")  # validate early
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
        return as_number(self.metrics.get(metric, {}).get("mean"))

    def summary(self, metric: str, block: dict[str, Any] | None = None) -> dict[str, float]:
        """``{point, mean, std, ci_low, ci_high}`` of ``metric`` in ``block`` (the file's top level; NaN where absent)."""
        entry = (self.metrics if block is None else block).get(metric) or {}
        return {key: as_number(entry.get(key)) for key in ("point", "mean", "std", "ci_low", "ci_high")}

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


def as_number(value: Any) -> float:
    """``value`` as a float; NaN for None, a bool or anything that is not a number."""
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


def method_key(descriptor: MethodDescriptor) -> str:
    """The row name of a method: ``method`` or ``method (backbone)``."""
    return descriptor.method if descriptor.backbone is None else f"{descriptor.method} ({descriptor.backbone})"
