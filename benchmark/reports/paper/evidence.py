"""Paired evidence for the claim tests: every comparison a claim makes, tested on the same patients.

:class:`Context` holds the collected records and finds the ones a claim needs; :meth:`Context.measure` turns
one comparison into a :class:`Comparison` with its paired test (:class:`Evidence`), :meth:`Context.judge` sets
the outcomes of a claim's comparisons.

A claim compares collected evaluations (:class:`benchmark.reports.collect.Record`). Each comparison is a linear
*contrast* of their metrics that the claim says is positive: ``EAG-RL − baseline`` (C1, C5),
``w/o stage 1 − w/o stage 2`` (C3), ``degradation(comparator) − degradation(EAG-RL)`` (C4). Its sampling
distribution comes from one paired bootstrap:

* every record contributes the mean of its training seeds (:attr:`Record.seed_predictions`; one run counts as
  one seed), unparsable answers resolved by ``metrics.unparsable``;
* all records of a contrast must hold the same patients with the same labels; the patients are resampled
  once (:func:`benchmark.metrics.bootstrap_indices`) and every seed of every record is scored on those same
  resamples (:func:`benchmark.seeds.seed_mean_resamples`), so the contrast is paired patient by patient;
* ``p_value`` is the two-sided bootstrap p of "the contrast is 0" (:func:`benchmark.metrics.two_sided_p`);
* ``min_detectable`` is the minimum detectable effect of the contrast at this n: the smallest true difference
  a two-sided test at level α (``paper.claims.alpha``) detects with 80 % power,
  (z₁₋α/₂ + z₀.₈) · SE, SE the standard deviation of the contrast over the resamples
  (:func:`benchmark.seeds.min_detectable_effect`). An undecided comparison with a small MDE says "no effect
  of that size"; with a large one, "these data are too few to tell".

Each comparison then has one of three outcomes (:func:`judge`), and a claim's verdict follows from all of
them (:func:`overall`):

* ``supports`` — the contrast is positive with p < α;
* ``contradicts`` — it is negative with p < α / m, m the number of comparisons of the claim (Bonferroni: with
  many comparisons, one of them is significant by chance);
* ``undecided`` — neither, or no paired test was possible (no predictions on disk, other patients).

A claim **holds** when every comparison supports it (an intersection-union test: its level is α without
correction), **fails** when at least one contradicts it, and is **inconclusive** otherwise: the data cannot
decide. ``decision: mean`` instead reads each comparison from the sign of the contrast of bootstrap means, as the
paper's tables do (two outcomes, no inconclusive); the p-values are still reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.descriptor import STANDARD
from benchmark.evaluate import PredictionsError, read_predictions
from benchmark.metrics import MetricsConfig, bootstrap_indices, resolve_unparsable, two_sided_p
from benchmark.reports.collect import Record
from benchmark.reports.paper.compare import backbone_matches
from benchmark.seeds import min_detectable_effect, seed_mean_resamples

SUPPORTS, CONTRADICTS, UNDECIDED = "supports", "contradicts", "undecided"
HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
DECISIONS = ("paired_test", "mean")
MDE_POWER = 0.8  # the power of every minimum detectable effect shown


@dataclass(frozen=True)
class Contrast:
    """One paired-bootstrap contrast Σ wᵢ·metric(recordᵢ): on all patients, its interval and p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_patients: int
    std: float  # the standard deviation of the contrast over the resamples: its standard error
    resampled: np.ndarray  # the contrast on each resample (for statistics built on top, e.g. C2's ratio)


