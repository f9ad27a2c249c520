"""The distribution-shift plots: metric against perturbation level, and target scores across domains.

:func:`plot_robustness` draws ``results/plots/robustness/<dataset>_<task>.png`` from the rows of
:func:`benchmark.reports.shift_rows.robustness_rows`, :func:`plot_cross_domain` ``results/plots/cross_domain.png``
from those of :func:`benchmark.reports.shift_rows.cross_domain_rows` (the stages: :mod:`benchmark.reports.shift`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmark.perturb import NONE
from benchmark.reports.shift_rows import METRICS

DL_FAMILIES = ("expert", "hybrid")
KIND_TITLES = {"shuffle": "feature-order shuffle (fraction)", "noise": "multiplicative noise (σ)",
               "mask": "masked observed values (fraction)"}


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
