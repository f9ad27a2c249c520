"""The embedded synthetic EHR generator: the default data set, deterministic given a seed.

Two domains ship: ``icu`` (MIMIC-IV's 17 mimic3-benchmark variables + age and sex; in-hospital mortality
and 30-day readmission) and ``ward`` (a TJH-style COVID-19 lab panel, partly overlapping with ``icu``
through glucose and pH; mortality). Feature physiology is a data file,
``resources/synthetic_physiology.yaml``.

The latent-risk process (what the labels come from)
----------------------------------------------------
For every patient *i*:

1. Demographics: age ~ N(65, 15) clipped to [18, 95]; sex male with probability 0.55.
2. Illness severity ``s_i`` ~ Gamma(2, ``severity_scale``) and a trend ``g_i`` ~ N(0, ``trend_sd``)
   (> 0: worsening over the stay, < 0: recovering).
3. A **salient set** ``S_i``: ``k_i`` ∈ [``salient_min``, ``salient_max``] features drawn without
   replacement from the selected risk-eligible features, with the ``weight`` of the physiology table.
   This set is the ground truth of *which features matter for this patient*; it is saved in the cohort
   (``salient``) so that later stages can measure whether experts and LLMs attend to it.
4. Derangement of a salient feature *j* at visit *t* (position ``r = t / (n_i - 1)`` in the stay):
   ``dev_ij(t) = s_i · u_ij · max(0, 1 + g_i · (r − 0.5))`` with ``u_ij`` ~ U(0.6, 1.4). Non-salient
   features are healthy except for **distractors**: with probability ``distractor_rate`` a non-salient
   feature gets one transient derangement of size |N(0, ``distractor_scale``)| at a single visit — it looks
   abnormal but carries no risk, so "flag every abnormal value" is not a perfect strategy.
5. Values: ``baseline + direction · scale · dev + noise``, clipped to physiological bounds, rounded;
   log-normal for skewed labs. Missing with the feature's base rate, less often for sicker patients and
   for salient features (clinicians measure what worries them); every visit keeps at least one value.
6. Mortality logit: ``η = a·mean_{j∈S_i} dev_ij(last) + b·s_i·g_i + c·(age − 65)/15 + N(0, σ_u)``, with
   the intercept solved so that the expected prevalence equals ``prevalence.mortality``; the label is a
   Bernoulli draw of ``sigmoid(η)``. ``σ_u`` (``unexplained_sd``) is risk the record does not show, which
   keeps the ceiling below 1.
7. 30-day readmission (``icu``): a patient who dies in hospital counts as readmitted (death within 30 days
   of discharge, as in the MIMIC-IV label rule); survivors are readmitted with a logit driven by the
   derangement left at discharge and by age, its intercept solved for ``prevalence.readmission`` overall.

``true_risk`` (the probability of step 6/7) is kept: its AUROC is the ceiling any model can reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import yaml
from scipy.optimize import brentq
from scipy.special import expit

from benchmark.config import ConfigError, option
from benchmark.data.cohort import Cohort, FeatureSpec
from benchmark.data.metadata import reference_range_of, unit_of
from benchmark.data.preprocess import fit_normalisation, normalise_and_impute, stratified_split

DOMAIN_TASKS = {"icu": ["mortality", "readmission"], "ward": ["mortality"]}
DOMAIN_METADATA_SOURCE = {"icu": "mimic_iv", "ward": "tjh"}
STATIC_FEATURES = [
    FeatureSpec("Age", "years", "/", "static"),
    FeatureSpec("Sex", "1 = male, 0 = female", "/", "static"),
]


@dataclass
class SyntheticConfig:
    """Settings of one synthetic cohort (a ``datasets.<name>`` entry of params.yaml with source: synthetic)."""

    source: str = option("synthetic", help="Always 'synthetic' for this generator.")
    domain: str = option("icu", help="'icu' (MIMIC-IV-like vitals, mortality + readmission) or 'ward' (TJH-like labs, mortality).")
    n_patients: int = option(800, minimum=2, help="Patients generated before the split.")
    min_visits: int = option(2, help="Fewest visits per patient.")
    max_visits: int = option(4, help="Most visits per patient (prompt length grows with it).")
    mean_gap_days: float = option(1.0, help="Mean time between visits in days (exponential gaps: irregular sampling).")
    features: list[str] = option([], help="Feature subset shown to models, by name; empty = every feature of the domain.")
    prevalence: dict[str, float] = option({}, help="Target prevalence per task, e.g. {mortality: 0.2}; tasks left out use 0.2 (mortality) / 0.3 (readmission).")
    salient_min: int = option(2, help="Fewest salient (risk-driving) features per patient.")
    salient_max: int = option(3, help="Most salient features per patient.")
    severity_scale: float = option(0.6, help="Scale of the Gamma(2, .) illness severity.")
    trend_sd: float = option(0.8, help="Standard deviation of the per-patient trend (worsening > 0 > recovering).")
    distractor_rate: float = option(0.2, help="Chance that a non-salient feature gets one transient, risk-free derangement.")
    distractor_scale: float = option(1.0, help="Size of distractor derangements (in severity units).")
    unexplained_sd: float = option(0.8, help="Risk not visible in the record (logit noise); lowers the ceiling AUROC.")
    risk_weight: float = option(1.2, help="Logit weight a of the salient derangement at the last visit.")
    trend_weight: float = option(2.5, help="Logit weight b of severity x trend: how much the course of the stay (not only its last values) carries risk; this is what a sequence model can read and a last-value model cannot.")
    age_weight: float = option(0.4, help="Logit weight c of standardised age.")
    n_test: int = option(200, minimum=1, help="Test patients, stratified by the first task's label.")
    val_fraction: float = option(0.125, minimum=0.0, maximum=0.9, help="Share of the non-test patients used for validation (1/8 as in the paper's code).")
    seed: int = option(42, help="Seed of the generator and of the split.")


@cache
def physiology(domain: str) -> dict[str, dict[str, Any]]:
    """The physiology table of one domain (see ``resources/synthetic_physiology.yaml``)."""
    text = resources.files("benchmark.data").joinpath("resources/synthetic_physiology.yaml").read_text("utf-8")
    table = yaml.safe_load(text)
    if domain not in table:
        raise ConfigError(f"synthetic domain '{domain}' is unknown; choose one of {sorted(table)}")
    return table[domain]


def _solve_intercept(logits: np.ndarray, prevalence: float) -> float:
    """Intercept such that the mean of sigmoid(logits + intercept) is the target prevalence."""
    return brentq(lambda b: expit(logits + b).mean() - prevalence, -30.0, 30.0)


def _check(config: SyntheticConfig, where: str) -> tuple[list[str], dict[str, float]]:
    table = physiology(config.domain)
    names = list(config.features) or list(table)
    unknown = [name for name in names if name not in table]
    if unknown:
        raise ConfigError(f"{where}.features: unknown feature(s) {unknown} for domain '{config.domain}'; "
                          f"choose from {list(table)}")
    eligible = [name for name in names if table[name]["direction"] != 0]
    if len(eligible) < config.salient_max:
        raise ConfigError(f"{where}.salient_max={config.salient_max} exceeds the {len(eligible)} risk-eligible "
                          f"features selected; select more features or lower salient_max")
    if not 1 <= config.salient_min <= config.salient_max:
        raise ConfigError(f"{where}: need 1 <= salient_min <= salient_max")
    if not 1 <= config.min_visits <= config.max_visits:
        raise ConfigError(f"{where}: need 1 <= min_visits <= max_visits")
    tasks = DOMAIN_TASKS[config.domain]
    defaults = {"mortality": 0.2, "readmission": 0.3}
    unknown_tasks = sorted(set(config.prevalence) - set(tasks))
    if unknown_tasks:
        raise ConfigError(f"{where}.prevalence: task(s) {unknown_tasks} do not exist in domain '{config.domain}' ({tasks})")
    prevalence = {task: float(config.prevalence.get(task, defaults[task])) for task in tasks}
    for task, value in prevalence.items():
        if not 0.01 <= value <= 0.9:
            raise ConfigError(f"{where}.prevalence.{task}={value}: choose a prevalence in [0.01, 0.9]")
    if "readmission" in prevalence and prevalence["readmission"] <= prevalence["mortality"]:
        raise ConfigError(f"{where}.prevalence: readmission counts in-hospital deaths, so it must exceed mortality")
    return names, prevalence


def generate(config: SyntheticConfig, name: str = "synthetic", where: str = "params.yaml") -> Cohort:
    """Generate a cohort following the latent-risk process of the module docstring."""
    names, prevalence = _check(config, where)
    table = physiology(config.domain)
    all_names = list(table)
    rng = np.random.default_rng(config.seed)
    n, T, D = config.n_patients, config.max_visits, len(all_names)
    index = {feature: j for j, feature in enumerate(all_names)}

    age = np.clip(rng.normal(65, 15, n), 18, 95).round()
    male = (rng.random(n) < 0.55).astype(float)
    severity = rng.gamma(2.0, config.severity_scale, n)
    trend = rng.normal(0.0, config.trend_sd, n)
    n_visits = rng.integers(config.min_visits, config.max_visits + 1, n)
    gaps = rng.exponential(config.mean_gap_days, (n, T)) + 0.1
    times = np.cumsum(gaps, axis=1) - gaps[:, :1] + rng.uniform(0, 0.5, (n, 1))
    real = np.arange(T)[None, :] < n_visits[:, None]
    times = np.where(real, times.round(2), np.nan)

    # Salient sets among the selected, risk-eligible features.
    eligible = [feature for feature in names if table[feature]["direction"] != 0]
    weights = np.array([table[feature]["weight"] for feature in eligible], dtype=float)
    salient = np.zeros((n, D), dtype=bool)
    for i in range(n):
        k = rng.integers(config.salient_min, config.salient_max + 1)
        chosen = rng.choice(len(eligible), size=k, replace=False, p=weights / weights.sum())
        salient[i, [index[eligible[c]] for c in chosen]] = True

    # Derangement trajectories: persistent on salient features, one transient blip on distractors.
    position = np.where(real, np.arange(T)[None, :] / np.maximum(n_visits[:, None] - 1, 1), 0.0)
    course = np.maximum(0.0, 1.0 + trend[:, None] * (position - 0.5))  # (n, T)
    intensity = rng.uniform(0.6, 1.4, (n, D))
    deviation = severity[:, None, None] * intensity[:, None, :] * course[:, :, None] * salient[:, None, :]
    distract = (rng.random((n, D)) < config.distractor_rate) & ~salient
    blip_visit = (rng.random((n, D)) * n_visits[:, None]).astype(int)
    blip_size = np.abs(rng.normal(0.0, config.distractor_scale, (n, D)))
    for t in range(T):
        deviation[:, t, :] += (distract & (blip_visit == t)) * blip_size
    deviation *= real[:, :, None]

    raw = _values(table, all_names, deviation, rng, real)
    raw = _missingness(table, all_names, raw, salient, severity, rng, real)

    # Labels from the latent risk at the last visit.
    last = np.clip(n_visits - 1, 0, None)
    last_dev = deviation[np.arange(n), last]  # (n, D)
    salient_dev = (last_dev * salient).sum(1) / salient.sum(1)
    age_z = (age - 65.0) / 15.0
    logit = (config.risk_weight * salient_dev + config.trend_weight * severity * trend + config.age_weight * age_z
             + rng.normal(0.0, config.unexplained_sd, n))
    p_mortality = expit(logit + _solve_intercept(logit, prevalence["mortality"]))
    died = rng.random(n) < p_mortality
    labels = [died]
    risks = [p_mortality]
    if "readmission" in prevalence:
        readmit_logit = (1.2 * salient_dev + 0.6 * age_z + 0.5 * severity * np.maximum(trend, 0)
                         + rng.normal(0.0, config.unexplained_sd, n))
        target = (prevalence["readmission"] - prevalence["mortality"]) / (1 - prevalence["mortality"])
        p_event = expit(readmit_logit + _solve_intercept(readmit_logit, target))
        readmitted = died | (rng.random(n) < p_event)
        labels.append(readmitted)
        risks.append(p_mortality + (1 - p_mortality) * p_event)

    # Keep the selected features only; salient sets were drawn among them, so nothing is lost.
    keep = [index[feature] for feature in names]
    raw, salient = raw[:, :, keep], salient[:, keep]
    labels_array = np.stack(labels, 1).astype(np.int8)
    split = stratified_split(labels_array[:, 0], config.n_test, config.val_fraction, config.seed)
    stats = fit_normalisation(raw, split == "train")
    source = DOMAIN_METADATA_SOURCE[config.domain]
    features = [FeatureSpec(feature, unit_of(source, feature), reference_range_of(source, feature),
                            table[feature]["kind"]) for feature in names]
    width = len(str(n))
    return Cohort(
        name=name,
        domain=config.domain,
        features=features,
        static_features=list(STATIC_FEATURES),
        tasks=list(prevalence),
        ids=np.array([f"{config.domain}-{i:0{width}d}" for i in range(n)]),
        n_visits=n_visits.astype(np.int64),
        times=times,
        raw=raw,
        values=normalise_and_impute(raw, n_visits, stats),
        mask=~np.isnan(raw),
        static=np.stack([age, male], 1),
        labels=labels_array,
        split=split,
        normalisation=stats,
        salient=salient,
        true_risk=np.stack(risks, 1),
        provenance={"source": "synthetic", "generator": "benchmark.data.synthetic", "seed": config.seed},
    )


def _values(table: dict[str, dict[str, Any]], names: list[str], deviation: np.ndarray,
            rng: np.random.Generator, real: np.ndarray) -> np.ndarray:
    """Physiological values from baselines, derangements and visit noise (before missingness)."""
    n, T, D = deviation.shape
    raw = np.full((n, T, D), np.nan)
    for j, feature in enumerate(names):
        spec = table[feature]
        if spec.get("group") == "gcs" and feature.endswith("total"):
            continue  # derived below from the three components
        baseline = spec["center"] + rng.normal(0.0, spec["sd"], (n, 1)) if spec["sd"] else np.full((n, 1), spec["center"])
        if spec["kind"] == "categorical" and spec["high"] - spec["low"] == 1:
            value = (rng.random((n, T)) < expit(-3.0 + 2.5 * deviation[:, :, j])).astype(float)
        else:
            value = (baseline + spec["direction"] * spec["scale"] * deviation[:, :, j]
                     + rng.normal(0.0, spec["noise"], (n, T)))
            if spec.get("transform") == "log":
                value = np.exp(value)
        raw[:, :, j] = np.round(np.clip(value, spec["low"], spec["high"]), spec["decimals"])
    totals = [j for j, f in enumerate(names) if table[f].get("group") == "gcs" and f.endswith("total")]
    if totals:
        total = totals[0]
        parts = [j for j, f in enumerate(names) if table[f].get("group") == "gcs" and j != total]
        # A salient total deranges the components (which then sum to a low total).
        for j in parts:
            spec = table[names[j]]
            shifted = raw[:, :, j] - spec["scale"] * deviation[:, :, total] / len(parts)
            raw[:, :, j] = np.round(np.clip(shifted, spec["low"], spec["high"]))
        raw[:, :, total] = raw[:, :, parts].sum(axis=2)
    raw[~real] = np.nan
    return raw


def _missingness(table: dict[str, dict[str, Any]], names: list[str], raw: np.ndarray, salient: np.ndarray,
                 severity: np.ndarray, rng: np.random.Generator, real: np.ndarray) -> np.ndarray:
    """Informative missingness: sicker patients and salient features are measured more often."""
    n, T, D = raw.shape
    base = np.array([table[f]["missing"] for f in names])
    rate = base[None, None, :] * (1.0 - 0.25 * np.minimum(severity, 2.0)[:, None, None] / 2.0)
    rate = np.where(salient[:, None, :], rate * 0.6, rate)
    missing = rng.random((n, T, D)) < rate
    gcs = [j for j, f in enumerate(names) if table[f].get("group") == "gcs"]
    if gcs:  # one GCS assessment: its parts are charted together or not at all
        missing[:, :, gcs] = missing[:, :, gcs[:1]]
    out = np.where(missing, np.nan, raw)
    empty = real & np.isnan(out).all(axis=2)
    for i, t in zip(*np.nonzero(empty), strict=True):  # every real visit keeps at least one value
        j = int(np.argmin(base))
        out[i, t, j] = raw[i, t, j]
    return out
