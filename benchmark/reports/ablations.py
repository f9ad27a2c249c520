"""Stage ``report_ablations``: EAG-RL, its ablations and the outcome-only RL baselines → ``results/ablations.*``.

Which (data set, task) pairs
----------------------------
Every pair with a standard (unperturbed, in-domain) evaluation of EAG-RL (method ``eag_rl``), plus every pair
of ``eag_rl.rl.pairs`` in params.yaml and every pair where any row below (QD, the stage-1 policy, a variant)
was evaluated, so that a pair whose EAG-RL run has not happened yet is shown with its rows missing rather
than left out. Where one pair has EAG-RL on several backbones, each backbone is its own block.

Rows (in this order; a row whose evaluation does not exist is listed as ``missing``, never dropped)
------------------------------------------------------------------------------------------------
=========================  ==================  ===========================================================
row                        method              where it comes from
=========================  ==================  ===========================================================
EAG-RL                     ``eag_rl``          ``models/llm/<ds>/eag_rl/<task>`` (stage 2 from the stage-1 policy)
w/o Stage 1                ``wo_stage1``       stage 2 from the base model (fresh LoRA)
w/o Stage 2                ``wo_stage2``       the stage-1 policy, ``outputs/llm/<ds>/wo_stage2/<task>``
w/o R_att                  ``wo_ratt``         stage 2 without the attention-alignment reward
w/o ε(τ)                   ``wo_eps``          stage 2 with a fixed symmetric clip
released reward weights    ``released_weights``  stage 2 with the released code's 1.0 / 0.5 / 0.1 weights
(further variants)         any other key of ``eag_rl.rl.variants`` or RL-stage evaluation on disk, e.g.
                           ``expert_gru`` (guidance from another expert): "guidance: GRU"
GRPO, DAPO                 ``grpo``, ``dapo``  outcome-only RL baselines from the same stage-1 policy
QD (base)                  ``qd``              the frozen backbone in the same Question-Decomposition format
=========================  ==================  ===========================================================

Each row is matched on the data set, the task and EAG-RL's backbone (``backbone_matches``: last path
component), on the standard test set. The methods C3 of ``benchmark/reports/paper/claims.yaml`` tests (w/o stage 1,
w/o stage 2, w/o R_att, w/o ε(τ)) are :data:`benchmark.reports.ablation_rows.ABLATIONS`; a test keeps the two in step.

Columns
-------
AUROC and AUPRC (``report.metrics``) as bootstrap mean ± std over test-patient resamples, the parse-failure
rate, and against EAG-RL on the same patients: Δ = row − EAG-RL (difference of bootstrap means; the resample
indices depend only on the labels and ``metrics.seed``, so this is also the mean of the paired resampled
differences) and the paired bootstrap p-value of :func:`benchmark.evaluate.compare` (both predictions files
resampled together; null hypothesis: no difference between the row and EAG-RL on that metric, two-sided
alternative; p = 2·min(share of resampled differences ≤ 0, share ≥ 0) with the +1 correction). p needs both
predictions files on disk and the same patients and labels; otherwise it is empty and the note says why.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.config import ParamsSource, from_mapping, load_params
from benchmark.evaluate import metrics_config
from benchmark.metrics import MetricsConfig
from benchmark.paths import LLM_MODELS, RESULTS
from benchmark.protocol import Methods
from benchmark.reports.ablation_rows import (
    BASELINES,
    FULL,
    MISSING,
    STAGE1,
    Block,
    Layout,
    build_blocks,
    delta,
    layout_from_params,
    p_value,
    row_label,
    row_mean,
)
from benchmark.reports.collect import Collection, ReportConfig, collect
from benchmark.reports.main import finite_json
from benchmark.reports.paper.claims import ClaimsConfig
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.stage_cli import params_epilog, stage_parser
from benchmark.tables import csv_text, markdown_table

STEM = "ablations"


def long_rows(blocks: Sequence[Block], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (block, method), full precision: the CSV."""
    out = []
    for block in blocks:
        full = block.row(FULL)
        for row in block.rows:
            record = row.record
            item: dict[str, Any] = {
                "dataset": block.dataset, "task": block.task, "backbone": block.backbone or "",
                "row": row.label, "method": row.method, "status": row.status,
                "family": record.descriptor.family if record else "",
                "n": int(record.metrics.get("n", 0)) if record else math.nan,
                "parse_failure_rate": float(record.metrics.get("parse_failure_rate", 0.0)) if record else math.nan,
            }
            for metric in metrics:
                summary = record.summary(metric) if record else {"mean": math.nan, "std": math.nan}
                item[f"{metric}_mean"] = summary["mean"]
                item[f"{metric}_std"] = summary["std"]
                item[f"delta_{metric}"] = delta(row, full, metric)
                item[f"p_{metric}"] = p_value(row, metric)
            item["note"] = row.note
            item["metrics_file"] = record.path.as_posix() if record else ""
            out.append(item)
    return out


