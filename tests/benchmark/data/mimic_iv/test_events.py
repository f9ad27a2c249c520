"""Event aggregation: units, outliers, categories, the lab window, the last days and the derived GCS total."""

from __future__ import annotations

import numpy as np

from benchmark.data.mimic_iv import VARIABLES, build_mimic_iv
from tests.benchmark.data.mimic_iv.fake_mimic import config, row, series, times


def test_units_outliers_and_categories(everyone):
    stay = 30000008
    assert times(everyone, stay) == [0.0, 1.0, 2.0]
    assert series(everyone, stay, "Heart Rate")[0] == 85.0  # 1000 dropped, not clipped to a bound
    assert series(everyone, stay, "Temperature") == [27.0, 37.5, 37.2]
    assert series(everyone, stay, "Weight")[0] == 100.0
    assert series(everyone, stay, "Height")[0] == 177.8
    assert series(everyone, stay, "Fraction inspired oxygen")[:2] == [0.5, 0.4]
    assert series(everyone, stay, "Oxygen saturation")[0] == 95.0
    assert series(everyone, stay, "Capillary refill rate")[1:] == [0.0, 1.0]
    assert series(everyone, stay, "Glascow coma scale eye opening")[1:] == [3.0, 2.0]
    assert series(everyone, stay, "Glascow coma scale verbal response")[1] == 4.0
    assert series(everyone, stay, "Glascow coma scale motor response")[1] == 6.0
    total = series(everyone, stay, "Glascow coma scale total")
    assert total[1] == 13.0 and np.isnan(total[0]) and np.isnan(total[2])  # last complete triple of day 1
    kinds = {f.name: f.kind for f in everyone.features}
    assert all(kinds[n] == "categorical" for n in VARIABLES[:5])
    assert kinds["Glucose"] == "lab" and kinds["Heart Rate"] == "vital"
    units = {f.name: f.unit for f in everyone.features}
    assert units["Temperature"] == "degrees Celsius" and units["Glucose"] == "mg/dL"


def test_missing_items_and_lab_window(everyone, mimic_root):
    stay = 30000009
    assert times(everyone, stay) == [0.0, 1.0, 2.0]
    glucose = series(everyone, stay, "Glucose")
    assert np.isnan(glucose[0]) and glucose[1] == 140.0 and np.isnan(glucose[2])  # 300 before, 500 after the stay
    assert series(everyone, stay, "pH")[1] == 5.5  # the later urine pH (mimic3-benchmarks' map)
    assert np.isnan(series(everyone, stay, "Weight")).all()
    blood = build_mimic_iv(config(mimic_root, max_train_val=0, non_blood_items=False), "m")
    assert series(blood, stay, "pH")[1] == 7.31


def test_last_seven_days_and_day_aggregation(everyone, mimic_root):
    stay = 30000015
    assert everyone.n_visits[row(everyone, stay)] == 7
    assert times(everyone, stay) == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert series(everyone, stay, "Heart Rate") == [73.0, 74.0, 75.0, 76.0, 77.0, 78.0, 95.0]
    mean = build_mimic_iv(config(mimic_root, max_train_val=0, aggregate="mean"), "m")
    assert series(mean, stay, "Heart Rate")[-1] == 87.0
    short = build_mimic_iv(config(mimic_root, max_train_val=0, window_days=3), "m")
    assert times(short, stay) == [7.0, 8.0, 9.0]


def test_feature_subset_keeps_derived_gcs_total(mimic_root):
    c = build_mimic_iv(config(mimic_root, max_train_val=0, features=["Heart Rate", "Glascow coma scale total"]), "m")
    assert c.feature_names == ["Glascow coma scale total", "Heart Rate"]
    assert series(c, 30000008, "Glascow coma scale total")[1] == 13.0
