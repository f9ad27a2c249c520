"""Binary-classification metrics with bootstrap confidence intervals and a paired bootstrap test.

Every score in ``results/`` is computed here, the same way for experts, prompted LLMs and trained LLMs.

Metrics (``METRICS``)
---------------------
* ``auroc`` — area under the ROC curve (ties count one half; equals ``sklearn.metrics.roc_auc_score``).
* ``auprc`` — average precision, the step-wise area under the precision–recall curve
  (equals ``sklearn.metrics.average_precision_score``; the paper group's code uses the same estimator).
* ``minpse`` — min(+P, Se): over every threshold of the precision–recall curve, the larger of
  ``min(precision, recall)``; i.e. the score at the threshold where precision and sensitivity balance.
  Same definition as the paper group's evaluation code (``max(min(p, r))`` over
  ``sklearn.metrics.precision_recall_curve``).
* ``f1`` and ``accuracy`` — at a fixed threshold (``MetricsConfig.threshold``, 0.5): a patient is
  predicted positive when ``probability > threshold``, strictly, as torchmetrics (used by the paper
  group) does. An uninformative answer of exactly 0.5 therefore counts as "survives".

Bootstrap
---------
Patients are resampled with replacement ``bootstrap_resamples`` times (the paper reports 100 resamples;
its group's released evaluation defaults to 1000, our default). For each metric we report the estimate on
all patients (``point``), and the bootstrap ``mean``, ``std`` and the percentile interval at
``ci_level`` (``ci_low``, ``ci_high``). The paper's tables print bootstrap mean ± std.

*Single-class resamples are redrawn*: a resample that happens to contain only survivors (or only deaths)
has no AUROC/AUPRC, so it is discarded and drawn again until ``bootstrap_resamples`` valid resamples exist
(an error is raised if the labels have a single class, where no valid resample can exist). The resample
indices depend only on the seed and the labels, never on the predictions, so every method evaluated on
the same patients with the same seed sees exactly the same resamples — which is what makes the paired
test below (and comparisons of CIs across methods) meaningful.

Paired bootstrap test
---------------------
:func:`paired_bootstrap` scores two methods on the same resamples and reports, per metric, the
difference ``A − B`` on all patients, its bootstrap mean, std and percentile CI, and a two-sided p-value
``p = min(1, 2·min((#{Δ_b ≤ 0} + 1)/(B + 1), (#{Δ_b ≥ 0} + 1)/(B + 1)))`` — twice the smaller tail
of the bootstrap distribution of the difference beyond zero, with the +1 correction that keeps p > 0 for
a finite number of resamples. Identical predictions give p = 1.

Unparsable predictions
----------------------
An LLM answer from which no probability could be parsed is never dropped: dropping it would score a
method only on the patients it chose to answer. Such rows (``parsed`` False, probability NaN) are
counted (``parse_failures``, ``parse_failure_rate``) and scored with the rule ``MetricsConfig.unparsable``:

* ``uninformative`` (default) — probability 0.5: the answer carries no information; it ranks in the
  middle for AUROC/AUPRC and, with the strict threshold, is predicted negative for F1/accuracy.
* ``worst_case`` — probability ``1 − label``: every failure is confidently wrong (a lower bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from benchmark.config import ConfigError, option

METRICS = ("auroc", "auprc", "minpse", "f1", "accuracy")
UNPARSABLE_RULES = ("uninformative", "worst_case")
_MAX_REDRAWS_PER_RESAMPLE = 1000


@dataclass
class MetricsConfig:
    """How predictions are scored (the ``metrics`` section of params.yaml)."""

    bootstrap_resamples: int = option(1000, minimum=1, help="Bootstrap resamples of the test patients (the paper reports 100; its group's released evaluation defaults to 1000).")
    seed: int = option(42, help="Seed of the bootstrap resampling (42 as in the paper group's code).")
    ci_level: float = option(0.95, help="Coverage of the percentile confidence interval.")
    threshold: float = option(0.5, help="Decision threshold for F1 and accuracy: positive iff probability > threshold.")
    unparsable: Literal["uninformative", "worst_case"] = option(
        "uninformative",
        help="Score of an unparsable answer: 'uninformative' = probability 0.5; 'worst_case' = 1 - label. "
             "Either way failures are counted and reported, never dropped.")

    def __post_init__(self) -> None:
        if self.bootstrap_resamples < 1:
            raise ConfigError(f"metrics.bootstrap_resamples: must be >= 1, got {self.bootstrap_resamples}")
        if not 0 < self.ci_level < 1:
            raise ConfigError(f"metrics.ci_level: must be in (0, 1), got {self.ci_level}")
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"metrics.threshold: must be in [0, 1], got {self.threshold}")
        if self.unparsable not in UNPARSABLE_RULES:
            raise ConfigError(f"metrics.unparsable: must be one of {UNPARSABLE_RULES}, got {self.unparsable!r}")


# ---------------------------------------------------------------------------------------------- checks
def _check(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"labels and probabilities must be 1-d of the same length, got {y.shape} and {p.shape}")
    if y.size == 0:
        raise ValueError("no predictions to score")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}")
    if np.isnan(p).any():
        raise ValueError(f"{int(np.isnan(p).sum())} probabilities are NaN: apply the unparsable rule first "
                         f"(resolve_unparsable) — NaN predictions are never scored silently")
    if (p < 0).any() or (p > 1).any():
        raise ValueError(f"probabilities must be in [0, 1], got min {p.min():.4g} max {p.max():.4g}")
    return y.astype(np.int64), p


def resolve_unparsable(labels: np.ndarray, probabilities: np.ndarray, parsed: np.ndarray | None,
                       rule: str = "uninformative") -> tuple[np.ndarray, int]:
    """Replace the probabilities of unparsable answers by the rule's value; returns them and the count.

    A row is unparsable when ``parsed`` is False or its probability is NaN (both are treated the same, so
    a NaN can never reach a metric). See the module docstring for the rules.
    """
    y = np.asarray(labels).astype(np.int64)
    p = np.asarray(probabilities, dtype=np.float64).copy()
    failed = np.isnan(p)
    if parsed is not None:
        failed |= ~np.asarray(parsed, dtype=bool)
    if rule == "uninformative":
        p[failed] = 0.5
    elif rule == "worst_case":
        p[failed] = 1.0 - y[failed]
    else:
        raise ValueError(f"unknown unparsable rule {rule!r}; choose one of {UNPARSABLE_RULES}")
    return p, int(failed.sum())


# ---------------------------------------------------------------------------------------------- metrics
def _curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct threshold, highest threshold first."""
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    distinct = np.flatnonzero(np.diff(p_sorted)) if p_sorted.size > 1 else np.array([], dtype=np.int64)
    ends = np.r_[distinct, y_sorted.size - 1]
    tps = np.cumsum(y_sorted)[ends].astype(np.float64)
    fps = (ends + 1) - tps
    return tps, fps


