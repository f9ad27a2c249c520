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
import json
import math
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

from benchmark.descriptor import FAMILIES, MethodDescriptor, embedded_descriptor
from benchmark.perturb import NONE, Perturbation
from benchmark.pipeline_outs import declared_only
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.tables import csv_text, markdown_table

ROBUSTNESS_ROOT = Path("outputs/robustness")
CROSS_DOMAIN_ROOT = Path("outputs/cross_domain")
RESULTS = Path("results")
METRICS = ("auroc", "auprc")
DL_FAMILIES = ("expert", "hybrid")
KIND_ORDER = (NONE, "shuffle", "noise", "mask")
KIND_TITLES = {"shuffle": "feature-order shuffle (fraction)", "noise": "multiplicative noise (σ)",
               "mask": "masked observed values (fraction)"}


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


def _pm(row: dict[str, Any], metric: str) -> str:
    return f"{row[f'{metric}_mean']:.3f} ± {row[f'{metric}_std']:.3f}"


def _family_order(row: dict[str, Any]) -> int:
    return FAMILIES.index(row["family"]) if row["family"] in FAMILIES else len(FAMILIES)


# ------------------------------------------------------------------------------------------ robustness
def robustness_rows(root: str | Path = ROBUSTNESS_ROOT, datasets: Collection[str] | None = None) -> list[dict[str, Any]]:
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


