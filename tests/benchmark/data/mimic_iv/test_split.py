"""The split mirrors the paper group's train_test_split calls."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from benchmark.data.mimic_iv.split import paper_split
from benchmark.data.preprocess import stratified_split
from tests.benchmark.data.mimic_iv.fake_mimic import ELIGIBLE, EXPECTED


def test_splits_mirror_the_paper_groups_calls(cohort, everyone):
    ids = np.array(sorted(ELIGIBLE))
    y = np.array([EXPECTED[i][0] for i in ids])
    # preprocess_mimic.py: 200 (here 2) test records stratified by Outcome, 10,000 (here 6) sampled from
    # the rest, then 1/8 (here 1/4) of those for validation, all with random_state=42.
    # (With real sizes every class has >= 2 members; here a class with one member is not stratified, as
    # sklearn requires.)
    def strata(part):
        labels = np.array([EXPECTED[i][0] for i in part])
        return labels if np.bincount(labels).min() >= 2 else None

    rest, test = train_test_split(ids, test_size=2, random_state=42, stratify=y)
    sampled = train_test_split(rest, test_size=6, random_state=42, stratify=strata(rest))[1]
    train, val = train_test_split(sampled, test_size=0.25, random_state=42, stratify=strata(sampled))
    got = {s: sorted(int(i) for i in cohort.ids[cohort.split == s]) for s in ("train", "val", "test")}
    assert got == {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
    assert cohort.provenance["counts"]["not_sampled"] == 3
    # Without sampling the test patients are the same, and everybody else is train or val.
    assert sorted(int(i) for i in everyone.ids[everyone.split == "test"]) == sorted(test)
    assert (everyone.split == "val").sum() == 3 and (everyone.split == "train").sum() == 6


def test_paper_split_counts_and_stratification():
    labels = np.array([1] * 300 + [0] * 2700)
    split = paper_split(labels, 200, 1000, 0.125, seed=42)
    assert [(split == s).sum() for s in ("test", "train", "val", "")] == [200, 875, 125, 1800]
    assert labels[split == "test"].sum() == 20 and labels[split == "val"].sum() == 12
    assert np.array_equal(split == "test", stratified_split(labels, 200, 0.125, 42) == "test")
    assert np.array_equal(split, paper_split(labels, 200, 1000, 0.125, seed=42))
