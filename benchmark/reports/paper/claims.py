"""The paper's claims C1–C5 (``claims.yaml``) turned into verdicts from the collected metrics files.

Each claim names a ``test``; the function of that name in :data:`TESTS` looks for the evaluations the
claim needs among the collected records (:func:`benchmark.reports.collect.collect`), states every comparison the
claim makes as a paired contrast of their metrics, and returns a :class:`Verdict`:

* ``holds`` — every comparison goes the claimed way with a paired-bootstrap p < ``alpha``;
* ``fails`` — at least one goes the other way with p < ``alpha`` / m (m comparisons; Bonferroni);
* ``inconclusive`` — neither: the data (their size, or a missing predictions file) cannot decide;
* ``not testable with this profile`` — an evaluation the claim needs does not exist (e.g. EAG-RL has
  not been run, no shuffled test set, no cross-domain pair), or exists but is no evidence: a reference
  model that does not answer or is at chance, an EAG-RL whose own answers do not parse (C1–C3: cells where
  fewer than ``min_parse_rate`` parse are not judged), or an EAG-RL run whose R_att never varied
  (:mod:`benchmark.reports.paper.gates`); the reason names what is missing or why.

Every comparison shows its minimum detectable effect at 80 % power (:mod:`benchmark.reports.paper.evidence`), so an
inconclusive verdict says how large a difference these data could have seen. Comparisons with models of
another kind than the claim's (C1: experts and hybrids beside the same-backbone LLM baselines) are reported
in :attr:`Verdict.beside`, never counted in the verdict.

:mod:`benchmark.reports.paper.evidence` computes the contrasts (every training seed of a record pooled, all records
scored on the same resamples of the same patients) and states the rule. ``paper.claims.decision: mean``
reads a comparison from the sign of its bootstrap means instead, as the paper's tables compare. A claim tested
on synthetic data says so: the synthetic cohorts are stand-ins for MIMIC-IV and TJH, so a verdict there is
evidence about the method, not about the paper's numbers.

C1–C3 are tested here; C4 and C5 (the claims under a shift of the test data) in :mod:`benchmark.reports.paper.shifts`,
on the shared pieces of :mod:`benchmark.reports.paper.verdicts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmark.config import ConfigError, option
from benchmark.evaluate import PredictionsError
from benchmark.metrics import MetricsConfig
from benchmark.reports.collect import Record, method_key
from benchmark.reports.paper.compare import backbone_matches
from benchmark.reports.paper.evidence import (
    CONTRADICTS,
    DECISIONS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    SUPPORTS,
    Comparison,
    Context,
    mde_text,
)
from benchmark.reports.paper.gates import answer_or_chance, answer_problem, chance_problem, ratt_problem
from benchmark.reports.paper.shifts import robustness, transfer
from benchmark.reports.paper.verdicts import (
    NOT_TESTABLE,
    Verdict,
    cell,
    fmt,
    judged,
    make_verdict,
    no_eag,
    p_text,
    seeds_text,
    synthetic_note,
)

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
__all__ = ["HOLDS", "FAILS", "INCONCLUSIVE", "NOT_TESTABLE", "ClaimsConfig", "Verdict", "answer_problem",
           "chance_problem", "load_claims", "verify_claims"]


@dataclass
class ClaimsConfig:
    """Choices of this suite in testing the claims (``paper.claims`` in params.yaml)."""

    metrics: list[str] = option(["auroc", "auprc"], help="Metrics every claim is tested on (the paper's: AUROC and AUPRC).")
    alpha: float = option(0.05, help="Significance level: a comparison supports a claim at p < alpha and contradicts it at p < alpha / m (m comparisons of the claim).")
    decision: str = option("paired_test", help="How a comparison is read: paired_test (holds / fails / inconclusive from paired-bootstrap p-values, benchmark/reports/paper/evidence.py) or mean (the sign of the bootstrap means, as the paper's tables compare; never inconclusive).")
    resamples: int = option(2000, help="Paired-bootstrap resamples of the claim tests (independent of metrics.bootstrap_resamples: the smallest p is 2 / (resamples + 1), which must stay below alpha / m).")
    c2_margin_points: float = option(5.0, help="C2 holds when the average improvement over the base model is at least paper_value - margin percentage points (its lower confidence bound, with decision paired_test).")
    min_parse_rate: float = option(0.9, help="A reference model (C2's base, C4's EAG-RL and comparators) answers only when at least this share of its answers parse; below it the comparison is 'not testable' (benchmark/reports/paper/gates.py).")

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ConfigError(f"paper.claims.decision: {self.decision!r} is not one of {list(DECISIONS)}; "
                              f"use paired_test (the default) or mean")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"paper.claims.alpha: {self.alpha} is not in (0, 1); use e.g. 0.05")
        if self.resamples < 1:
            raise ConfigError(f"paper.claims.resamples: {self.resamples} must be >= 1; use e.g. 2000")
        if not 0 <= self.min_parse_rate <= 1:
            raise ConfigError(f"paper.claims.min_parse_rate: {self.min_parse_rate} is not in [0, 1]; use e.g. 0.9")


def load_claims(path: str | Path = CLAIMS_FILE) -> list[dict[str, Any]]:
    """The claims of ``claims.yaml``, checked for an id, a statement and a known test."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    claims = data.get("claims")
    if not isinstance(claims, list) or not claims:
        raise ConfigError(f"{path}: needs a list 'claims'")
    for claim in claims:
        for key in ("id", "statement", "test"):
            if key not in claim:
                raise ConfigError(f"{path}: claim {claim.get('id', '?')} has no '{key}'")
        if claim["test"] not in TESTS:
            raise ConfigError(f"{path}: claim {claim['id']}: unknown test {claim['test']!r}; known: {sorted(TESTS)}")
    return claims


