"""Several training seeds of one method: their aggregate, and a paired test of two methods pooled over seeds.

A trained method (an RL variant, a fine-tuned LLM, a DL expert) is a random variable of its training seed;
one run per method confounds the method with the seed. The paper reports one run; this suite trains several
seeds where the profile allows and states the spread.

Aggregate (:func:`aggregate_seeds`)
-----------------------------------
Per metric: the value of every seed, their ``mean`` and the sample standard deviation across seeds
``std`` (``ddof = 1``: the seeds are a sample of the seeds one could have drawn). With a single seed there
is no spread to estimate; ``std`` is then reported as ``0.0`` (not NaN) so that tables stay numeric, and
``n_seeds = 1`` says that it carries no information. A NaN metric of a seed propagates to mean and std.

Pooled paired test (:func:`pooled_paired_test`)
-----------------------------------------------
Methods A and B each have predictions on the *same* patients for several training seeds (the seed sets may
differ in size). The statistic is the difference of the seed-mean metric

    Δ = (1/|S_A|) Σ_{s ∈ S_A} m(A_s) − (1/|S_B|) Σ_{s ∈ S_B} m(B_s).

Its sampling distribution over patients comes from the paired bootstrap of :mod:`benchmark.metrics`: each
resample draws patient indices once (:func:`benchmark.metrics.bootstrap_indices`, single-class resamples
redrawn) and every seed of both methods is scored on those same indices, so Δ_b is Δ on resample b. The
result has the ``difference`` on all patients, the bootstrap ``mean`` and ``std`` of Δ_b, the percentile
interval at ``ci_level`` (``ci_low``, ``ci_high``) and the two-sided ``p_value`` of
:func:`benchmark.metrics.paired_bootstrap` (twice the smaller tail beyond zero with the +1 correction;
identical methods give p = 1). With one seed per method it *is* ``paired_bootstrap`` of that pair.

The bootstrap resamples patients only, not seeds: the interval says how Δ would vary over test sets for
these trained models, and the seed spread is reported beside it by :func:`aggregate_seeds`.

A *contrast* (:func:`pooled_paired_contrast_test`) generalises Δ to a sum of seed-mean metrics minus another,
each term resampled on the same patients: the difference of two methods' changes under a perturbation,
``(A_shuffled − A_none) − (B_shuffled − B_none)``, is the contrast of ``[A_shuffled, B_none]`` against
``[A_none, B_shuffled]``. :func:`pooled_paired_test` is the contrast of ``[A]`` against ``[B]``.

Where the seeds are (:func:`seed_block`, :func:`seed_folders`)
--------------------------------------------------------------
A stage that evaluates several seeds writes the first seed's files in its folder and every further seed's in
a subfolder, and adds a ``seeds`` block to the first seed's ``metrics.json``: the aggregate above plus
``predictions`` (seed → that seed's ``predictions.csv`` relative to the folder). :func:`seed_folders` reads it
back; a ``metrics.json`` without the block is one run.

``min_detectable_effect`` is the smallest true |Δ| that a two-sided test at level ``1 − ci_level`` detects
with probability ``power`` (default 80 %), under a normal approximation of Δ_b:
``(z_{1 − α/2} + z_{power}) · std`` — 2.80 · std at the default 95 % / 80 %. A claim whose interval covers
zero is inconclusive at this n, and this number says how large an effect it could have shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from benchmark.metrics import (
    METRICS,
    MetricsConfig,
    _check,
    _resampled,
    _summary,
    bootstrap_indices,
    compute_metrics,
    two_sided_p,
)

_DEFAULTS = MetricsConfig()


def aggregate_seeds(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, Any]:
    """Per metric: each seed's value, the mean and the sample std (ddof=1; 0.0 with one seed) over seeds.

    Returns ``{"n_seeds", "seeds", "metrics": {name: {"per_seed": {seed: value}, "mean", "std"}}}``.
    Every seed must report the same metrics: a metric missing for one seed is an error, not a smaller n.
    """
    if not per_seed:
        raise ValueError("no seeds to aggregate")
    seeds = sorted(per_seed)
    names = list(per_seed[seeds[0]])
    for seed in seeds:
        if set(per_seed[seed]) != set(names):
            raise ValueError(f"seed {seed} reports metrics {sorted(per_seed[seed])}, seed {seeds[0]} {sorted(names)}: "
                             f"every seed must report the same metrics")
    metrics = {}
    for name in names:
        values = np.array([float(per_seed[s][name]) for s in seeds])
        std = float(values.std(ddof=1)) if values.size > 1 else (0.0 if np.isfinite(values).all() else float("nan"))
        metrics[name] = {"per_seed": {s: float(per_seed[s][name]) for s in seeds}, "mean": float(values.mean()),
                         "std": std}
    return {"n_seeds": len(seeds), "seeds": seeds, "metrics": metrics}


def min_detectable_effect(std: float, ci_level: float = _DEFAULTS.ci_level, power: float = 0.8) -> float:
    """Smallest true difference a two-sided test at level 1 − ci_level detects with ``power`` (normal approx.).

    ``(z_{1−α/2} + z_{power}) · std``; 2.80 · std at 95 % and 80 % power. NaN for a NaN std.
    """
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    normal = NormalDist()
    return float((normal.inv_cdf(1 - (1 - ci_level) / 2) + normal.inv_cdf(power)) * std)


def seed_mean_resamples(labels: np.ndarray, by_seed: Mapping[int, np.ndarray], indices: np.ndarray,
                        metric: str = "auroc", threshold: float = _DEFAULTS.threshold) -> tuple[float, np.ndarray]:
    """The seed-mean ``metric`` on all patients and on each resample of ``indices`` ((resamples, n) patient
    indices, :func:`benchmark.metrics.bootstrap_indices`): every seed is scored on the same resamples.

    The building block of every pooled test: two methods (or any linear contrast of several, as the claim
    tests use) resampled with the same ``indices`` are paired patient by patient.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if not by_seed:
        raise ValueError("a method needs predictions of at least one seed")
    column = METRICS.index(metric)
    points, resampled = [], []
    for seed in sorted(by_seed):
        y, p = _check(labels, by_seed[seed])
        points.append(compute_metrics(y, p, threshold)[metric])
        resampled.append(_resampled(y, p, indices, threshold)[:, column])
    return float(np.mean(points)), np.mean(resampled, axis=0)


