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
EAG-RL                     ``eag_rl``          ``models/rl/<ds>/<task>/eag_rl`` (stage 2 from the stage-1 policy)
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
w/o stage 2, w/o R_att, w/o ε(τ)) are :data:`ABLATIONS`; a test keeps the two in step.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import describe, from_mapping, load_params
from benchmark.descriptor import STANDARD
from benchmark.evaluate import PredictionsError, metrics_config
from benchmark.metrics import MetricsConfig
from benchmark.protocol import Methods
from benchmark.reports.collect import Collection, Record, ReportConfig, collect, paired_test
from benchmark.reports.main import finite_json
from benchmark.reports.paper.claims import ClaimsConfig
from benchmark.reports.paper.compare import backbone_matches
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.tables import csv_text, markdown_table

RESULTS = Path("results")
STEM = "ablations"
FULL = "eag_rl"
BASE = "qd"
STAGE1 = "wo_stage2"  # methods.eag_rl.stage1.STAGE1_METHOD (not imported: that module pulls in the LLM stack)
ABLATIONS = ("wo_stage1", STAGE1, "wo_ratt", "wo_eps")  # the paper's four ablations (claim C3)
BASELINES = ("grpo", "dapo")  # outcome-only RL
LABELS = {
    FULL: "EAG-RL",
    "wo_stage1": "w/o Stage 1",
    STAGE1: "w/o Stage 2",
    "wo_ratt": "w/o R_att",
    "wo_eps": "w/o ε(τ)",
    "released_weights": "released reward weights",
    "grpo": "GRPO",
    "dapo": "DAPO",
    BASE: "QD (base)",
}
EXPERT_NAMES = {"concare": "ConCare", "adacare": "AdaCare", "retain": "RETAIN", "gru": "GRU",
                "transformer": "Transformer", "logistic": "logistic regression"}
RL_FAMILIES = ("eag_rl", "rl", "ablation")  # an evaluation of one of these families on disk is a variant row
MISSING, OK = "missing", "ok"


def row_label(method: str, expert: str = "") -> str:
    """The paper's row name of a method key; other variants get a generic one from the key.

    ``expert_<model>`` (or a variant whose ``expert`` is set) reads "guidance: <Model>"; anything else is
    the key itself.
    """
    if method in LABELS:
        return LABELS[method]
    if not expert and method.startswith("expert_"):
        expert = method[len("expert_"):]
    if expert:
        return f"guidance: {EXPERT_NAMES.get(expert.lower(), expert)}"
    return method


@dataclass
class Layout:
    """What the table expects: (data set, task) pairs and ordered method keys with their row labels."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, method: str) -> str:
        return self.labels.get(method) or row_label(method)


def order_methods(variants: Iterable[str]) -> list[str]:
    """EAG-RL, the four ablations, released weights, further variants (sorted), GRPO, DAPO, QD (base)."""
    head = [FULL, *ABLATIONS, "released_weights"]
    tail = [*BASELINES, BASE]
    extra = sorted(set(variants) - set(head) - set(tail))
    return [*head, *extra, *tail]


def layout_from_params(params: dict[str, Any], methods: Methods, source: str | Path = "params.yaml") -> Layout:
    """The rows and pairs of ``eag_rl.rl`` (its code defaults where params.yaml has none)."""
    rl = methods.rl_plan(params, source)
    labels = {name: row_label(name, variant.expert) for name, variant in rl.variants.items()}
    return Layout(list(rl.pairs), order_methods(rl.variants), labels)


# ------------------------------------------------------------------------------------------ the rows
@dataclass
class Row:
    """One row of one block: a method's evaluation (or its absence) and its comparison with EAG-RL."""

    method: str
    label: str
    record: Record | None = None
    paired: dict[str, dict[str, float]] | None = None
    note: str = ""

    @property
    def status(self) -> str:
        return OK if self.record is not None else MISSING


@dataclass
class Block:
    """The rows of one (data set, task, backbone)."""

    dataset: str
    task: str
    backbone: str | None
    rows: list[Row]

    def row(self, method: str) -> Row | None:
        return next((r for r in self.rows if r.method == method), None)


def _matches(record: Record, dataset: str, task: str, backbone: str | None) -> bool:
    d = record.descriptor
    if d.dataset != dataset or d.task != task or d.condition != STANDARD or d.cross_domain:
        return False
    return backbone is None or d.backbone is None or backbone_matches(backbone, d.backbone)