def _baselines(ctx: Context, claim: dict[str, Any], eag: Record, key: str = "baseline_families") -> list[Record]:
    """The records of ``claim[key]``'s families on EAG-RL's patients: same-backbone ones for the baselines
    (the same-backbone LLM families), same backbone or none (experts) for the others."""
    d = eag.descriptor
    strict = key == "baseline_families"
    return [r for r in ctx.select(dataset=d.dataset, task=d.task, condition=d.condition, source=d.source_dataset)
            if r.descriptor.family in claim.get(key, [])
            and ((r.descriptor.backbone is None and not strict) or backbone_matches(r.descriptor.backbone, d.backbone))]


def answering(ctx: Context, eags: list[Record]) -> tuple[list[Record], list[str]]:
    """EAG-RL's records that answer (:func:`benchmark.reports.paper.gates.answer_problem`), and why each other one does
    not: a model whose answers do not parse is scored by its output format, so neither its wins nor its losses
    test the claim."""
    kept, silent = [], []
    for eag in eags:
        d = eag.descriptor
        if problem := answer_problem(eag, ctx.config.min_parse_rate, "EAG-RL"):
            silent.append(f"{d.dataset}/{d.task}: {problem}")
        else:
            kept.append(eag)
    return kept, silent


def _silent_note(silent: list[str]) -> str:
    return f"; not judged: {'; '.join(silent)}" if silent else ""


def _answering_eags(claim: dict[str, Any], ctx: Context) -> tuple[list[Record], list[str], Verdict | None]:
    """EAG-RL's answering records and why the others are silent, or the verdict when none is left (C1–C3's opening)."""
    eags = ctx.select(method=claim["eag_rl"], family="eag_rl")
    if not eags:
        return [], [], no_eag(claim, ctx)
    eags, silent = answering(ctx, eags)
    if not eags:
        return [], silent, make_verdict(claim, NOT_TESTABLE, "; ".join(silent))
    return eags, silent, None


# ------------------------------------------------------------------------------------------ the tests
def _c1_comparisons(claim: dict[str, Any], ctx: Context, eags: list[Record]
                    ) -> tuple[list[Comparison], list[tuple], list[tuple[Record, Record, Comparison]], dict[int, str]]:
    """C1's contrasts, in their order of draws: against the baselines (all, and by cell), beside, and those set aside."""
    comparisons, groups, beside, held = [], [], [], {}
    for eag in eags:
        baselines = _baselines(ctx, claim, eag)
        ratt = ratt_problem(eag, ctx.training_rows)
        set_aside = [b for b in baselines if ratt and b.descriptor.family in claim.get("ratt_families", [])]
        baselines = [b for b in baselines if b not in set_aside]
        others = _baselines(ctx, claim, eag, "beside_families") + set_aside
        for metric in ctx.config.metrics:
            group = [ctx.measure(f"EAG-RL − {method_key(b.descriptor)}", [(1.0, eag), (-1.0, b)], metric)
                     for b in baselines]
            comparisons += group
            if group:
                groups.append((eag, metric, baselines, group))
            for other in others:
                beside.append((eag, other, ctx.measure(f"EAG-RL − {method_key(other.descriptor)}",
                                                       [(1.0, eag), (-1.0, other)], metric)))
                if other in set_aside:
                    held[id(beside[-1][2])] = ratt
    return comparisons, groups, beside, held


