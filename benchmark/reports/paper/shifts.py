"""Claims under a shift of the test data: C4 (feature-order shuffling) and C5 (another clinical domain).

The tests of ``claims.yaml`` named ``robustness`` and ``transfer``; :mod:`benchmark.reports.paper.claims` states the
verdict rule and :mod:`benchmark.reports.paper.gates` when a cell is evidence at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.descriptor import STANDARD
from benchmark.evaluate import PredictionsError
from benchmark.reports.collect import Record, method_key
from benchmark.reports.paper.evidence import CONTRADICTS, SUPPORTS, Comparison, Context, overall, tally
from benchmark.reports.paper.gates import answer_or_chance
from benchmark.reports.paper.verdicts import (
    NOT_TESTABLE,
    Verdict,
    cell,
    judged,
    make_verdict,
    no_eag,
    synthetic_note,
)


def _degradation(ctx: Context, standard: Record, shuffled: dict[str, Record], levels: list[str], metric: str) -> float:
    """reference − mean over ``levels`` of the shuffled sets, on the same seed-mean bootstrap means as the test
    (every training seed pooled); the first run's own means where no paired contrast can be formed."""
    terms = [(1.0, standard)] + [(-1.0 / len(levels), shuffled[level]) for level in levels]
    try:
        return ctx.evidence.contrast(terms, metric).difference
    except (PredictionsError, ValueError):
        return float(np.mean([standard.mean(metric) - shuffled[level].mean(metric) for level in levels]))


def _reference(ctx: Context, claim: dict[str, Any], **fields: Any) -> Record | None:
    """The unperturbed evaluation a degradation is measured from: the robustness stages' own level 0
    (``reference_condition``, scored on the same patients as the shuffled sets) when it exists, else the
    standard evaluation."""
    for condition in [c for c in (claim.get("reference_condition"), STANDARD) if c]:
        found = ctx.select(condition=condition, **fields)
        if found:
            return found[0]
    return None


def _shuffled_of(ctx: Context, prefix: str, record: Record) -> dict[str, Record]:
    """``record``'s shuffled evaluations (condition starting with ``prefix``) by condition: the sets C4 degrades on."""
    d = record.descriptor
    return {r.descriptor.condition: r for r in ctx.select(method=d.method, family=d.family, dataset=d.dataset,
                                                         task=d.task, backbone=d.backbone, condition=None)
            if r.descriptor.condition.startswith(prefix)}


def _c4_references(claim: dict[str, Any], ctx: Context) -> list[Record]:
    """EAG-RL's reference evaluation of each (data set, task, backbone) it was evaluated on, in a fixed order."""
    keys = {(r.descriptor.dataset, r.descriptor.task, r.descriptor.backbone)
            for r in ctx.select(method=claim["eag_rl"], family="eag_rl", condition=None)}
    return [ref for dataset, task, backbone in sorted(keys, key=str)
            if (ref := _reference(ctx, claim, method=claim["eag_rl"], family="eag_rl", dataset=dataset, task=task,
                                  backbone=backbone)) is not None]


def _c4_cell(claim: dict[str, Any], ctx: Context, eag: Record, prefix: str, problems: list[str]
             ) -> tuple[dict[str, Record], list[Record], list[str]] | None:
    """EAG-RL's shuffled sets, its comparators and their shared levels in one cell; None (why: in ``problems``) if any lacks."""
    d = eag.descriptor
    eag_shuffled = _shuffled_of(ctx, prefix, eag)
    if not eag_shuffled:
        problems.append(f"EAG-RL has no '{prefix}*' evaluation on {d.dataset}/{d.task}")
        return None
    comparators = []
    for spec in claim["compare_to"]:
        found = _reference(ctx, claim, method=spec["method"], dataset=d.dataset, task=d.task,
                           backbone=d.backbone if spec.get("same_backbone") else "any")
        if found is None or not _shuffled_of(ctx, prefix, found):
            problems.append(f"'{spec['method']}' has no reference + '{prefix}*' evaluations on {d.dataset}/{d.task}")
            continue
        comparators.append(found)
    if len(comparators) != len(claim["compare_to"]):
        return None
    levels = sorted(set(eag_shuffled).intersection(*(_shuffled_of(ctx, prefix, c) for c in comparators)))
    if not levels:
        problems.append(f"no shuffle level shared by EAG-RL and its comparators on {d.dataset}/{d.task}")
        return None
    return eag_shuffled, comparators, levels


def _c4_measure(ctx: Context, prefix: str, eag: Record, eag_shuffled: dict[str, Record], comparators: list[Record],
                levels: list[str]) -> list[tuple[Record, list[str], Record, dict[str, Record], Comparison]]:
    """C4's contrasts of one cell, degradation(comparator) − degradation(EAG-RL), with what its evidence row needs."""
    rows = []
    for comparator in comparators:
        theirs = _shuffled_of(ctx, prefix, comparator)
        for metric in ctx.config.metrics:
            terms = ([(1.0, comparator)] + [(-1.0 / len(levels), theirs[level]) for level in levels]
                     + [(-1.0, eag)] + [(1.0 / len(levels), eag_shuffled[level]) for level in levels])
            comparison = ctx.measure(f"degradation({method_key(comparator.descriptor)}) − degradation(EAG-RL)",
                                     terms, metric)
            rows.append((eag, levels, comparator, theirs, comparison))
    return rows