class Evidence:
    """Seed-pooled paired bootstraps of collected records, with every record's resamples computed once."""

    def __init__(self, metrics_config: MetricsConfig, resamples: int, seed: int):
        self.metrics_config = metrics_config
        self.resamples = resamples
        self.seed = seed
        self._runs: dict[Path, tuple[tuple[str, ...], np.ndarray, dict[int, np.ndarray]]] = {}
        self._scores: dict[tuple[Path, str], tuple[float, np.ndarray]] = {}

    def _load(self, record: Record) -> tuple[tuple[str, ...], np.ndarray, dict[int, np.ndarray]]:
        """(patient ids in a fixed order, labels, {seed: probabilities}) of one record, read once."""
        if record.path not in self._runs:
            paths = record.seed_predictions
            if not paths:
                raise PredictionsError(f"{record.path}: no predictions file on disk beside it")
            ids, labels, by_seed = None, None, {}
            for seed, path in sorted(paths.items()):
                frame = read_predictions(path).sort_values("id", kind="stable")
                if ids is None:
                    ids, labels = tuple(str(i) for i in frame["id"]), frame["label"].to_numpy(np.int64)
                elif tuple(str(i) for i in frame["id"]) != ids or not np.array_equal(frame["label"], labels):
                    raise PredictionsError(f"{path}: other patients or labels than {paths[min(paths)]}")
                by_seed[seed], _ = resolve_unparsable(labels, frame["probability"].to_numpy(np.float64),
                                                      frame["parsed"].to_numpy(bool), self.metrics_config.unparsable)
            self._runs[record.path] = (ids, labels, by_seed)
        return self._runs[record.path]

    def scores(self, records: Sequence[Record], metric: str) -> tuple[np.ndarray, np.ndarray, int]:
        """Seed-mean ``metric`` of each record on all patients (k,) and on the shared resamples (k, resamples),
        and the number of patients. Raises :class:`PredictionsError` when the records hold other patients."""
        loaded = [self._load(record) for record in records]
        ids, labels, _ = loaded[0]
        for record, (other_ids, other_labels, _) in zip(records[1:], loaded[1:], strict=True):
            if other_ids != ids or not np.array_equal(other_labels, labels):
                raise PredictionsError(f"{record.path} and {records[0].path} do not hold the same patients and "
                                       f"labels; no paired test")
        points, arrays = [], []
        for record, (_, _, by_seed) in zip(records, loaded, strict=True):
            key = (record.path, metric)
            if key not in self._scores:  # the same patients and seed always give the same resamples
                indices = bootstrap_indices(labels, self.resamples, self.seed)
                self._scores[key] = seed_mean_resamples(labels, by_seed, indices, metric, self.metrics_config.threshold)
            point, resampled = self._scores[key]
            points.append(point)
            arrays.append(resampled)
        return np.array(points), np.vstack(arrays), len(ids)

    def contrast(self, terms: Sequence[tuple[float, Record]], metric: str) -> Contrast:
        """The paired contrast Σ wᵢ·metric(recordᵢ) over ``terms`` = [(wᵢ, recordᵢ)] (module docstring)."""
        weights = np.array([weight for weight, _ in terms], dtype=np.float64)
        points, resampled, n = self.scores([record for _, record in terms], metric)
        values = weights @ resampled
        finite = values[np.isfinite(values)]
        alpha = (1.0 - self.metrics_config.ci_level) / 2.0
        low, high = np.quantile(finite, [alpha, 1.0 - alpha]) if finite.size else (np.nan, np.nan)
        std = float(finite.std()) if finite.size else float("nan")
        return Contrast(float(weights @ points), float(low), float(high), two_sided_p(finite), n, std, values)


def judge(difference: float, p_value: float | None, alpha: float, comparisons: int, decision: str) -> str:
    """The outcome of one comparison whose claimed direction is ``difference > 0`` (module docstring)."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    if decision == "mean":
        return SUPPORTS if difference > 0 else CONTRADICTS
    if p_value is None or not np.isfinite(p_value):
        return UNDECIDED
    if difference > 0 and p_value < alpha:
        return SUPPORTS
    if difference < 0 and p_value < alpha / max(comparisons, 1):
        return CONTRADICTS
    return UNDECIDED


def overall(outcomes: Sequence[str]) -> str:
    """A claim's verdict from its comparisons' outcomes: fails if one contradicts, holds if all support."""
    if not outcomes:
        raise ValueError("a claim needs at least one comparison")
    if CONTRADICTS in outcomes:
        return FAILS
    return HOLDS if all(outcome == SUPPORTS for outcome in outcomes) else INCONCLUSIVE


def tally(outcomes: Sequence[str]) -> str:
    """``"a supports, b contradict, c undecided of n"`` for a verdict's reason."""
    return (f"{outcomes.count(SUPPORTS)} support, {outcomes.count(CONTRADICTS)} contradict and "
            f"{outcomes.count(UNDECIDED)} are undecided of {len(outcomes)} comparison(s)")


MDE_COLUMN = "MDE (80 % power)"


def mde_text(value: float) -> str:
    """A minimum detectable effect for a table: three decimals, or "—" where no paired test was possible."""
    return "—" if not np.isfinite(value) else f"{value:.3f}"