def _beside_rows(ctx: Context, beside: list[tuple[Record, Record, Comparison]], held: dict[int, str]
                 ) -> list[dict[str, Any]]:
    """C1's beside comparisons judged (those set aside not) and as rows, so they are reported but never counted."""
    ctx.judge([c for _, _, c in beside if id(c) not in held])
    rows = [c.row(**cell(eag), family=other.descriptor.family) for eag, other, c in beside]
    for row, (_, _, c) in zip(rows, beside, strict=True):
        if id(c) in held:
            row["outcome"] = f"not judged: {held[id(c)]}"
    return rows


def _c1_evidence_row(eag: Record, metric: str, baselines: list[Record], group: list[Comparison]) -> dict[str, Any]:
    """C1's evidence row of one cell and metric: EAG-RL against its best baseline, and how many it beats."""
    best_index = int(np.nanargmax([b.mean(metric) for b in baselines]))
    outcomes = [c.outcome for c in group]
    return {**cell(eag), "metric": metric.upper(), "EAG-RL [95% CI]": fmt(eag, metric),
            "EAG-RL seeds": max(len(eag.seed_predictions), 1),
            "n": group[best_index].n_patients or "—",
            "best baseline": method_key(baselines[best_index].descriptor),
            "best [95% CI]": fmt(baselines[best_index], metric),
            "Δ (vs best)": f"{group[best_index].difference:+.3f}",
            "p (vs best)": p_text(group[best_index].p_value),
            "MDE vs best": mde_text(group[best_index].min_detectable),
            "beaten (p < α)": f"{outcomes.count(SUPPORTS)}/{len(group)}",
            "better than EAG-RL (p < α/m)": f"{outcomes.count(CONTRADICTS)}/{len(group)}"}


def beats_all_baselines(claim: dict[str, Any], ctx: Context) -> Verdict:
    """C1: EAG-RL beats every same-backbone LLM baseline, per data set, task, backbone and metric (one
    comparison each). Experts and hybrids (``beside_families``) are compared the same way and reported beside
    the verdict; so is EAG-RL against the ``ratt_families`` (GRPO, DAPO) where R_att never varied in its
    training (:func:`benchmark.reports.paper.gates.ratt_problem`)."""
    eags, silent, untestable = _answering_eags(claim, ctx)
    if untestable is not None:
        return untestable
    comparisons, groups, beside, held = _c1_comparisons(claim, ctx, eags)
    rows = _beside_rows(ctx, beside, held)
    numbers = {"beside_comparisons": len(beside)}
    if not comparisons:
        verdict = make_verdict(claim, NOT_TESTABLE, "EAG-RL was evaluated, but no same-backbone LLM baseline ("
                               f"{', '.join(claim['baseline_families'])}) exists on the same data set, task and backbone"
                               + (f" (set aside: {'; '.join(sorted(set(held.values())))})" if held else "")
                               + _silent_note(silent) + f"; {ctx.inventory()}", numbers=numbers)
        verdict.beside = rows
        return verdict
    what = f"EAG-RL against every same-backbone LLM baseline ({', '.join(claim['baseline_families'])})"
    verdict = judged(claim, ctx, comparisons, what, eags, [], numbers)
    if held:
        verdict.reason += f"; EAG-RL against {', '.join(claim['ratt_families'])} set aside: " + \
            "; ".join(sorted(set(held.values())))
    verdict.reason += _silent_note(silent)
    verdict.beside = rows
    verdict.evidence += [_c1_evidence_row(eag, metric, baselines, group) for eag, metric, baselines, group in groups]
    return verdict


