"""The ranked-feature JSONL files EAG-RL reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from methods.experts.importance import importance_records, read_importance, write_importance


def test_records_rank_all_features_in_descending_order(small_icu, tmp_path):
    part = small_icu.select(np.arange(5))
    d = len(part.features)
    weights = np.tile(np.arange(1, d + 1, dtype=float), (5, 1))
    weights /= weights.sum(1, keepdims=True)
    records = importance_records(part, "mortality", np.linspace(0.1, 0.5, 5), weights, top_k=3)
    first = records[0]
    assert first["id"] == str(part.ids[0]) and first["task"] == "mortality"
    assert first["label"] == {"mortality": int(part.labels[0, 0]), "readmission": int(part.labels[0, 1])}
    names = [name for name, _ in first["ranking"]]
    assert names == part.feature_names[::-1]
    scores = [score for _, score in first["ranking"]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert first["top_k"] == names[:3]
    path = write_importance(tmp_path / "importance_test.jsonl", records)
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[2])["probability"] == pytest.approx(0.3)
    assert read_importance(path) == records


def test_ties_keep_the_cohort_feature_order(small_icu):
    part = small_icu.select(np.arange(1))
    d = len(part.features)
    records = importance_records(part, "mortality", np.array([0.2]), np.full((1, d), 1.0 / d), top_k=2)
    assert records[0]["top_k"] == part.feature_names[:2]


def test_wrong_shape_and_bad_lines_are_reported(small_icu, tmp_path):
    part = small_icu.select(np.arange(3))
    with pytest.raises(ValueError, match="expected"):
        importance_records(part, "mortality", np.zeros(3), np.zeros((3, 2)), top_k=3)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "ranking": [], "top_k": []}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        read_importance(bad)
