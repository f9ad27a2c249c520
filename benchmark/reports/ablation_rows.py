"""The rows of the ablation table: which evaluations it expects, which it finds, and each one against EAG-RL.

:func:`layout_from_params` names the expected rows (EAG-RL, its ablations, the further RL variants, GRPO, DAPO,
the base model) and pairs from ``eag_rl.rl``; :func:`build_blocks` finds each row's evaluation among the collected
records (:mod:`benchmark.reports.collect`) per (data set, task, EAG-RL backbone), missing rows included, and runs
the paired bootstrap test of every row against EAG-RL; :func:`delta` and :func:`p_value` read the comparison.
:mod:`benchmark.reports.ablations` (the ``report_ablations`` stage, whose docstring lists the rows) writes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.descriptor import STANDARD
from benchmark.evaluate import PredictionsError
from benchmark.method_catalog import STAGE1_METHOD as STAGE1
from benchmark.metrics import MetricsConfig
from benchmark.protocol import Methods
from benchmark.reports.collect import Record, paired_test
from benchmark.reports.paper.compare import backbone_matches
from benchmark.runtime import LOGGER

FULL = "eag_rl"
BASE = "qd"
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
        """The row label of ``method``: the one the layout gives, else :func:`row_label`."""
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
        """``ok`` when the row's evaluation was found, else ``missing``."""
        return OK if self.record is not None else MISSING


@dataclass
class Block:
    """The rows of one (data set, task, backbone)."""

    dataset: str
    task: str
    backbone: str | None
    rows: list[Row]

    def row(self, method: str) -> Row | None:
        """The row of ``method`` in this block (None when the block has none)."""
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


def row_mean(row: Row, metric: str) -> float:
    """The bootstrap mean of ``metric`` of ``row``'s evaluation (NaN when the row is missing)."""
    return math.nan if row.record is None else row.record.mean(metric)


def delta(row: Row, full: Row | None, metric: str) -> float:
    """Δ = row − EAG-RL on the bootstrap means (NaN when either is missing)."""
    if full is None or row.record is None or full.record is None or row.method == FULL:
        return math.nan
    return row_mean(row, metric) - row_mean(full, metric)


def p_value(row: Row, metric: str) -> float:
    """The paired bootstrap p-value of ``row`` vs EAG-RL (NaN when there is no paired test)."""
    if row.paired is None or metric not in row.paired:
        return math.nan
    return float(row.paired[metric]["p_value"])