def robustness(claim: dict[str, Any], ctx: Context) -> Verdict:
    """C4: under feature-order shuffling, EAG-RL's score falls less than each comparator's.

    Per cell, comparator and metric, one comparison: degradation(comparator) − degradation(EAG-RL), a
    degradation being reference − mean over the shared shuffle levels, all four sets of predictions resampled
    together. A cell is judged only where EAG-RL and every comparator answer on the reference set (parse rate
    ≥ ``min_parse_rate``) and none of them is at chance there (AUROC interval above 0.5): a model that says
    nothing cannot degrade (:mod:`benchmark.reports.paper.gates`). Other cells are "not testable", with the reason; so
    is the claim when no cell is judged.
    """
    prefix = claim["condition_prefix"]
    eags = _c4_references(claim, ctx)
    if not eags:
        return no_eag(claim, ctx)
    problems, rows, not_judged = [], [], []
    for eag in eags:
        found = _c4_cell(claim, ctx, eag, prefix, problems)
        if found is None:
            continue
        eag_shuffled, comparators, levels = found
        d = eag.descriptor
        gates = [why for who, ref in [("EAG-RL", eag)] + [(None, c) for c in comparators]
                 if (why := answer_or_chance(ref, ctx.config.min_parse_rate, who))]
        if gates:
            problems.append(f"{d.dataset}/{d.task}/{d.backbone or '—'} not judged: {'; '.join(gates)}")
            not_judged.append({**cell(eag), "outcome": f"not testable: {'; '.join(gates)}"})
            continue
        rows += _c4_measure(ctx, prefix, eag, eag_shuffled, comparators, levels)
    comparisons = [comparison for *_, comparison in rows]
    if not comparisons:
        return make_verdict(claim, NOT_TESTABLE, "; ".join(problems) + ("" if not_judged else f"; {ctx.inventory()}"),
                            not_judged)
    verdict = judged(claim, ctx, comparisons, "degradation under shuffling (reference − shuffled)", eags, [])
    verdict.reason += "".join(f"; {problem}" for problem in problems)
    for eag, levels, comparator, theirs, comparison in rows:
        metric = comparison.metric
        verdict.evidence.append(comparison.row(
            **cell(eag), levels=", ".join(levels), reference=eag.descriptor.condition,
            **{"EAG-RL degradation": f"{_degradation(ctx, eag, _shuffled_of(ctx, prefix, eag), levels, metric):+.4f}",
               "comparator degradation": f"{_degradation(ctx, comparator, theirs, levels, metric):+.4f}"}))
    verdict.evidence += not_judged
    return verdict


def _transfer_comparisons(pairs: list[list[str]], claim: dict[str, Any], ctx: Context
                          ) -> tuple[list[tuple[Record, Comparison]], list[str], list[Record]]:
    """(EAG-RL record, comparison) of C5 over ``pairs``, the evaluations that are missing, the EAG-RL records."""
    out, tried, tested = [], [], []
    for source, target in pairs:
        eags = ctx.select(method=claim["eag_rl"], family="eag_rl", dataset=target, source=source)
        if not eags:
            tried.append(f"{source} → {target}: no EAG-RL evaluation")
            continue
        tested += eags
        for eag in eags:
            for spec in claim["compare_to"]:
                found = ctx.select(method=spec["method"], dataset=target, task=eag.descriptor.task, source=source,
                                   backbone=eag.descriptor.backbone if spec.get("same_backbone") else "any")
                if not found:
                    tried.append(f"{source} → {target}: no '{spec['method']}' evaluation")
                    continue
                for metric in ctx.config.metrics:
                    out.append((eag, ctx.measure(f"EAG-RL − {method_key(found[0].descriptor)}",
                                                 [(1.0, eag), (-1.0, found[0])], metric)))
    return out, tried, tested


def _transfer_row(label: str, eag: Record, comparison: Comparison) -> dict[str, Any]:
    d = eag.descriptor
    return comparison.row(evidence=label, **{"source → target": f"{d.source_dataset} → {d.dataset}"}, task=d.task,
                          backbone=d.backbone or "—")


def transfer(claim: dict[str, Any], ctx: Context) -> Verdict:
    """C5: trained on a source domain and tested on a target domain, EAG-RL beats each comparator.

    Only ``pairs`` (the paper's MIMIC-IV → TJH) decide the verdict; ``supplementary_pairs`` (synthetic
    analogs) are judged the same way and reported beside it, never as the verdict.
    """
    main, tried, tested = _transfer_comparisons(claim["pairs"], claim, ctx)
    extra, _, extra_tested = _transfer_comparisons(claim.get("supplementary_pairs", []), claim, ctx)
    extra_outcomes = ctx.judge([c for _, c in extra])
    note = (f"; supplementary (not the paper's setting): {tally(extra_outcomes)} on the analog pair(s), which "
            f"alone would read '{overall(extra_outcomes)}'{synthetic_note(extra_tested)}" if extra_outcomes else "")
    numbers = ({"supplementary_supports": extra_outcomes.count(SUPPORTS),
                "supplementary_contradicts": extra_outcomes.count(CONTRADICTS),
                "supplementary_comparisons": len(extra_outcomes)} if extra_outcomes else {})
    extra_rows = [_transfer_row("supplementary", eag, c) for eag, c in extra]
    if not main:
        return make_verdict(claim, NOT_TESTABLE, "; ".join(tried) + note + f"; {ctx.inventory()}", extra_rows, numbers)
    what = "EAG-RL against each comparator on the target domain" + (f" (not tested: {'; '.join(tried)})" if tried else "")
    verdict = judged(claim, ctx, [c for _, c in main], what, tested,
                      [_transfer_row("claim", eag, c) for eag, c in main] + extra_rows, numbers)
    verdict.reason += note
    return verdict