def plot_robustness(rows: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """One PNG per (data set, task): metric against level, a panel per kind × metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for dataset, task in sorted({(r["dataset"], r["task"]) for r in rows}):
        part = [r for r in rows if (r["dataset"], r["task"]) == (dataset, task)]
        methods = list(dict.fromkeys((r["family"], r["method"]) for r in part))
        kinds = [k for k in ("shuffle", "noise", "mask") if any(r["kind"] == k for r in part)]
        if not kinds:
            continue
        fig, axes = plt.subplots(len(METRICS), len(kinds), figsize=(4.6 * len(kinds) + 2.8, 3.4 * len(METRICS)),
                                 squeeze=False)
        colours = plt.get_cmap("tab20")
        for col, kind in enumerate(kinds):
            for row_i, metric in enumerate(METRICS):
                ax = axes[row_i][col]
                for i, (family, method) in enumerate(methods):
                    points = sorted((r["level"], r[f"{metric}_mean"], r[f"{metric}_std"]) for r in part
                                    if r["method"] == method and r["family"] == family and r["kind"] in (kind, NONE))
                    if len(points) < 2:
                        continue
                    xs, ys, es = zip(*points, strict=True)
                    ax.errorbar(xs, ys, yerr=es, label=f"{method} ({family})", color=colours(i % 20), capsize=2,
                                marker="o", markersize=3, linewidth=1.2,
                                linestyle="-" if family in DL_FAMILIES else "--")
                ax.set_title(KIND_TITLES[kind], fontsize=10)
                ax.set_xlabel("level (0 = unperturbed)")
                ax.set_ylabel(f"{metric.upper()} (bootstrap mean ± std)")
                ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes.ravel():
            h, labs = ax.get_legend_handles_labels()
            for handle, label in zip(h, labs, strict=True):
                if label not in labels:
                    handles.append(handle), labels.append(label)
        fig.legend(handles, labels, loc="center right", fontsize=8, title="method (family)", title_fontsize=8)
        fig.suptitle(f"Robustness: {dataset} / {task} (solid: DL models, dashed: LLM methods)", fontsize=11)
        fig.tight_layout(rect=(0, 0, 1 - 2.6 / fig.get_figwidth(), 0.95))
        path = folder / f"{dataset}_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


ROBUSTNESS_COLUMNS = ["dataset", "task", "family", "method", "backbone", "condition", "kind", "level", "n",
                      "positives", "auroc_mean", "auroc_std", "auprc_mean", "auprc_std", "parse_failure_rate",
                      "d_auroc", "rel_auroc_pct", "d_auprc", "rel_auprc_pct"]


def report_robustness(root: str | Path = ROBUSTNESS_ROOT, out: str | Path = RESULTS,
                      params_path: str | Path = "params.yaml", datasets: Collection[str] | None = None) -> list[Path]:
    """Write ``results/robustness.{md,csv,json}`` and the per-task PNGs; returns the paths.

    ``datasets`` restricts the tables and plots to those data sets (default: every one found).
    """
    configure_logging()
    rows = robustness_rows(root, datasets)
    if not rows:
        which = "" if datasets is None else f" of data set(s) {sorted(datasets)}"
        raise FileNotFoundError(f"{root}: no */*/*/*/metrics.json{which} found; run the robustness stages first")
    summary = degradation_rows(rows)
    intro = _robustness_intro(params_path)
    out = Path(out)
    paths = [atomic_write_text(out / "robustness.md", robustness_markdown(rows, summary, intro)),
             atomic_write_text(out / "robustness.csv", csv_text(rows, ROBUSTNESS_COLUMNS)),
             atomic_write_json(out / "robustness.json", {"conditions": [_finite(r) for r in rows],
                                                         "degradation": [_finite(s) for s in summary]})]
    paths += plot_robustness(rows, out / "plots" / "robustness")
    LOGGER.info("report-robustness: %d evaluations of %d methods -> %s", len(rows), len(summary), paths[0])
    return paths


def _robustness_intro(params_path: str | Path) -> str:
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

        config = load_robustness_config(load_params(params_path), params_path)
        text += (f" Settings: perturbation seed {config.seed}; LLM subset {config.llm.n_patients or 'all'} patients "
                 f"(seed {config.llm.seed}).")
    except Exception as error:  # the report still works without a params file (e.g. in tests)
        LOGGER.info("report-robustness: settings not added to the intro (%s)", error)
    return text


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


# --------------------------------------------------------------------------------------- cross-domain
def in_domain_scores(params_path: str | Path = "params.yaml", root: str | Path = ".") -> dict[tuple, dict[str, float]]:
    """(dataset, task, method) → in-domain bootstrap means, from the main table's collection (may be empty)."""
    try:
        from benchmark.reports.collect import collect, report_config

        records = collect(report_config(params_path), root).standard()
    except Exception as error:  # no params / report section: the table simply lacks the reference columns
        LOGGER.info("report-cross-domain: no in-domain references (%s)", error)
        return {}
    out: dict[tuple, dict[str, float]] = {}
    for record in records:
        d = record.descriptor
        out.setdefault((d.dataset, d.task, d.method), {m: record.mean(m) for m in METRICS})
    return out


def cross_domain_rows(root: str | Path = CROSS_DOMAIN_ROOT, in_domain: dict[tuple, dict[str, float]] | None = None,
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


def plot_cross_domain(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Horizontal bars of target AUROC / AUPRC per method (in-domain target score as a marker), per pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys((r["source"], r["target"], r["task"]) for r in rows))
    height = max(3.0, 0.32 * max(sum((r["source"], r["target"], r["task"]) == k for r in rows) for k in keys) + 1.5)
    fig, axes = plt.subplots(len(keys), len(METRICS), figsize=(11, height * len(keys)), squeeze=False)
    for i, key in enumerate(keys):
        part = sorted((r for r in rows if (r["source"], r["target"], r["task"]) == key), key=lambda r: r["auroc_mean"])
        labels = [f"{r['method']} ({r['family']})" for r in part]
        for j, metric in enumerate(METRICS):
            ax = axes[i][j]
            colours = ["tab:blue" if r["family"] in DL_FAMILIES else "tab:orange" for r in part]
            ax.barh(range(len(part)), [r[f"{metric}_mean"] for r in part], xerr=[r[f"{metric}_std"] for r in part],
                    color=colours, alpha=0.8, capsize=2)
            ref = [(k, r[f"{metric}_in_domain_target"]) for k, r in enumerate(part)
                   if not math.isnan(r[f"{metric}_in_domain_target"])]
            if ref:
                ax.scatter([v for _, v in ref], [k for k, _ in ref], marker="|", s=120, color="black",
                           label="in-domain on target", zorder=3)
                ax.legend(fontsize=8, loc="lower right")
            ax.set_yticks(range(len(part)), labels if j == 0 else [""] * len(part), fontsize=8)
            ax.set_xlabel(f"target {metric.upper()} (bootstrap mean ± std)")
            ax.set_xlim(0, 1)
            ax.grid(axis="x", alpha=0.3)
            ax.set_title(f"{key[0]} → {key[1]} / {key[2]}: {metric.upper()}", fontsize=10)
    fig.suptitle("Cross-domain generalisation (blue: DL models via feature mapping, orange: LLM methods)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_cross_domain(root: str | Path = CROSS_DOMAIN_ROOT, out: str | Path = RESULTS,
                        params_path: str | Path = "params.yaml", repo: str | Path = ".",
                        datasets: Collection[str] | None = None) -> list[Path]:
    """Write ``results/cross_domain.{md,csv,json}`` and ``results/plots/cross_domain.png``.

    ``datasets`` restricts them to the pairs whose source or target is one of these (default: every pair).
    """
    configure_logging()
    rows = cross_domain_rows(root, in_domain_scores(params_path, repo), datasets)
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
    rob = subparsers.add_parser("report-robustness", help="results/robustness.{md,csv,json} + plots/robustness/*.png.",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rob.add_argument("--root", default=str(ROBUSTNESS_ROOT), help="Folder of the robustness outputs.")
    rob.add_argument("--out", default=str(RESULTS), help="Results folder.")
    rob.add_argument("--params", default="params.yaml", help="Params file (default: params.yaml).")
    rob.set_defaults(handler=lambda a: report_robustness(a.root, a.out, a.params))
    cross = subparsers.add_parser("report-cross-domain", help="results/cross_domain.{md,csv,json} + plots/cross_domain.png.",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cross.add_argument("--root", default=str(CROSS_DOMAIN_ROOT), help="Folder of the cross-domain outputs.")
    cross.add_argument("--out", default=str(RESULTS), help="Results folder.")
    cross.add_argument("--params", default="params.yaml", help="Params file (default: params.yaml).")
    cross.set_defaults(handler=lambda a: report_cross_domain(a.root, a.out, a.params))
