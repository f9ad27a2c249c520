"""The verdict of one claim and the pieces every claim test builds it from (:mod:`benchmark.reports.paper.claims`).

A :class:`Verdict` holds the status (holds / fails / inconclusive / not testable with this profile), the
reason, the evidence rows of the verdict and, apart, the comparisons reported beside it but not part of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmark.reports.collect import Record, method_key
from benchmark.reports.paper.evidence import (
    CONTRADICTS,
    SUPPORTS,
    UNDECIDED,
    Comparison,
    Context,
    overall,
    tally,
)

NOT_TESTABLE = "not testable with this profile"


@dataclass
class Verdict:
    """The outcome of one claim."""

    id: str
    statement: str
    source: str
    status: str
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)
    beside: list[dict[str, Any]] = field(default_factory=list)  # reported beside the verdict, not part of it

def fmt(record: Record, metric: str) -> str:
    """``mean [ci_low, ci_high]`` of ``metric`` for a table, or "n/a"."""
    s = record.summary(metric)
    if math.isnan(s["mean"]):
        return "n/a"
    return f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"


def p_text(p: float | None) -> str:
    """A p-value for a table ("—" without a paired test)."""
    return "—" if p is None else f"{p:.3g}"


def seeds_text(record: Record) -> str:
    """The record's method key with its number of training seeds."""
    return f"{method_key(record.descriptor)} ({max(len(record.seed_predictions), 1)} seed(s))"


def synthetic_note(records: Iterable[Record]) -> str:
    """" (on synthetic_…: synthetic stand-ins …)" when a claim rests on synthetic cohorts, else ""."""
    names = sorted({name for r in records for name in (r.descriptor.dataset, r.descriptor.source_dataset)})
    synthetic = [n for n in names if n.startswith("synthetic")]
    return f" (on {', '.join(synthetic)}: synthetic stand-ins for the paper's cohorts)" if synthetic else ""


def _rule(ctx: Context) -> str:
    if ctx.config.decision == "mean":
        return "read from the sign of the bootstrap means"
    return f"support at p < {ctx.config.alpha}, contradict at p < {ctx.config.alpha} / m"


def no_eag(claim: dict[str, Any], ctx: Context) -> Verdict:
    """"Not testable": no EAG-RL evaluation exists."""
    return make_verdict(claim, NOT_TESTABLE,
                        f"no evaluation of EAG-RL (family 'eag_rl', method '{claim['eag_rl']}') exists in this profile's "
                        f"results; {ctx.inventory()}")


def make_verdict(claim: dict[str, Any], status: str, reason: str, evidence: list[dict[str, Any]] | None = None,
                 numbers: dict[str, float] | None = None) -> Verdict:
    """The :class:`Verdict` of ``claim`` with its status, reason, evidence rows and numbers."""
    return Verdict(claim["id"], claim["statement"], claim.get("source", ""), status, reason, evidence or [], numbers or {})


def judged(claim: dict[str, Any], ctx: Context, comparisons: list[Comparison], what: str, records: Iterable[Record],
            evidence: list[dict[str, Any]], numbers: dict[str, float] | None = None) -> Verdict:
    """The verdict of a claim from its comparisons (:func:`benchmark.reports.paper.evidence.overall`)."""
    outcomes = ctx.judge(comparisons)
    counts = {"supports": outcomes.count(SUPPORTS), "contradicts": outcomes.count(CONTRADICTS),
              "undecided": outcomes.count(UNDECIDED), "comparisons": len(outcomes)}
    reason = f"{what}: {tally(outcomes)} ({_rule(ctx)}, m = {len(outcomes)})" + synthetic_note(records)
    return make_verdict(claim, overall(outcomes), reason, evidence, {**counts, **(numbers or {})})


def cell(record: Record) -> dict[str, Any]:
    """The (data set, task, backbone) cell of a record, as the first columns of an evidence row."""
    d = record.descriptor
    return {"dataset": d.dataset, "task": d.task, "backbone": d.backbone or "—"}