@dataclass
class Comparison:
    """One comparison of a claim: the contrast Σ wᵢ·metric(recordᵢ) it says is positive, and its test."""

    label: str
    terms: list[tuple[float, Record]]
    metric: str
    difference: float = float("nan")
    ci: tuple[float, float] = (float("nan"), float("nan"))
    p_value: float | None = None
    n_patients: int | None = None
    min_detectable: float = float("nan")  # MDE at 80 % power and level alpha (module docstring)
    note: str = ""
    outcome: str = UNDECIDED

    def row(self, **cell: Any) -> dict[str, Any]:
        """The comparison as an evidence row, after ``cell`` (data set, task, ...)."""
        ci = "" if math.isnan(self.ci[0]) else f" [{self.ci[0]:+.3f}, {self.ci[1]:+.3f}]"
        p = "—" if self.p_value is None else f"{self.p_value:.3g}"
        return {**cell, "comparison (claimed > 0)": self.label, "metric": self.metric.upper(),
                "n": self.n_patients if self.n_patients is not None else "—",
                "difference [95% CI]": f"{self.difference:+.3f}{ci}", "p": p,
                MDE_COLUMN: mde_text(self.min_detectable),
                "outcome": self.outcome + (f" ({self.note})" if self.note else "")}


class Context:
    """Records + settings shared by the tests, with the paired evidence computed once per record."""

    def __init__(self, records: list[Record], config: Any, metrics_config: MetricsConfig | None = None,
                 training_rows: list[dict[str, Any]] | None = None):
        """``config``: a :class:`benchmark.reports.paper.claims.ClaimsConfig` (alpha, decision, resamples,
        min_parse_rate); ``training_rows``: the rows of ``results/rl_training.json`` where read
        (:func:`benchmark.reports.paper.gates.ratt_problem`)."""
        self.records = records
        self.config = config
        self.metrics_config = metrics_config or MetricsConfig()
        self.training_rows = training_rows or []
        self.evidence = Evidence(self.metrics_config, config.resamples, self.metrics_config.seed)

    def select(self, method: str | None = None, family: str | None = None, dataset: str | None = None,
               task: str | None = None, backbone: Any = "any", condition: str | None = STANDARD,
               source: str | None = None) -> list[Record]:
        """Records matching every given field; ``backbone='any'`` skips it, ``source`` is the training set
        (default: in-domain only)."""
        out = []
        for record in self.records:
            d = record.descriptor
            if method is not None and d.method != method:
                continue
            if family is not None and d.family != family:
                continue
            if dataset is not None and d.dataset != dataset:
                continue
            if task is not None and d.task != task:
                continue
            if condition is not None and d.condition != condition:
                continue
            if backbone != "any" and not backbone_matches(backbone, d.backbone):
                continue
            if d.source_dataset != (source if source is not None else d.dataset):
                continue
            out.append(record)
        return out

    def measure(self, label: str, terms: Sequence[tuple[float, Record]], metric: str) -> Comparison:
        """A comparison with its contrast on the bootstrap means, and its paired test where one is possible."""
        comparison = Comparison(label, list(terms), metric)
        comparison.difference = float(sum(weight * record.mean(metric) for weight, record in terms))
        try:
            contrast = self.evidence.contrast(terms, metric)
        except (PredictionsError, ValueError) as error:
            comparison.note = f"no paired test: {str(error).split(';')[0]}"
            return comparison
        comparison.difference, comparison.p_value = contrast.difference, contrast.p_value
        comparison.ci = (contrast.ci_low, contrast.ci_high)
        comparison.n_patients = contrast.n_patients
        comparison.min_detectable = min_detectable_effect(contrast.std, 1.0 - self.config.alpha, MDE_POWER)
        return comparison

    def judge(self, comparisons: Sequence[Comparison]) -> list[str]:
        """Set and return every comparison's outcome; m = len(comparisons) for the Bonferroni bound."""
        for comparison in comparisons:
            comparison.outcome = judge(comparison.difference, comparison.p_value, self.config.alpha,
                                       len(comparisons), self.config.decision)
        return [comparison.outcome for comparison in comparisons]

    def inventory(self) -> str:
        """What was collected, for not-testable reasons: counts per family and the data sets."""
        if not self.records:
            return "no metrics file was collected (report.sources in params.yaml matched nothing)"
        families: dict[str, int] = {}
        for record in self.records:
            families[record.descriptor.family] = families.get(record.descriptor.family, 0) + 1
        datasets = sorted({r.descriptor.dataset for r in self.records})
        return (f"collected {len(self.records)} evaluation(s): "
                + ", ".join(f"{k} {v}" for k, v in sorted(families.items())) + f"; data sets {datasets}")
