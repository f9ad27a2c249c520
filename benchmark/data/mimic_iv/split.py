"""The split of the paper group's ``preprocess_mimic.py``: stratified test draw, sampled train + validation.

See "Split" in :mod:`benchmark.data.mimic_iv`.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from benchmark.data.preprocess import stratified_split


def paper_split(labels: np.ndarray, n_test: int, max_train_val: int, val_fraction: float, seed: int) -> np.ndarray:
    """'test' / 'train' / 'val' per record, or '' for records not sampled (the paper group's procedure).

    The test draw is :func:`stratified_split`'s (their ``train_test_split(records, test_size=200,
    random_state=42, stratify=outcome)``). When more than ``max_train_val`` records remain, that many are
    sampled stratified (their second ``train_test_split``) and split 7/8 : 1/8 stratified; otherwise the
    rest is split as by :func:`stratified_split`.
    """
    labels = np.asarray(labels).astype(int)
    if max_train_val <= 0 or len(labels) - n_test <= max_train_val:
        return stratified_split(labels, n_test, val_fraction, seed)
    # The same first call as stratified_split (so the same test patients), keeping its shuffled rest as
    # the paper group's code does, so that the sample below is theirs too.
    rest, test = train_test_split(np.arange(len(labels)), test_size=n_test, random_state=seed,
                                  stratify=_stratify(labels))
    sampled = train_test_split(rest, test_size=max_train_val, random_state=seed, stratify=_stratify(labels[rest]))[1]
    train, val = train_test_split(sampled, test_size=val_fraction, random_state=seed,
                                  stratify=_stratify(labels[sampled]))
    out = np.full(len(labels), "", dtype=object)
    out[test], out[train], out[val] = "test", "train", "val"
    return out.astype(str)


def _stratify(labels: np.ndarray) -> np.ndarray | None:
    """Stratify by ``labels`` when every class has at least two members (sklearn's requirement)."""
    return labels if np.unique(labels, return_counts=True)[1].min() >= 2 else None