def _c2_cells(claim: dict[str, Any], ctx: Context, eags: list[Record]) -> tuple[list, list, list, list, list, list]:
    """C2's per-cell improvements over the base model and the best baseline, with their rows, resamples and gaps."""
    to_base, to_best, evidence, resampled, notes, invalid = [], [], [], [], [], []
    for eag in eags:
        d = eag.descriptor
        bases = ctx.select(method=claim["base_method"], dataset=d.dataset, task=d.task, backbone=d.backbone)
        baselines = _baselines(ctx, claim, eag)
        problem = answer_or_chance(bases[0], ctx.config.min_parse_rate, "the base model") if bases else None
        if problem:
            invalid.append(f"{d.dataset}/{d.task}: {problem}")
        for metric in ctx.config.metrics:
            e = eag.mean(metric)
            row = {**cell(eag), "metric": metric.upper(), "EAG-RL": f"{e:.3f}", "base": "—", "vs base %": "—",
                   "MDE (80 % power)": "—", "best same-backbone baseline": "—", "vs best same-backbone baseline %": "—"}
            if bases and problem:
                row.update({"base": f"{bases[0].mean(metric):.3f}", "vs base %": f"not testable: {problem}"})
            elif bases and bases[0].mean(metric) > 0:
                b = bases[0].mean(metric)
                to_base.append(100.0 * (e - b) / b)
                mde = ctx.measure("EAG-RL − base", [(1.0, eag), (-1.0, bases[0])], metric).min_detectable
                row.update({"base": f"{b:.3f}", "vs base %": f"{to_base[-1]:+.2f}", "MDE (80 % power)": mde_text(mde)})
                try:
                    _, scores, _ = ctx.evidence.scores([eag, bases[0]], metric)
                    resampled.append(100.0 * (scores[0] - scores[1]) / scores[1])
                except (PredictionsError, ValueError) as error:
                    notes.append(str(error).split(";")[0])
            if baselines:
                best = max(r.mean(metric) for r in baselines)
                if best > 0:
                    to_best.append(100.0 * (e - best) / best)
                    row.update({"best same-backbone baseline": f"{best:.3f}",
                                "vs best same-backbone baseline %": f"{to_best[-1]:+.2f}"})
            evidence.append(row)
    return to_base, to_best, evidence, resampled, notes, invalid


def _c2_status(ctx: Context, average: float, threshold: float, resampled: list[np.ndarray], notes: list[str],
               numbers: dict[str, float]) -> tuple[str, str]:
    """C2's status and interval text: the mean against the threshold, or its paired-bootstrap interval (into ``numbers``)."""
    if ctx.config.decision == "mean":
        return HOLDS if average >= threshold else FAILS, ""
    if notes or not resampled:
        return INCONCLUSIVE, f"; no paired interval ({notes[0] if notes else 'no predictions'})"
    averaged = np.mean(np.vstack(resampled), axis=0)
    averaged = averaged[np.isfinite(averaged)]
    alpha = (1.0 - ctx.metrics_config.ci_level) / 2.0
    low, high = (float(v) for v in np.quantile(averaged, [alpha, 1.0 - alpha]))
    numbers.update({"relative_to_base_ci_low": low, "relative_to_base_ci_high": high})
    status = HOLDS if low >= threshold else FAILS if high < threshold else INCONCLUSIVE
    return status, f", {ctx.metrics_config.ci_level:.0%} paired-bootstrap interval [{low:+.2f}, {high:+.2f}] %"


def average_improvement(claim: dict[str, Any], ctx: Context) -> Verdict:
    """C2: the average relative improvement over the base model, with its paired-bootstrap interval.

    Per (data set, task, backbone, metric) cell: 100 · (EAG-RL − base) / base on all patients and on each
    resample of the cell's patients; the average over cells is the statistic (cells on other patients are
    resampled independently). Holds when its lower bound reaches ``paper − margin``, fails when its upper
    bound is below it, else inconclusive (``decision: mean``: the average of the means against the threshold).
    A cell whose base model does not answer or is at chance (:mod:`benchmark.reports.paper.gates`) is not judged: an
    improvement over a model that says nothing is no improvement of its reasoning; with no cell left the claim
    is not testable. The gain over the best same-backbone baseline is reported beside.
    """
    eags, silent, untestable = _answering_eags(claim, ctx)
    if untestable is not None:
        return untestable
    to_base, to_best, evidence, resampled, notes, invalid = _c2_cells(claim, ctx, eags)
    if not to_base and invalid:
        return make_verdict(claim, NOT_TESTABLE, f"the base model ('{claim['base_method']}' on the same backbone) is no "
                            f"valid reference: {'; '.join(invalid)}", evidence)
    if not to_base:
        return make_verdict(claim, NOT_TESTABLE, f"EAG-RL was evaluated but the base model ('{claim['base_method']}' on the "
                            f"same backbone) was not; {ctx.inventory()}", evidence)
    paper = float(claim["paper_value_pct"])
    average = float(np.mean(to_base))
    threshold = paper - ctx.config.c2_margin_points
    numbers = {"relative_to_base_pct": average, "paper_pct": paper}
    if to_best:
        numbers["relative_to_best_baseline_pct"] = float(np.mean(to_best))
    status, interval = _c2_status(ctx, average, threshold, resampled, notes, numbers)
    reason = (f"average improvement over the base model {average:+.2f} %{interval} over {len(to_base)} (data set, "
              f"task, backbone, metric) cells (paper: {paper:.2f} %; holds at ≥ {threshold:.2f} %)"
              + (f"; vs best same-backbone baseline {numbers['relative_to_best_baseline_pct']:+.2f} %" if to_best else "")
              + (f"; not judged (invalid base): {'; '.join(invalid)}" if invalid else "")
              + _silent_note(silent) + synthetic_note(eags))
    return make_verdict(claim, status, reason, evidence, numbers)


