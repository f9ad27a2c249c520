"""Test-time alignment and the mechanism block (benchmark/alignment.py)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.alignment import jaccard, mechanism_block, salient_sets


def test_jaccard_is_zero_without_named_features():
    assert jaccard([], ["pH"]) == 0.0
    assert jaccard(["pH", "Glucose"], ["pH"]) == pytest.approx(0.5)
    assert jaccard(["pH"], ["pH"]) == 1.0


def test_mechanism_block_by_hand():
    features = [["pH", "Glucose"], [], ["Heart Rate"]]
    truth = salient_sets(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], bool), ["pH", "Glucose", "Heart Rate"])
    assert truth == [["pH"], ["Glucose"], ["Heart Rate"]]
    block = mechanism_block(features, [True, False, True], [True, True, False], truth, ["a", "b", "c"],
                            {"a": ["Glucose"], "b": ["pH"], "c": ["pH", "Heart Rate"]})
    assert block["names_feature_rate"] == pytest.approx(2 / 3)
    assert block["parse_rate"] == pytest.approx(2 / 3)
    assert block["truncation_rate"] == pytest.approx(1 / 3)
    assert block["alignment_truth"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert block["alignment_expert"] == pytest.approx((0.5 + 0 + 0.5) / 3)


def test_unknown_patients_and_missing_truth():
    block = mechanism_block([["pH"]], [True], [True])
    assert block["alignment_truth"] is None and block["alignment_expert"] is None
    with pytest.raises(ValueError, match="another cohort"):
        mechanism_block([["pH"]], [True], [True], ids=["x"], expert_top_k={"y": ["pH"]})


def test_per_patient_alignment_holds_the_values_the_block_averages(tmp_path):
    from benchmark.alignment import ALIGNMENT_COLUMNS, per_patient_alignment, read_alignment

    features, ids = [["a", "b"], [], ["c"]], ["p2", "p1", "p3"]
    truth, expert = [["a"], ["b"], ["c", "d"]], {"p1": ["a"], "p2": ["b", "c"], "p3": ["c"]}
    frame = per_patient_alignment(features, ids, truth, expert)
    assert list(frame.columns) == list(ALIGNMENT_COLUMNS)
    assert frame["alignment_truth"].tolist() == [0.5, 0.0, 0.5] and frame["alignment_expert"].tolist() == [1 / 3, 0.0, 1.0]
    block = mechanism_block(features, [True] * 3, [True] * 3, truth, ids, expert)
    assert frame["alignment_expert"].mean() == pytest.approx(block["alignment_expert"])
    assert per_patient_alignment(features, ids)["alignment_truth"].isna().all()
    frame.to_csv(tmp_path / "alignment.csv", index=False)
    assert read_alignment(tmp_path / "alignment.csv")["id"].tolist() == ["p1", "p2", "p3"]
    frame.drop(columns="alignment_expert").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['alignment_expert'\]"):
        read_alignment(tmp_path / "bad.csv")