def pooled_paired_test(labels: np.ndarray, probs_a_by_seed: Mapping[int, np.ndarray],
                       probs_b_by_seed: Mapping[int, np.ndarray], metric: str = "auroc",
                       n_resamples: int = _DEFAULTS.bootstrap_resamples, seed: int = _DEFAULTS.seed,
                       ci_level: float = _DEFAULTS.ci_level, threshold: float = _DEFAULTS.threshold,
                       power: float = 0.8) -> dict[str, float]:
    """Paired bootstrap of A − B on the seed-mean ``metric``, every seed scored on the same resamples.

    Returns ``difference``, ``mean``, ``std``, ``ci_low``, ``ci_high``, ``p_value``, ``min_detectable_effect``
    and the seed counts ``n_seeds_a``, ``n_seeds_b`` (see the module docstring). Probabilities are aligned
    to ``labels``; unparsable answers must be resolved first (:func:`benchmark.metrics.resolve_unparsable`).
    """
    out = pooled_paired_contrast_test(labels, [probs_a_by_seed], [probs_b_by_seed], metric, n_resamples, seed,
                                      ci_level, threshold, power)
    out["n_seeds_a"], out["n_seeds_b"] = len(probs_a_by_seed), len(probs_b_by_seed)
    return out


def pooled_paired_contrast_test(labels: np.ndarray, plus: Sequence[Mapping[int, np.ndarray]],
                                minus: Sequence[Mapping[int, np.ndarray]], metric: str = "auroc",
                                n_resamples: int = _DEFAULTS.bootstrap_resamples, seed: int = _DEFAULTS.seed,
                                ci_level: float = _DEFAULTS.ci_level, threshold: float = _DEFAULTS.threshold,
                                power: float = 0.8) -> dict[str, float]:
    """Paired bootstrap of Σ ``plus`` − Σ ``minus``, each term a method's seed-mean ``metric`` (seed → probabilities
    aligned to ``labels``), every term scored on the same patient resamples (module docstring: contrasts).

    Returns ``difference`` (on all patients), ``mean``, ``std``, ``ci_low``, ``ci_high``, ``p_value`` and
    ``min_detectable_effect``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not plus or not minus:
        raise ValueError("a contrast needs at least one term on each side")
    y = np.asarray(labels).astype(np.int64)
    indices = bootstrap_indices(y, n_resamples, seed)
    plus_terms = [seed_mean_resamples(y, term, indices, metric, threshold) for term in plus]
    minus_terms = [seed_mean_resamples(y, term, indices, metric, threshold) for term in minus]
    point = sum(p for p, _ in plus_terms) - sum(p for p, _ in minus_terms)
    delta = sum(r for _, r in plus_terms) - sum(r for _, r in minus_terms)
    finite = delta[np.isfinite(delta)]
    out = _summary(finite, point, ci_level)
    out["difference"] = out.pop("point")
    out["p_value"] = two_sided_p(finite)
    out["min_detectable_effect"] = min_detectable_effect(out["std"], ci_level, power)
    return out


def pooled_paired_mean_test(labels: np.ndarray, values_a_by_seed: Mapping[int, np.ndarray],
                            values_b_by_seed: Mapping[int, np.ndarray], n_resamples: int = _DEFAULTS.bootstrap_resamples,
                            seed: int = _DEFAULTS.seed, ci_level: float = _DEFAULTS.ci_level,
                            power: float = 0.8) -> dict[str, float]:
    """Paired bootstrap of A − B on the seed-mean of a per-patient quantity (e.g. test-time alignment).

    Each patient's value is first averaged over the variant's seeds; the statistic is the mean over patients
    of A's minus B's, resampled on the same label-stratified patient resamples as
    :func:`pooled_paired_test` (so the two tests of one comparison share their resamples). Returns the keys of
    :func:`pooled_paired_test`.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    a = np.mean(np.vstack([np.asarray(v, float) for _, v in sorted(values_a_by_seed.items())]), axis=0)
    b = np.mean(np.vstack([np.asarray(v, float) for _, v in sorted(values_b_by_seed.items())]), axis=0)
    if a.shape != b.shape or a.shape != np.shape(labels):
        raise ValueError(f"per-patient values of {a.shape}, {b.shape} patients for {np.shape(labels)} labels")
    difference = a - b
    indices = bootstrap_indices(np.asarray(labels).astype(np.int64), n_resamples, seed)
    resampled = difference[indices].mean(axis=1)
    out = _summary(resampled, float(difference.mean()), ci_level)
    out["difference"] = out.pop("point")
    out["p_value"] = two_sided_p(resampled)
    out["min_detectable_effect"] = min_detectable_effect(out["std"], ci_level, power)
    out["n_seeds_a"], out["n_seeds_b"] = len(values_a_by_seed), len(values_b_by_seed)
    return out