def ablation_order(claim: dict[str, Any], ctx: Context) -> Verdict:
    """C3: drop(w/o stage 2) > drop(w/o stage 1), and removing R_att or ε(τ) lowers the scores.

    Per cell and metric, three comparisons: w/o stage 1 − w/o stage 2 (the same as drop(w/o stage 2) −
    drop(w/o stage 1)), EAG-RL − w/o R_att and EAG-RL − w/o ε(τ). A cell where R_att never varied in EAG-RL's
    training is not judged (:func:`benchmark.reports.paper.gates.ratt_problem`): its stage 2 is GRPO without R_att.
    """
    eags, silent, untestable = _answering_eags(claim, ctx)
    if untestable is not None:
        return untestable
    keys = ("without_stage1", "without_stage2", "without_ratt", "without_eps")
    found_any = {key: False for key in keys}
    comparisons, rows, gated = [], [], []
    for eag in eags:
        d = eag.descriptor
        found = {key: ctx.select(method=claim[key], family="ablation", dataset=d.dataset, task=d.task,
                                 backbone=d.backbone) for key in keys}
        for key in keys:
            found_any[key] |= bool(found[key])
        if not all(found.values()):
            continue
        if problem := ratt_problem(eag, ctx.training_rows):
            gated.append(problem)
            continue
        one, two, ratt, eps = (found[key][0] for key in keys)
        for metric in ctx.config.metrics:
            for label, terms in ((f"drop({claim['without_stage2']}) − drop({claim['without_stage1']})",
                                  [(1.0, one), (-1.0, two)]),
                                 (f"drop({claim['without_ratt']})", [(1.0, eag), (-1.0, ratt)]),
                                 (f"drop({claim['without_eps']})", [(1.0, eag), (-1.0, eps)])):
                comparisons.append(ctx.measure(label, terms, metric))
                rows.append((eag, comparisons[-1]))
    missing = [claim[key] for key in keys if not found_any[key]]
    if not missing and not comparisons and gated:
        return make_verdict(claim, NOT_TESTABLE, "; ".join(gated))
    if missing or not comparisons:
        hint = f" ({claim['enable']})" if claim.get("enable") else ""
        return make_verdict(claim, NOT_TESTABLE, f"no evaluation of the ablation(s) {missing} (family 'ablation') beside "
                            f"EAG-RL{hint}; {ctx.inventory()}")
    verdict = judged(claim, ctx, comparisons, "the ablation order", eags, [])
    verdict.reason += "".join(f"; not judged: {problem}" for problem in gated) + _silent_note(silent)
    verdict.evidence = [c.row(**cell(eag), scores="; ".join(f"{seeds_text(r)} {r.mean(c.metric):.3f}" for _, r in c.terms))
                        for eag, c in rows]
    return verdict


TESTS: dict[str, Callable[[dict[str, Any], Context], Verdict]] = {
    "beats_all_baselines": beats_all_baselines,
    "average_improvement": average_improvement,
    "ablation_order": ablation_order,
    "robustness": robustness,
    "transfer": transfer,
}


def verify_claims(records: list[Record], config: ClaimsConfig, metrics_config: MetricsConfig | None = None,
                  claims: list[dict[str, Any]] | None = None,
                  training_rows: list[dict[str, Any]] | None = None) -> list[Verdict]:
    """A verdict for every claim of ``claims.yaml`` (or of ``claims``); ``training_rows``: the rows of
    ``results/rl_training.json``, where R_att variation is read when the run folders do not give it."""
    ctx = Context(records, config, metrics_config, training_rows)
    return [TESTS[claim["test"]](claim, ctx) for claim in (claims or load_claims())]