def nested_json(blocks: Sequence[Block], metrics: Sequence[str]) -> dict[str, Any]:
    """``{dataset: {task: {row: {status, method, n, parse_failure_rate, <metric>_mean/_std, delta_<metric>,
    p_<metric>}}}}``; a missing row has only ``status`` and ``method``; with several backbones on one pair the
    row name carries the backbone."""
    out: dict[str, Any] = {}
    several = {(b.dataset, b.task) for b in blocks if sum((o.dataset, o.task) == (b.dataset, b.task) for o in blocks) > 1}
    for block, item in zip([b for b in blocks for _ in b.rows], long_rows(blocks, metrics), strict=True):
        name = item["row"] + (f" ({Path(block.backbone).name})" if (block.dataset, block.task) in several and block.backbone else "")
        if item["status"] == MISSING:
            numbers = {"status": MISSING, "method": item["method"]}
        else:
            numbers = {k: v for k, v in item.items() if k not in ("dataset", "task", "backbone", "row", "family", "note",
                                                                  "metrics_file")}
            if item["method"] == FULL:
                numbers = {k: v for k, v in numbers.items() if not k.startswith(("delta_", "p_"))}
        out.setdefault(block.dataset, {}).setdefault(block.task, {})[name] = numbers
    return finite_json(out)


def _pm(mean: float, std: float, decimals: int) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def _p(p: float) -> str:
    return "—" if math.isnan(p) else f"{p:.3g}"


def versus(block: Block, other: str, metrics: Sequence[str], alpha: float, decimals: int = 3) -> str:
    """One generated sentence: EAG-RL against ``other`` in ``block`` — who has the higher mean, and p."""
    full, row = block.row(FULL), block.row(other)
    name = row.label if row else row_label(other)
    if full is None or full.record is None:
        return f"EAG-RL vs {name}: EAG-RL has not been evaluated here."
    if row is None or row.record is None:
        return f"EAG-RL vs {name}: {name} has not been evaluated here."
    parts, wins = [], 0
    for metric in metrics:
        e, o, p = row_mean(full, metric), row_mean(row, metric), p_value(row, metric)
        if math.isnan(e) or math.isnan(o):
            parts.append(f"{metric.upper()} n/a")
            continue
        higher = "EAG-RL" if e > o else name if o > e else "neither (tie)"
        wins += e > o
        significance = "" if math.isnan(p) else (" (significant)" if p < alpha else " (not significant)")
        parts.append(f"{metric.upper()} {e:.{decimals}f} vs {o:.{decimals}f}, higher: {higher}, "
                     f"paired p = {_p(p)}{significance}")
    verdict = ("EAG-RL has the higher mean on every metric" if wins == len(metrics)
               else f"{name} has the higher or equal mean on every metric" if wins == 0
               else f"EAG-RL has the higher mean on {wins} of {len(metrics)} metrics")
    return f"EAG-RL vs {name}: {verdict} — " + "; ".join(parts) + "."


def _title(block: Block, several: bool) -> str:
    return f"{block.dataset} · {block.task}" + (f" · {block.backbone}" if several and block.backbone else "")