def auroc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Area under the ROC curve; NaN when the labels have a single class."""
    y, p = _check(labels, probabilities)
    return _ranking_metrics(y, p)[0]


def auprc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve); NaN without positives."""
    y, p = _check(labels, probabilities)
    return _ranking_metrics(y, p)[1]


def minpse(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """min(+P, Se): the best ``min(precision, recall)`` over the thresholds; NaN without positives."""
    y, p = _check(labels, probabilities)
    return _ranking_metrics(y, p)[2]


def f1(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the positive class at ``probability > threshold`` (0 when nothing is predicted positive)."""
    y, p = _check(labels, probabilities)
    return _threshold_metrics(y, p, threshold)[0]


def accuracy(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> float:
    """Share of patients classified correctly at ``probability > threshold``."""
    y, p = _check(labels, probabilities)
    return _threshold_metrics(y, p, threshold)[1]


def _ranking_metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        nan = float("nan")
        return nan, (nan if positives == 0 else 1.0), (nan if positives == 0 else 1.0)
    tps, fps = _curve(y, p)
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    roc = float(np.trapezoid(tpr, fpr))
    precision = tps / (tps + fps)
    recall = tps / positives
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    mps = float(np.max(np.minimum(precision, recall)))
    return roc, ap, mps


def _threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    predicted = p > threshold
    tp = float(np.sum(predicted & (y == 1)))
    fp = float(np.sum(predicted & (y == 0)))
    fn = float(np.sum(~predicted & (y == 1)))
    f1_score = 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0
    acc = float(np.mean(predicted == (y == 1)))
    return f1_score, acc


def compute_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Every metric of ``METRICS`` on one set of predictions (no bootstrap)."""
    y, p = _check(labels, probabilities)
    roc, ap, mps = _ranking_metrics(y, p)
    f1_score, acc = _threshold_metrics(y, p, threshold)
    return {"auroc": roc, "auprc": ap, "minpse": mps, "f1": f1_score, "accuracy": acc}


# ---------------------------------------------------------------------------------------------- bootstrap
def bootstrap_indices(labels: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) patient indices drawn with replacement; single-class resamples are redrawn.

    Depends only on ``labels`` and ``seed``, so two methods on the same patients get the same resamples.
    """
    y = np.asarray(labels).astype(np.int64)
    n = y.size
    if n == 0:
        raise ValueError("cannot bootstrap an empty set of predictions")
    if y.min() == y.max():
        raise ValueError(f"all {n} labels are {int(y[0])}: every bootstrap resample would have a single class, "
                         f"so AUROC/AUPRC are undefined; evaluate on a set with both outcomes")
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, n), dtype=np.int64)
    filled = 0
    draws = 0
    while filled < resamples:
        draws += 1
        if draws > _MAX_REDRAWS_PER_RESAMPLE * resamples:
            raise RuntimeError(f"could not draw {resamples} resamples with both classes from {n} patients "
                               f"({int(y.sum())} positive); the set is too small or too unbalanced to bootstrap")
        index = rng.integers(0, n, size=n)
        drawn = y[index]
        if drawn.min() != drawn.max():
            out[filled] = index
            filled += 1
    return out


def _summary(values: np.ndarray, point: float, ci_level: float) -> dict[str, float]:
    alpha = (1.0 - ci_level) / 2.0
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        nan = float("nan")
        return {"point": float(point), "mean": nan, "std": nan, "ci_low": nan, "ci_high": nan}
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return {"point": float(point), "mean": float(finite.mean()), "std": float(finite.std()),
            "ci_low": float(low), "ci_high": float(high)}


def _resampled(y: np.ndarray, p: np.ndarray, indices: np.ndarray, threshold: float) -> np.ndarray:
    """(resamples, len(METRICS)) metric values on each resample."""
    out = np.empty((indices.shape[0], len(METRICS)))
    for b, index in enumerate(indices):
        yb, pb = y[index], p[index]
        out[b, :3] = _ranking_metrics(yb, pb)
        out[b, 3:] = _threshold_metrics(yb, pb, threshold)
    return out


def bootstrap(labels: np.ndarray, probabilities: np.ndarray, config: MetricsConfig | None = None
              ) -> dict[str, dict[str, float]]:
    """Per metric: ``point`` (all patients) and bootstrap ``mean``, ``std``, ``ci_low``, ``ci_high``."""
    config = config or MetricsConfig()
    y, p = _check(labels, probabilities)
    point = compute_metrics(y, p, config.threshold)
    indices = bootstrap_indices(y, config.bootstrap_resamples, config.seed)
    values = _resampled(y, p, indices, config.threshold)
    return {name: _summary(values[:, j], point[name], config.ci_level) for j, name in enumerate(METRICS)}


def two_sided_p(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of resampled differences against 0 (module docstring); NaN if none is finite.

    One formula for every paired test (:func:`paired_bootstrap`, :func:`benchmark.seeds.pooled_paired_test`).
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not d.size:
        return float("nan")
    below = (np.sum(d <= 0) + 1) / (d.size + 1)
    above = (np.sum(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def paired_bootstrap(labels: np.ndarray, probabilities_a: np.ndarray, probabilities_b: np.ndarray,
                     config: MetricsConfig | None = None) -> dict[str, dict[str, float]]:
    """Paired bootstrap test of method A against method B on the same patients (A − B per metric).

    Both methods are scored on the same resamples; per metric the result has ``difference`` (on all
    patients), ``mean``, ``std``, ``ci_low``, ``ci_high`` of the resampled differences and a two-sided
    ``p_value`` (see the module docstring). Unparsable answers must be resolved first.
    """
    config = config or MetricsConfig()
    y, pa = _check(labels, probabilities_a)
    _, pb = _check(labels, probabilities_b)
    point_a = compute_metrics(y, pa, config.threshold)
    point_b = compute_metrics(y, pb, config.threshold)
    indices = bootstrap_indices(y, config.bootstrap_resamples, config.seed)
    delta = _resampled(y, pa, indices, config.threshold) - _resampled(y, pb, indices, config.threshold)
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(METRICS):
        d = delta[:, j][np.isfinite(delta[:, j])]
        summary = _summary(d, point_a[name] - point_b[name], config.ci_level)
        summary["difference"] = summary.pop("point")
        summary["p_value"] = two_sided_p(d)
        out[name] = summary
    return out