def seed_subdir(seed: int) -> str:
    """The subfolder of a further seed's files (the first seed's lie in the folder itself)."""
    return f"seed{seed}"


def seed_block(per_seed: Mapping[int, Mapping[str, float]], seeds: Sequence[int],
               subdir=seed_subdir) -> dict[str, Any]:
    """The ``seeds`` block of a first seed's ``metrics.json``: :func:`aggregate_seeds` of ``per_seed`` plus where
    each seed's predictions are, relative to the file (the first seed's beside it, the others in ``subdir(seed)``)."""
    block = aggregate_seeds({seed: per_seed[seed] for seed in seeds})
    block["predictions"] = {str(seed): ("" if i == 0 else f"{subdir(seed)}/") + "predictions.csv"
                            for i, seed in enumerate(seeds)}
    return block


def seed_folders(folder: str | Path) -> dict[int, Path]:
    """Seed → the folder holding that seed's ``metrics.json`` and ``predictions.csv``, from the ``seeds`` block of
    ``folder/metrics.json`` (:func:`seed_block`); a file without the block is one run (its training seed, else 0)."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    paths = (metrics.get("seeds") or {}).get("predictions") or {}
    if not paths:
        return {int((metrics.get("training") or {}).get("seed", 0)): folder}
    return {int(seed): (folder / path).parent for seed, path in paths.items()}