def markdown(blocks: Sequence[Block], metrics: Sequence[str], decimals: int, alpha: float, synthetic: bool,
             skipped: Sequence[tuple[Path, str]] = ()) -> str:
    """``ablations.md``: intro, the generated EAG-RL vs GRPO / DAPO sentences, one table per block."""
    names = ", ".join(m.upper() for m in metrics)
    lines = [
        "# Ablations",
        "",
        f"EAG-RL against its ablations (w/o Stage 1: RL from the base model; w/o Stage 2: the stage-1 policy; "
        f"w/o R_att; w/o ε(τ): fixed symmetric clip), the released code's reward weights, any further RL variants "
        f"(e.g. guidance from another expert), the outcome-only baselines GRPO and DAPO and the base model (QD "
        f"format), on the standard test set of each (data set, task). {names}: bootstrap mean ± std over "
        "test-patient resamples; `pf rate`: share of unparsable answers (scored by `metrics.unparsable`, never "
        "dropped). Δ = row − EAG-RL (bootstrap means; negative = worse than EAG-RL; claim C3 in `claims.md` "
        "averages the drops −Δ of the four ablations). p: paired bootstrap test "
        "against EAG-RL on the same patients (`benchmark.evaluate.compare`: both predictions files scored on the "
        "same resamples; null hypothesis: no difference on that metric, two-sided alternative). "
        f"Significant means p < {alpha} (`paper.claims.alpha`). Built by `eagrl report-ablations`; a row "
        "whose run does not exist yet reads `missing`.",
        "",
    ]
    if synthetic:
        lines += ["The synthetic cohorts are stand-ins for the paper's MIMIC-IV and TJH: these comparisons are evidence "
                  "about the method on this profile, not about the paper's numbers.", ""]
    if not blocks:
        lines.append("No EAG-RL evaluation and no `eag_rl.rl.pairs` were found: nothing to compare.")
    else:
        lines += ["## EAG-RL vs GRPO / DAPO", ""]
        several = len({(b.dataset, b.task) for b in blocks}) < len(blocks)
        for block in blocks:
            lines.append(f"- **{_title(block, several)}**: "
                         + " ".join(versus(block, other, metrics, alpha, decimals) for other in BASELINES))
        for block in blocks:
            full = block.row(FULL)
            lines += ["", f"## {_title(block, several)}", ""]
            table = []
            for row in block.rows:
                item: dict[str, Any] = {"row": row.label, "method": row.method, "status": row.status}
                record = row.record
                item["n"] = int(record.metrics.get("n", 0)) if record else "—"
                item["pf rate"] = f"{float(record.metrics.get('parse_failure_rate', 0.0)):.3f}" if record else "—"
                for metric in metrics:
                    s = record.summary(metric) if record else {"mean": math.nan, "std": math.nan}
                    item[metric.upper()] = _pm(s["mean"], s["std"], decimals)
                    d = delta(row, full, metric)
                    item[f"Δ {metric.upper()}"] = "—" if math.isnan(d) else f"{d:+.{decimals}f}"
                    item[f"p {metric.upper()}"] = _p(p_value(row, metric))
                item["note"] = row.note
                table.append(item)
            lines.append(markdown_table(table))
    relevant = [(path, reason) for path, reason in skipped
                if path.as_posix().startswith(f"{LLM_MODELS.as_posix()}/") or f"/{STAGE1}/" in path.as_posix()]
    if relevant:
        lines += ["", "## Not collected", "", "Metrics files of these runs exist but could not be placed:", ""]
        lines += [f"- `{path.as_posix()}`: {reason}" for path, reason in relevant]
    return "\n".join(lines) + "\n"


def write_ablations(collection: Collection, layout: Layout, report: ReportConfig, config: MetricsConfig,
                    out: str | Path = RESULTS, alpha: float = 0.05, dataset_order: Sequence[str] = ()) -> list[Path]:
    """Write ``ablations.md``, ``ablations.csv`` and ``ablations.json`` under ``out`` (atomically)."""
    out = Path(out)
    blocks = build_blocks(collection.records, layout, config, dataset_order)
    rows = long_rows(blocks, report.metrics)
    synthetic = any(b.dataset.startswith("synthetic") for b in blocks)
    columns = list(rows[0]) if rows else ["dataset", "task", "backbone", "row", "method", "status"]
    return [
        atomic_write_text(out / f"{STEM}.md", markdown(blocks, report.metrics, report.decimals, alpha, synthetic,
                                                       collection.skipped)),
        atomic_write_text(out / f"{STEM}.csv", csv_text([{k: ("" if isinstance(v, float) and math.isnan(v) else v)
                                                          for k, v in row.items()} for row in rows], columns)),
        atomic_write_json(out / f"{STEM}.json", nested_json(blocks, report.metrics)),
    ]


def report_ablations(params: ParamsSource = "params.yaml", root: str | Path = ".", out: str | Path = RESULTS, *,
                     methods: Methods) -> list[Path]:
    """Collect every metrics file and write the ablation table (the ``report_ablations`` stage)."""
    configure_logging()
    params = load_params(params)
    report = from_mapping(ReportConfig, params.get("report"), f"{params}: report")
    claims = from_mapping(ClaimsConfig, (params.get("paper") or {}).get("claims"), f"{params}: paper.claims")
    layout = layout_from_params(params, methods, params)
    collection = collect(report, root)
    paths = write_ablations(collection, layout, report, metrics_config(params), out, claims.alpha,
                            list((params.get("datasets") or {}).keys()))
    LOGGER.info("report-ablations: %d evaluation(s) collected, %d not collected -> %s", len(collection.records),
                len(collection.skipped), paths[0])
    return paths


def register(subparsers: argparse._SubParsersAction, methods: Methods) -> None:
    """Add ``eagrl report-ablations`` (it reads the RL variants through ``methods``)."""
    parser = stage_parser(
        subparsers, "report-ablations",
        "Write results/ablations.{md,csv,json}: EAG-RL vs its ablations, GRPO, DAPO, QD (DVC stage report_ablations).",
        __doc__, params_epilog("report", ReportConfig)
        + "\n\nAlso read: metrics (the paired bootstrap), paper.claims.alpha, eag_rl.rl.pairs and eag_rl.rl.variants.")
    parser.add_argument("--root", default=".", help="Folder the report.sources patterns are relative to.")
    parser.add_argument("--out", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: report_ablations(args.params, args.root, args.out, methods=methods))
