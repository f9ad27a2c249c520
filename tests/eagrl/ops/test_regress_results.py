"""The results files of make regress, flattened to numbers keyed by their rows' identity."""

from __future__ import annotations

from eagrl.ops.regress_results import flatten

COHORTS = [{"dataset": "synthetic_icu", "task": "mortality", "split": "test", "patients": 200, "prevalence": 0.2},
           {"dataset": "synthetic_icu", "task": "mortality", "split": "train", "patients": 525, "prevalence": 0.2}]


def test_flatten_keys_rows_by_their_identity():
    flat = flatten(COHORTS)
    assert flat["synthetic_icu,mortality,test/patients"] == 200
    assert flatten({"a": {"b": [1, 2]}, "s": "text", "flag": True}) == {"a/b/[0]": 1.0, "a/b/[1]": 2.0}
