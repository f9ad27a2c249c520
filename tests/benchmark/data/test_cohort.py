import dataclasses

import numpy as np
import pytest

from benchmark.data.cohort import Cohort, CohortError


def test_round_trip(tmp_path, small_icu):
    small_icu.save(tmp_path / "c")
    loaded = Cohort.load(tmp_path / "c")
    assert loaded.feature_names == small_icu.feature_names
    assert loaded.tasks == small_icu.tasks
    np.testing.assert_array_equal(loaded.ids, small_icu.ids)
    np.testing.assert_allclose(loaded.raw, small_icu.raw.astype(np.float32), equal_nan=True)
    np.testing.assert_array_equal(loaded.salient, small_icu.salient)
    assert loaded.features[0].unit == small_icu.features[0].unit


def test_no_patient_in_two_splits(small_icu):
    seen = [set(small_icu.subset(s).ids.tolist()) for s in ("train", "val", "test")]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sum(map(len, seen)) == len(small_icu)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: {"labels": np.full_like(c.labels, 2)}, "labels"),
        (lambda c: {"ids": np.array(["same"] * len(c))}, "ids"),
        (lambda c: {"split": np.array(["holdout"] * len(c))}, "split"),
        (lambda c: {"values": np.full_like(c.values, np.nan)}, "values"),
        (lambda c: {"mask": ~c.mask}, "mask"),
        (lambda c: {"times": c.times[:, ::-1].copy()}, "times"),
        (lambda c: {"static": c.static[:, :1]}, "static"),
    ],
)
def test_validate_names_the_field(small_icu, change, field):
    broken = dataclasses.replace(small_icu, **change(small_icu))
    with pytest.raises(CohortError, match=f"field '{field}'"):
        broken.validate(source="cohorts/x")


def test_load_reports_missing_file(tmp_path):
    with pytest.raises(CohortError, match="meta.json: file not found"):
        Cohort.load(tmp_path)


def test_load_reports_version(tmp_path, small_icu):
    small_icu.save(tmp_path / "c")
    meta = (tmp_path / "c" / "meta.json")
    meta.write_text(meta.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(CohortError, match="format_version"):
        Cohort.load(tmp_path / "c")
