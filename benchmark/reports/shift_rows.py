"""The rows of the distribution-shift tables: every robustness and cross-domain metrics file, read and compared.

:func:`robustness_rows` reads the robustness stages' metrics files (:mod:`benchmark.experiments.robustness`) and
sets each against its method's own ``none`` level; :func:`degradation_rows` averages those changes per kind of
perturbation; :func:`cross_domain_rows` reads the cross-domain files (:mod:`benchmark.experiments.cross_domain`)
beside the in-domain scores of :func:`in_domain_scores`. :mod:`benchmark.reports.shift` writes them as tables,
:mod:`benchmark.reports.shift_plots` draws them.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

from benchmark.config import ParamsSource
from benchmark.descriptor import FAMILIES, MethodDescriptor, embedded_descriptor
from benchmark.paths import CROSS_DOMAIN, ROBUSTNESS
from benchmark.perturb import NONE, Perturbation
from benchmark.pipeline_outs import declared_only
from benchmark.runtime import LOGGER

METRICS = ("auroc", "auprc")
KIND_ORDER = (NONE, "shuffle", "noise", "mask")


def _read(path: Path) -> tuple[MethodDescriptor, dict[str, Any]] | None:
    """A metrics file and its descriptor; None (logged) for a file that is not one."""
    try:
        data = json.loads(path.read_text())
        return MethodDescriptor.from_dict(embedded_descriptor(path, data), str(path)), data
    except (json.JSONDecodeError, ValueError) as error:
        LOGGER.warning("report: skipped %s (%s)", path, error)
        return None


def _files(root: Path, depth: int) -> list[Path]:
    pattern = "/".join(["*"] * depth) + "/metrics.json"
    found = [p for p in sorted(root.glob(pattern)) if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return declared_only(found)  # not the outputs of a stage that left dvc.yaml


def _scores(data: dict[str, Any]) -> dict[str, float]:
    out = {}
    for metric in METRICS:
        out[f"{metric}_mean"] = float(data[metric]["mean"])
        out[f"{metric}_std"] = float(data[metric]["std"])
    return out


def _family_order(row: dict[str, Any]) -> int:
    return FAMILIES.index(row["family"]) if row["family"] in FAMILIES else len(FAMILIES)


def robustness_rows(root: str | Path = ROBUSTNESS, datasets: Collection[str] | None = None) -> list[dict[str, Any]]:
    """One row per robustness metrics file, with the change against the method's ``none`` level.

    ``datasets``: keep only the files of these data sets (default: every file), e.g. TJH's alone.
    """
    rows = []
    for path in _files(Path(root), 4) + _files(Path(root), 5):  # LLM methods, then DL models (<group>/<model>)
        read = _read(path)
        if read is None:
            continue
        d, data = read
        if datasets is not None and d.dataset not in datasets:
            continue
        perturbation = Perturbation.parse(d.condition)
        rows.append({"dataset": d.dataset, "task": d.task, "family": d.family, "method": d.method,
                     "backbone": d.backbone, "condition": perturbation.condition, "kind": perturbation.kind,
                     "level": perturbation.level, "n": int(data["n"]), "positives": int(data["positives"]),
                     **_scores(data), "parse_failure_rate": float(data.get("parse_failure_rate", 0.0))})
    reference = {(r["dataset"], r["task"], r["method"]): r for r in rows if r["condition"] == NONE}
    for row in rows:
        ref = reference.get((row["dataset"], row["task"], row["method"]))
        for metric in METRICS:
            base = ref[f"{metric}_mean"] if ref else math.nan
            delta = row[f"{metric}_mean"] - base
            row[f"d_{metric}"] = delta
            row[f"rel_{metric}_pct"] = 100.0 * delta / base if base else math.nan
    rows.sort(key=lambda r: (r["dataset"], r["task"], _family_order(r), r["method"], KIND_ORDER.index(r["kind"]),
                             r["level"]))
    return rows


def degradation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (data set, task, method): mean change over the levels of each kind (negative = it degrades)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["task"], row["family"], row["method"])].append(row)
    out = []
    for (dataset, task, family, method), items in groups.items():
        ref = next((r for r in items if r["condition"] == NONE), None)
        entry: dict[str, Any] = {"dataset": dataset, "task": task, "family": family, "method": method,
                                 "n": items[0]["n"], "auroc_none": ref["auroc_mean"] if ref else math.nan,
                                 "auprc_none": ref["auprc_mean"] if ref else math.nan}
        for kind in ("shuffle", "noise", "mask"):
            levels = [r for r in items if r["kind"] == kind]
            for metric in METRICS:
                values = [r[f"d_{metric}"] for r in levels]
                entry[f"{kind}_d_{metric}"] = sum(values) / len(values) if values else math.nan
            entry[f"{kind}_levels"] = len(levels)
        entry["parse_failure_rate"] = sum(r["parse_failure_rate"] for r in items) / len(items)
        out.append(entry)
    out.sort(key=lambda r: (r["dataset"], r["task"], -_nan_last(r["shuffle_d_auroc"])))
    return out


def _nan_last(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def in_domain_scores(params: ParamsSource = "params.yaml", root: str | Path = ".") -> dict[tuple, dict[str, float]]:
    """(dataset, task, method) → in-domain bootstrap means, from the main table's collection (may be empty)."""
    try:
        from benchmark.reports.collect import collect, report_config

        records = collect(report_config(params), root).standard()
    except Exception as error:  # no params / report section: the table simply lacks the reference columns
        LOGGER.info("report-cross-domain: no in-domain references (%s)", error)
        return {}
    out: dict[tuple, dict[str, float]] = {}
    for record in records:
        d = record.descriptor
        out.setdefault((d.dataset, d.task, d.method), {m: record.mean(m) for m in METRICS})
    return out


def cross_domain_rows(root: str | Path = CROSS_DOMAIN, in_domain: dict[tuple, dict[str, float]] | None = None,
                      datasets: Collection[str] | None = None) -> list[dict[str, Any]]:
    """One row per cross-domain metrics file, with in-domain references where known.

    ``datasets``: keep only the pairs whose source or target is one of these (default: every pair).
    """
    in_domain = in_domain or {}
    rows = []
    for path in _files(Path(root), 3):
        read = _read(path)
        if read is None:
            continue
        d, data = read
        if datasets is not None and d.dataset not in datasets and d.source_dataset not in datasets:
            continue
        run = data.get("run", {})
        row = {"source": d.source_dataset, "target": d.dataset, "task": d.task, "family": d.family,
               "method": d.method, "backbone": d.backbone, "n": int(data["n"]), "positives": int(data["positives"]),
               **_scores(data), "parse_failure_rate": float(data.get("parse_failure_rate", 0.0)),
               "zero_shot": bool(run.get("zero_shot", False)),
               "mapped_features": (f"{run['mapping']['mapped']}/{run['mapping']['of']}" if "mapping" in run else "text")}
        for metric in METRICS:
            target = in_domain.get((d.dataset, d.task, d.method), {}).get(metric, math.nan)
            source = in_domain.get((d.source_dataset, d.task, d.method), {}).get(metric, math.nan)
            row[f"{metric}_in_domain_target"] = target
            row[f"{metric}_in_domain_source"] = source
            row[f"{metric}_gap_to_target"] = row[f"{metric}_mean"] - target
        rows.append(row)
    rows.sort(key=lambda r: (r["source"], r["target"], r["task"], -r["auroc_mean"]))
    return rows
