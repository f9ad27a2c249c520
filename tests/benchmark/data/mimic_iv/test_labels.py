"""Labels of every rule, the readmission window and anchor, the task subset, and the stay filters."""

from __future__ import annotations

import numpy as np

from benchmark.data.mimic_iv import build_mimic_iv
from tests.benchmark.data.mimic_iv.fake_mimic import ELIGIBLE, EXPECTED, config, row


def test_labels_of_every_rule(mimic_root):
    cohorts = [build_mimic_iv(config(mimic_root, max_train_val=0, stay_selection=how, min_time_points=1,
                                     n_test=2), "m") for how in ("first", "last")]
    seen = {}
    for c in cohorts:
        for stay_id, (mortality, readmission) in zip(c.ids, c.labels, strict=True):
            seen[int(stay_id)] = (int(mortality), int(readmission))
    assert {stay: seen[stay] for stay in EXPECTED} == EXPECTED


def test_readmission_window_and_anchor_are_configurable(mimic_root):
    # 45-day window: the stay whose next ICU stay came 42 days later is now readmitted, and so is the
    # patient who died 34.7 days after discharge.
    c = build_mimic_iv(config(mimic_root, max_train_val=0, readmission_days=45.0), "m")
    assert c.label("readmission")[row(c, 30000003)] == 1
    assert c.label("readmission")[row(c, 30000014)] == 1
    # From the hospital discharge (half a day after the ICU one), 30 days + 1 hour after ICU discharge is inside.
    c = build_mimic_iv(config(mimic_root, max_train_val=0, readmission_anchor="hospital_dischtime"), "m")
    assert c.label("readmission")[row(c, 30000012)] == 1
    assert c.label("readmission")[row(c, 30000001)] == 1 and c.label("readmission")[row(c, 30000003)] == 0


def test_tasks_subset_and_order(mimic_root):
    c = build_mimic_iv(config(mimic_root, tasks=["readmission"]), "m")
    assert c.tasks == ["readmission"] and c.labels.shape[1] == 1


def test_stay_filters_and_patients(everyone):
    # Excluded: one time point (S5), age 16 (S12), care-unit transfer (S13), two stays in one admission (S15).
    assert sorted(int(i) for i in everyone.ids) == ELIGIBLE
    counts = everyone.provenance["counts"]
    assert counts["icu_stays"] == 20
    assert counts["without_care_unit_transfer"] == 19
    assert counts["single_icu_stay_admissions"] == 17
    assert counts["age_at_least_18"] == 16
    assert counts["with_at_least_2_time_points"] == 12  # S1 has two eligible stays
    assert counts["patients"] == 11
    np.testing.assert_allclose(everyone.static[row(everyone, 30000003)], [73.0, 0.0])  # age 70 + 3 years, female
    np.testing.assert_allclose(everyone.static[row(everyone, 30000001)], [60.0, 1.0])
