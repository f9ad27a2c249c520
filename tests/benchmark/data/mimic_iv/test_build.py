"""The cohort: stay selection and filter switches, the saved cohort, and logs that hold counts only."""

from __future__ import annotations

import logging

import numpy as np

from benchmark.data.cohort import Cohort
from benchmark.data.mimic_iv import build_mimic_iv
from tests.benchmark.data.mimic_iv.fake_mimic import EXPECTED, config, row


def test_stay_selection_and_filter_switches(mimic_root):
    last = build_mimic_iv(config(mimic_root, max_train_val=0, stay_selection="last"), "m")
    assert "30000002" in last.ids and "30000001" not in last.ids
    random_a = build_mimic_iv(config(mimic_root, max_train_val=0, stay_selection="random", seed=1), "m")
    random_b = build_mimic_iv(config(mimic_root, max_train_val=0, stay_selection="random", seed=1), "m")
    assert np.array_equal(random_a.ids, random_b.ids) and len(random_a) == 11
    kept = build_mimic_iv(config(mimic_root, max_train_val=0, one_stay_per_admission=False,
                                 exclude_transfers=False, min_age=0.0), "m")
    assert {"30000018", "30000020", "30000016"} <= set(kept.ids)
    assert kept.label("readmission")[row(kept, 30000018)] == 1  # bounce-back 2 days after ICU discharge


def test_cohort_round_trip_and_normalised_view(cohort, tmp_path):
    loaded = Cohort.load(cohort.save(tmp_path / "mimic_iv"))
    np.testing.assert_allclose(loaded.raw, cohort.raw, rtol=1e-6)  # stored as float32
    assert np.isfinite(loaded.values).all() and loaded.domain == "icu"
    assert loaded.provenance["input"] == "raw"
    assert loaded.provenance["item_ids_not_defined"]["chartevents_itemids_not_in_d_items"] == [224322]


def test_logs_hold_counts_not_patients(mimic_root, caplog):
    with caplog.at_level(logging.INFO, logger="eagrl"):
        build_mimic_iv(config(mimic_root), "m")
    assert "counts" in caplog.text and "224322" in caplog.text
    for identifier in [*map(str, EXPECTED), *(str(10000000 + k) for k in range(1, 16))]:
        assert identifier not in caplog.text
