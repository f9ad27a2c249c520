"""Shared preprocessing for every source: patient-level splits and the DL view of the values.

These are the steps of the paper group's released preprocessing, applied the same way to every cohort:

* **Split** — a fixed number of test patients stratified by outcome (seed 42 in the paper), then the rest
  split 7/8 train and 1/8 validation, stratified again.
* **Normalise** — z-scores whose mean and standard deviation come from *train* values only, computed on
  values trimmed to their 5–95 % quantiles so that a few outliers (or unit errors) do not set the scale.
* **Impute** — last observation carried forward within a patient, then the train median for values never
  observed; padding visits are 0. The LLM view (``raw``) keeps NaN.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from benchmark.config import ConfigError
from benchmark.data.cohort import NormalisationStats


def check_test_size(n_test: int, n: int) -> None:
    """A test split must leave patients for train and validation: otherwise one error naming the key and the fix."""
    if not 0 < n_test < n:
        raise ConfigError(f"n_test = {n_test}: the cohort has {n} patients, so n_test must be between 1 and {n - 1} "
                          f"(train and validation need the rest); lower datasets.<name>.n_test")


def stratified_split(labels: np.ndarray, n_test: int | float, val_fraction: float, seed: int) -> np.ndarray:
    """Assign 'train' / 'val' / 'test' per patient, stratified by ``labels``.

    ``n_test`` is a patient count (int) or a fraction (float < 1); ``val_fraction`` is the share of the
    remaining patients that goes to validation (1/8 in the paper group's code).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if isinstance(n_test, float) and n_test < 1:
        n_test = max(1, int(round(n_test * n)))
    n_test = int(n_test)
    check_test_size(n_test, n)
    positions = np.arange(n)
    stratify = labels if np.bincount(labels.astype(int)).min() >= 2 else None
    rest, test = train_test_split(positions, test_size=n_test, random_state=seed, stratify=stratify)
    rest_labels = labels[rest]
    stratify = rest_labels if np.bincount(rest_labels.astype(int)).min() >= 2 else None
    train, val = train_test_split(rest, test_size=val_fraction, random_state=seed, stratify=stratify)
    split = np.empty(n, dtype=object)
    split[train], split[val], split[test] = "train", "val", "test"
    return split.astype(str)


def fit_normalisation(raw: np.ndarray, train: np.ndarray, trim: tuple[float, float] = (0.05, 0.95)
                      ) -> NormalisationStats:
    """Mean / std of the trimmed train values and the train median, per feature.

    A feature never observed in train gets mean 0, std 1, median 0 (it stays 0 after imputation); a
    constant feature gets std 1 so that z-scores stay finite.
    """
    d = raw.shape[-1]
    values = raw[train].reshape(-1, d)
    mean, std, median = [], [], []
    for j in range(d):
        column = values[:, j]
        column = column[~np.isnan(column)]
        if column.size == 0:
            mean.append(0.0), std.append(1.0), median.append(0.0)
            continue
        low, high = np.quantile(column, trim)
        kept = column[(column >= low) & (column <= high)]
        if kept.size == 0:
            kept = column
        sd = float(kept.std())
        mean.append(float(kept.mean()))
        std.append(sd if sd > 1e-8 else 1.0)
        median.append(float(np.median(column)))
    return NormalisationStats(mean=mean, std=std, median=median, trim_quantiles=tuple(trim))


def normalise_and_impute(raw: np.ndarray, n_visits: np.ndarray, stats: NormalisationStats) -> np.ndarray:
    """The DL view: z-score, carry the last observation forward, fill the rest with the train median."""
    mean = np.asarray(stats.mean)
    std = np.asarray(stats.std)
    fill = (np.asarray(stats.median) - mean) / std
    z = (raw - mean) / std
    n, T, d = raw.shape
    out = np.zeros((n, T, d), dtype=np.float32)
    carried = np.tile(fill, (n, 1))
    for t in range(T):
        observed = ~np.isnan(z[:, t])
        carried = np.where(observed, z[:, t], carried)
        out[:, t] = carried
    real = np.arange(T)[None, :] < n_visits[:, None]
    out[~real] = 0.0
    return out