def build_blocks(records: Sequence[Record], layout: Layout, config: MetricsConfig | None = None,
                 dataset_order: Sequence[str] = ()) -> list[Block]:
    """One block per (data set, task, EAG-RL backbone): every expected row, found or missing, compared with EAG-RL."""
    config = config or MetricsConfig()
    keys: list[tuple[str, str, str | None]] = []
    for record in records:
        d = record.descriptor
        if d.method == FULL and _matches(record, d.dataset, d.task, None):
            keys.append((d.dataset, d.task, d.backbone))
    row_methods = {*layout.methods, BASE, STAGE1}
    others = [(r.descriptor.dataset, r.descriptor.task) for r in records
              if r.descriptor.method in row_methods and _matches(r, r.descriptor.dataset, r.descriptor.task, None)]
    for dataset, task in [*layout.pairs, *others]:
        if not any(k[:2] == (dataset, task) for k in keys):
            keys.append((dataset, task, None))  # EAG-RL not run yet here: its rows are still listed, as missing
    order = list(dataset_order)
    keys = sorted(set(keys), key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1], k[2] or ""))
    blocks = []
    for dataset, task, backbone in keys:
        candidates = [r for r in records if _matches(r, dataset, task, backbone)]
        extra = sorted({r.descriptor.method for r in candidates if r.descriptor.family in RL_FAMILIES}
                       - set(layout.methods) - {BASE})
        methods = order_methods([*layout.methods, *extra])
        rows = []
        for method in methods:
            found = sorted((r for r in candidates if r.descriptor.method == method), key=lambda r: r.path.as_posix())
            note = ""
            if len(found) > 1:
                note = f"{len(found)} evaluations match; showing {found[0].path.as_posix()}"
            rows.append(Row(method, layout.label(method), found[0] if found else None, note=note))
        block = Block(dataset, task, backbone, rows)
        _compare_with_full(block, config)
        blocks.append(block)
    return blocks


def _compare_with_full(block: Block, config: MetricsConfig) -> None:
    full = block.row(FULL)
    for row in block.rows:
        if row.method == FULL or row.record is None:
            continue
        if full is None or full.record is None:
            row.note = row.note or "no EAG-RL evaluation to compare with"
            continue
        try:
            row.paired = paired_test(row.record, full.record, config)
        except (PredictionsError, ValueError) as error:
            row.note = f"no paired test: {error}"
            LOGGER.warning("report-ablations: %s/%s %s: %s", block.dataset, block.task, row.method, row.note)


# ------------------------------------------------------------------------------------------ output
def _mean(row: Row, metric: str) -> float:
    return math.nan if row.record is None else row.record.mean(metric)


def delta(row: Row, full: Row | None, metric: str) -> float:
    """Δ = row − EAG-RL on the bootstrap means (NaN when either is missing)."""
    if full is None or row.record is None or full.record is None or row.method == FULL:
        return math.nan
    return _mean(row, metric) - _mean(full, metric)


def p_value(row: Row, metric: str) -> float:
    """The paired bootstrap p-value of ``row`` vs EAG-RL (NaN when there is no paired test)."""
    if row.paired is None or metric not in row.paired:
        return math.nan
    return float(row.paired[metric]["p_value"])


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
        e, o, p = _mean(full, metric), _mean(row, metric), p_value(row, metric)
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
                if path.as_posix().startswith("models/rl/") or f"/{STAGE1}/" in path.as_posix()]
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


def report_ablations(params_path: str | Path = "params.yaml", root: str | Path = ".", out: str | Path = RESULTS, *,
                     methods: Methods) -> list[Path]:
    """Collect every metrics file and write the ablation table (the ``report_ablations`` stage)."""
    configure_logging()
    params = load_params(params_path)
    report = from_mapping(ReportConfig, params.get("report"), f"{params_path}: report")
    claims = from_mapping(ClaimsConfig, (params.get("paper") or {}).get("claims"), f"{params_path}: paper.claims")
    layout = layout_from_params(params, methods, params_path)
    collection = collect(report, root)
    paths = write_ablations(collection, layout, report, metrics_config(params_path), out, claims.alpha,
                            list((params.get("datasets") or {}).keys()))
    LOGGER.info("report-ablations: %d evaluation(s) collected, %d not collected -> %s", len(collection.records),
                len(collection.skipped), paths[0])
    return paths


def register(subparsers: argparse._SubParsersAction, methods: Methods) -> None:
    """Add ``eagrl report-ablations`` (it reads the RL variants through ``methods``)."""
    parser = subparsers.add_parser(
        "report-ablations",
        help="Write results/ablations.{md,csv,json}: EAG-RL vs its ablations, GRPO, DAPO, QD (DVC stage report_ablations).",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="params.yaml section 'report':\n" + describe(ReportConfig)
               + "\n\nAlso read: metrics (the paired bootstrap), paper.claims.alpha, eag_rl.rl.pairs and eag_rl.rl.variants.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".", help="Folder the report.sources patterns are relative to.")
    parser.add_argument("--out", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: report_ablations(args.params, args.root, args.out, methods=methods))
