"""MIMIC-IV extraction on a tiny fixture in the real v2.2 schema, written by the tests themselves.

The fixture (gzipped CSVs under tmp_path/hosp and tmp_path/icu) holds 15 patients and 20 ICU stays, each
built to exercise one rule; ``EXPECTED`` lists the labels every labelled stay must get. Times are offsets
(days, hours) from 2150-01-01 08:00, the ICU admission of most stays.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from benchmark.config import ConfigError, from_mapping
from benchmark.data.cohort import Cohort
from benchmark.data.mimic_iv import VARIABLES, MimicIVConfig, build_mimic_iv, check_input
from benchmark.data.mimic_iv.config import MimicIVError
from benchmark.data.mimic_iv.items import load_item_map
from benchmark.data.mimic_iv.split import paper_split
from benchmark.data.preprocess import stratified_split
from benchmark.data.sources import build_cohort

T0 = pd.Timestamp("2150-01-01 08:00:00")

HEADERS = {  # MIMIC-IV v2.2, in the official column order
    "hosp/patients": "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod",
    "hosp/admissions": ("subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admit_provider_id,"
                        "admission_location,discharge_location,insurance,language,marital_status,race,edregtime,"
                        "edouttime,hospital_expire_flag"),
    "icu/icustays": "subject_id,hadm_id,stay_id,first_careunit,last_careunit,intime,outtime,los",
    "icu/chartevents": ("subject_id,hadm_id,stay_id,caregiver_id,charttime,storetime,itemid,value,valuenum,"
                        "valueuom,warning"),
    "hosp/labevents": ("labevent_id,subject_id,hadm_id,specimen_id,itemid,order_provider_id,charttime,storetime,"
                       "value,valuenum,valueuom,ref_range_lower,ref_range_upper,flag,priority,comments"),
    "icu/d_items": "itemid,label,abbreviation,linksto,category,unitname,param_type,lownormalvalue,highnormalvalue",
    "hosp/d_labitems": "itemid,label,fluid,category",
}
MICU = "Medical Intensive Care Unit (MICU)"

# stay -> (mortality, readmission), for every stay that passes the stay filters.
EXPECTED = {
    30000001: (0, 1),  # another ICU stay 16 days after discharge
    30000002: (0, 0),  # that later stay: nothing after it
    30000003: (0, 0),  # next ICU stay 42 days after discharge
    30000005: (0, 1),  # discharged alive, died (patients.dod) ~20 days later, no further stay
    30000006: (1, 1),  # died in the ICU (in-hospital death counts as death within 30 days)
    30000007: (0, 0),  # one time point only (not eligible)
    30000008: (0, 0),  # units and outliers
    30000009: (0, 0),  # missing items, labs outside the stay
    30000010: (0, 1),  # next ICU stay exactly 30 days after discharge: inside (0, 30]
    30000012: (0, 0),  # next ICU stay 30 days + 1 hour after discharge: outside
    30000014: (0, 0),  # died 34.7 days after discharge: outside
    30000015: (0, 0),  # 9.5-day stay: window of the last 7 days
    30000017: (1, 1),  # died in hospital 3 days after ICU discharge
}
ELIGIBLE = [30000001, 30000003, 30000005, 30000006, 30000008, 30000009, 30000010, 30000012, 30000014,
            30000015, 30000017]  # first eligible stay of each eligible patient


def ts(days: float, hours: float = 0.0) -> str:
    return (T0 + pd.Timedelta(days=days, hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


class Fixture:
    """Rows of the seven tables, written as gzipped CSVs in the MIMIC-IV layout."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {table: [] for table in HEADERS}
        self._ids = {"hadm": 20000000, "lab": 1}

    def patient(self, subject: int, gender: str, age: int, year: int = 2150, dod: str = "") -> None:
        self.rows["hosp/patients"].append({"subject_id": subject, "gender": gender, "anchor_age": age,
                                           "anchor_year": year, "anchor_year_group": "2017 - 2019", "dod": dod})

    def admission(self, subject: int, admit: str, disch: str, died: str = "") -> int:
        self._ids["hadm"] += 1
        self.rows["hosp/admissions"].append({
            "subject_id": subject, "hadm_id": self._ids["hadm"], "admittime": admit, "dischtime": disch,
            "deathtime": died, "admission_type": "EW EMER.", "admission_location": "EMERGENCY ROOM",
            "discharge_location": "DIED" if died else "HOME", "insurance": "Other", "language": "ENGLISH",
            "marital_status": "SINGLE", "race": "WHITE", "hospital_expire_flag": int(bool(died))})
        return self._ids["hadm"]

    def stay(self, subject: int, hadm: int, stay: int, intime: str, outtime: str, last_unit: str = MICU) -> None:
        los = (pd.Timestamp(outtime) - pd.Timestamp(intime)) / pd.Timedelta(days=1)
        self.rows["icu/icustays"].append({"subject_id": subject, "hadm_id": hadm, "stay_id": stay,
                                          "first_careunit": MICU, "last_careunit": last_unit, "intime": intime,
                                          "outtime": outtime, "los": los})

    def chart(self, subject: int, stay: int, time: str, itemid: int, value, valuenum="") -> None:
        if valuenum == "" and isinstance(value, (int, float)):
            valuenum = value
        self.rows["icu/chartevents"].append({"subject_id": subject, "hadm_id": "", "stay_id": stay,
                                             "caregiver_id": 1, "charttime": time, "storetime": time,
                                             "itemid": itemid, "value": value, "valuenum": valuenum,
                                             "valueuom": "", "warning": 0})

    def lab(self, subject: int, time: str, itemid: int, value, valuenum="") -> None:
        if valuenum == "" and isinstance(value, (int, float)):
            valuenum = value
        self._ids["lab"] += 1
        self.rows["hosp/labevents"].append({"labevent_id": self._ids["lab"], "subject_id": subject, "hadm_id": "",
                                            "specimen_id": self._ids["lab"], "itemid": itemid, "charttime": time,
                                            "storetime": time, "value": value, "valuenum": valuenum,
                                            "valueuom": "", "priority": "STAT"})

    def dictionaries(self, leave_out: tuple[int, ...] = ()) -> None:
        for variable in load_item_map().values():
            for item in variable.items:
                if item.itemid in leave_out:
                    continue
                if item.table == "chartevents":
                    self.rows["icu/d_items"].append({"itemid": item.itemid, "label": item.label,
                                                     "linksto": "chartevents", "category": "Routine Vital Signs"})
                else:
                    self.rows["hosp/d_labitems"].append({"itemid": item.itemid, "label": item.label,
                                                         "fluid": item.fluid.title(), "category": "Blood Gas"})

    def write(self, root: Path) -> Path:
        for table, header in HEADERS.items():
            frame = pd.DataFrame(self.rows[table], columns=header.split(","))
            path = root / f"{table}.csv.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False, compression="gzip")
        return root


def daily(fx: Fixture, subject: int, stay: int, days, itemid: int = 220045, start: float = 0.0, value=80) -> None:
    for d in days:
        fx.chart(subject, stay, ts(start + d), itemid, value)  # the last one at outtime: inside the stay


def build_fixture() -> Fixture:
    fx = Fixture()
    # S1: readmitted to the ICU 16 days after discharge; both stays eligible (stay selection).
    fx.patient(10000001, "M", 60)
    h = fx.admission(10000001, ts(-0.1), ts(5))
    fx.stay(10000001, h, 30000001, ts(0), ts(3))
    daily(fx, 10000001, 30000001, range(4))
    h = fx.admission(10000001, ts(18), ts(25))
    fx.stay(10000001, h, 30000002, ts(19), ts(21))
    daily(fx, 10000001, 30000002, range(2), start=19)
    # S2: next ICU stay 42 days later (that stay has a single time point); age = 70 + (2150 - 2147).
    fx.patient(10000002, "F", 70, year=2147)
    h = fx.admission(10000002, ts(-0.1), ts(2.5))
    fx.stay(10000002, h, 30000003, ts(0), ts(2))
    daily(fx, 10000002, 30000003, range(3))
    h = fx.admission(10000002, ts(43.9), ts(46))
    fx.stay(10000002, h, 30000004, ts(44), ts(45))
    daily(fx, 10000002, 30000004, [0], start=44)
    # S3: discharged alive, out-of-hospital death 2150-01-23 (19.7 days after ICU discharge).
    fx.patient(10000003, "M", 50, dod="2150-01-23")
    h = fx.admission(10000003, ts(-0.1), ts(4))
    fx.stay(10000003, h, 30000005, ts(0), ts(2))
    daily(fx, 10000003, 30000005, range(3))
    # S4: died in the ICU.
    fx.patient(10000004, "F", 80, dod="2150-01-04")
    h = fx.admission(10000004, ts(-0.1), ts(3), died=ts(3))
    fx.stay(10000004, h, 30000006, ts(0), ts(3))
    daily(fx, 10000004, 30000006, range(4))
    # S5: a 20-hour stay: one time point, not eligible.
    fx.patient(10000005, "M", 40)
    h = fx.admission(10000005, ts(-0.1), ts(2))
    fx.stay(10000005, h, 30000007, ts(0), ts(0, 20))
    fx.chart(10000005, 30000007, ts(0, 2), 220045, 90)
    fx.chart(10000005, 30000007, ts(0, 12), 220045, 95)
    # S6: units and outliers.
    fx.patient(10000006, "F", 55)
    h = fx.admission(10000006, ts(-0.1), ts(4))
    fx.stay(10000006, h, 30000008, ts(0), ts(2, 12))
    s, st = 10000006, 30000008
    fx.chart(s, st, ts(0, 1), 220045, 85)
    fx.chart(s, st, ts(0, 5), 220045, 1000)  # impossible heart rate: dropped, not clipped
    fx.chart(s, st, ts(0, 2), 223761, 98.6)  # Fahrenheit item -> 37.0 °C
    fx.chart(s, st, ts(0, 6), 223762, 80.6)  # Celsius item, value >= 79 charted in °F -> 27.0 °C
    fx.chart(s, st, ts(0, 2), 226531, 220.462)  # lb -> 100.0 kg
    fx.chart(s, st, ts(0, 2), 226707, 70)  # inch -> 177.8 cm
    fx.chart(s, st, ts(0, 2), 223835, 50)  # FiO2 % -> 0.5
    fx.chart(s, st, ts(0, 2), 220277, 0.95)  # SpO2 fraction -> 95 %
    fx.chart(s, st, ts(1, 2), 223762, 99.5)  # Celsius item charted in °F -> 37.5
    fx.chart(s, st, ts(1, 2), 223835, 0.4)  # FiO2 already a fraction
    fx.chart(s, st, ts(1, 2), 223951, "Normal <3 Seconds")
    fx.chart(s, st, ts(1, 4), 220739, "Spontaneously")  # GCS charted as text only: 4 + 5 + 6 = 15
    fx.chart(s, st, ts(1, 4), 223900, "Oriented")
    fx.chart(s, st, ts(1, 4), 223901, "Obeys Commands")
    fx.chart(s, st, ts(1, 10), 220739, "To Speech", 3)  # later triple with scores: 3 + 4 + 6 = 13
    fx.chart(s, st, ts(1, 10), 223900, "Confused", 4)
    fx.chart(s, st, ts(1, 10), 223901, "Obeys Commands", 6)
    fx.chart(s, st, ts(2, 1), 224308, "Abnormal >3 Seconds")
    fx.chart(s, st, ts(2, 2), 223761, 37.2)  # Fahrenheit item holding a Celsius value: kept as 37.2
    fx.chart(s, st, ts(2, 5), 223762, 60)  # impossible temperature, later the same day: dropped
    fx.chart(s, st, ts(2, 3), 220739, "To Pain", 2)  # a component alone: no total on day 2
    # S7: missing items; labs before / after the stay are outside it; a urine pH after a blood pH.
    fx.patient(10000007, "M", 45)
    h = fx.admission(10000007, ts(-2), ts(4))
    fx.stay(10000007, h, 30000009, ts(0), ts(2, 12))
    fx.chart(10000007, 30000009, ts(0, 2), 220045, 100)
    fx.chart(10000007, 30000009, ts(2, 2), 220045, 110)
    fx.lab(10000007, ts(-1), 50931, 300)  # before ICU admission: not part of the stay
    fx.lab(10000007, ts(1, 3), 50931, 140)
    fx.lab(10000007, ts(1, 4), 50931, "___")  # no numeric value: ignored
    fx.lab(10000007, ts(1, 3), 50820, 7.31)
    fx.lab(10000007, ts(1, 5), 51491, 5.5)  # urine pH (mimic3-benchmarks maps it to pH)
    fx.lab(10000007, ts(2, 13), 50931, 500)  # after ICU discharge
    # S8 / S9: next ICU stay exactly 30 days vs 30 days + 1 hour after discharge.
    for subject, stay, gap_hours in ((10000008, 30000010, 0), (10000009, 30000012, 1)):
        fx.patient(subject, "F", 65)
        h = fx.admission(subject, ts(-0.1), ts(2.5))
        fx.stay(subject, h, stay, ts(0), ts(2))
        daily(fx, subject, stay, range(3))
        h = fx.admission(subject, ts(31.9), ts(34))
        fx.stay(subject, h, stay + 1, ts(32, gap_hours), ts(33))
        daily(fx, subject, stay + 1, [0], start=32.1)
    # S10: out-of-hospital death 34.7 days after ICU discharge.
    fx.patient(10000010, "M", 75, dod="2150-02-07")
    h = fx.admission(10000010, ts(-0.1), ts(2.5))
    fx.stay(10000010, h, 30000014, ts(0), ts(2))
    daily(fx, 10000010, 30000014, range(3))
    # S11: 9.5-day stay: the last 7 days (3..9) are kept; two heart rates on day 9.
    fx.patient(10000011, "F", 58)
    h = fx.admission(10000011, ts(-0.1), ts(11))
    fx.stay(10000011, h, 30000015, ts(0), ts(9, 12))
    for d in range(10):
        fx.chart(10000011, 30000015, ts(d, 0), 220045, 70 + d)
    fx.chart(10000011, 30000015, ts(9, 10), 220045, 95)
    # S12: 16 years old.
    fx.patient(10000012, "M", 16)
    h = fx.admission(10000012, ts(-0.1), ts(3))
    fx.stay(10000012, h, 30000016, ts(0), ts(2))
    daily(fx, 10000012, 30000016, range(3))
    # S13: transferred between care units.
    fx.patient(10000013, "F", 66)
    h = fx.admission(10000013, ts(-0.1), ts(3))
    fx.stay(10000013, h, 30000020, ts(0), ts(2), last_unit="Surgical Intensive Care Unit (SICU)")
    daily(fx, 10000013, 30000020, range(3))
    # S14: died in hospital 3 days after ICU discharge.
    fx.patient(10000014, "M", 82, dod="2150-01-06")
    h = fx.admission(10000014, ts(-0.1), ts(5), died=ts(5))
    fx.stay(10000014, h, 30000017, ts(0), ts(2))
    daily(fx, 10000014, 30000017, range(3))
    # S15: two ICU stays in one admission (a bounce-back).
    fx.patient(10000015, "F", 61)
    h = fx.admission(10000015, ts(-0.1), ts(8))
    fx.stay(10000015, h, 30000018, ts(0), ts(2))
    fx.stay(10000015, h, 30000019, ts(4), ts(6))
    daily(fx, 10000015, 30000018, range(3))
    daily(fx, 10000015, 30000019, range(3), start=4)
    fx.dictionaries(leave_out=(224322,))  # IABP Mean: absent from this "release"
    return fx


@pytest.fixture(scope="module")
def mimic_root(tmp_path_factory) -> Path:
    return build_fixture().write(tmp_path_factory.mktemp("mimiciv") / "2.2")


def config(root: Path, **overrides) -> MimicIVConfig:
    settings = {"path": str(root), "n_test": 2, "max_train_val": 6, "val_fraction": 0.25}
    return MimicIVConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def cohort(mimic_root) -> Cohort:
    return build_mimic_iv(config(mimic_root), "mimic_iv")


@pytest.fixture(scope="module")
def everyone(mimic_root) -> Cohort:
    """Every eligible patient (no sampling), so that each one can be looked at."""
    return build_mimic_iv(config(mimic_root, max_train_val=0), "mimic_iv")


def row(cohort: Cohort, stay: int) -> int:
    return int(np.flatnonzero(cohort.ids == str(stay))[0])


def times(cohort: Cohort, stay: int) -> list[float]:
    i = row(cohort, stay)
    return cohort.times[i, : cohort.n_visits[i]].tolist()


def series(cohort: Cohort, stay: int, feature: str) -> list[float]:
    i, j = row(cohort, stay), cohort.feature_names.index(feature)
    return cohort.raw[i, : cohort.n_visits[i], j].tolist()


# ----------------------------------------------------------------------------------------------- labels
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


# ----------------------------------------------------------------------------------------------- cohort
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


# ----------------------------------------------------------------------------------------------- splits
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


def test_cohort_round_trip_and_normalised_view(cohort, tmp_path):
    loaded = Cohort.load(cohort.save(tmp_path / "mimic_iv"))
    np.testing.assert_allclose(loaded.raw, cohort.raw, rtol=1e-6)  # stored as float32
    assert np.isfinite(loaded.values).all() and loaded.domain == "icu"
    assert loaded.provenance["input"] == "raw"
    assert loaded.provenance["item_ids_not_defined"]["chartevents_itemids_not_in_d_items"] == [224322]


# ----------------------------------------------------------------------------------------------- wiring
def test_params_entry_through_the_source_registry(mimic_root):
    entry = {"source": "mimic_iv", "path": str(mimic_root), "n_test": 2, "max_train_val": 0}
    built, settings = build_cohort("mimic_iv", entry, "params.yaml: datasets.mimic_iv")
    assert settings.stay_selection == "first" and len(built) == 11
    with pytest.raises(ConfigError, match="datasets.mimic_iv.stay_selection"):
        from_mapping(MimicIVConfig, {**entry, "stay_selection": "any"}, "params.yaml: datasets.mimic_iv")


def test_configure_adds_the_entry_and_checks_the_folder(mimic_root, tmp_path):
    from eagrl.ops.configure import configure

    params = tmp_path / "params.yaml"
    params.write_text("seed: 42\ndatasets:\n  synthetic_icu:\n    source: synthetic  # keep me\n")
    configure(params, mimic_iv=str(mimic_root))
    text = params.read_text()
    assert "mimic_iv:" in text and str(mimic_root.resolve()) in text and "# keep me" in text
    empty = tmp_path / "not-mimic"
    empty.mkdir()
    with pytest.raises(ConfigError, match="patients"):
        configure(params, mimic_iv=str(empty))


def test_logs_hold_counts_not_patients(mimic_root, caplog):
    with caplog.at_level(logging.INFO, logger="eagrl"):
        build_mimic_iv(config(mimic_root), "m")
    assert "counts" in caplog.text and "224322" in caplog.text
    for identifier in [*map(str, EXPECTED), *(str(10000000 + k) for k in range(1, 16))]:
        assert identifier not in caplog.text


# ----------------------------------------------------------------------------------------------- errors
def copy_root(mimic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(mimic_root, tmp_path / "copy"))


def test_missing_table_names_table_and_version(mimic_root, tmp_path):
    root = copy_root(mimic_root, tmp_path)
    (root / "icu" / "chartevents.csv.gz").unlink()
    with pytest.raises(MimicIVError) as error:
        build_mimic_iv(config(root))
    message = str(error.value)
    assert "'chartevents'" in message and "icu/chartevents.csv.gz" in message and "v2.2" in message


def test_every_missing_table_is_named(mimic_root, tmp_path):
    root = copy_root(mimic_root, tmp_path)
    (root / "icu" / "chartevents.csv.gz").unlink()
    (root / "hosp" / "labevents.csv.gz").unlink()
    with pytest.raises(MimicIVError) as error:
        check_input(root)
    message = str(error.value)
    assert "2 of 7 tables not found: icu/chartevents.csv.gz, hosp/labevents.csv.gz" in message and "v2.2" in message


def test_missing_column_names_table_column_and_version(mimic_root, tmp_path):
    root = copy_root(mimic_root, tmp_path)
    path = root / "hosp" / "admissions.csv.gz"
    pd.read_csv(path).drop(columns=["hospital_expire_flag"]).to_csv(path, index=False, compression="gzip")
    with pytest.raises(MimicIVError) as error:
        build_mimic_iv(config(root))
    message = str(error.value)
    assert "'admissions'" in message and "'hospital_expire_flag'" in message and "MIMIC-IV v2.2" in message


def test_version_one_layout_is_named(tmp_path):
    (tmp_path / "core").mkdir()
    with pytest.raises(MimicIVError, match="v1.0"):
        check_input(tmp_path)


def test_malformed_rows_are_not_quoted(mimic_root, tmp_path):
    root = copy_root(mimic_root, tmp_path)
    path = root / "icu" / "chartevents.csv.gz"
    with gzip.open(path, "at") as handle:
        handle.write("10000001,,30000001,1,SECRET-2150-01-02,x,220045,SECRET-VALUE\n")
    with pytest.raises(MimicIVError) as error:
        build_mimic_iv(config(root))
    assert "chartevents" in str(error.value) and "SECRET" not in str(error.value)
    assert error.value.__suppress_context__


def test_item_map_is_checked(tmp_path):
    variables = load_item_map()
    assert list(variables) == VARIABLES
    ids = [item.itemid for v in variables.values() for item in v.items]
    assert len(ids) == len(set(ids))
    bad = tmp_path / "map.yaml"
    bad.write_text("variables:\n  Heart Rate:\n    kind: vital\n    bounds: [1, 350]\n    items:\n"
                   "      - {itemid: 220045, table: chartevents, convert: none}\n"
                   "  Weight:\n    kind: vital\n    bounds: [20, 500]\n    items:\n"
                   "      - {itemid: 220045, table: chartevents, convert: lb_to_kg}\n")
    with pytest.raises(ConfigError, match="220045 is already mapped to 'Heart Rate'"):
        load_item_map(bad)


def test_config_errors_name_the_key(mimic_root):
    with pytest.raises(ConfigError, match=r"mimic_iv\.features"):
        build_mimic_iv(config(mimic_root, features=["Lactate"]), "m", "params.yaml: datasets.mimic_iv")
    with pytest.raises(MimicIVError, match="only 11 patients qualify"):
        build_mimic_iv(config(mimic_root, n_test=11), "m")


# ----------------------------------------------------------------------------------------------- parquet
def preprocessed_frame(dates: bool) -> pd.DataFrame:
    """The paper group's day-level file: one row per record and day."""
    rows = []

    def add(record, days, outcome, readmission, **values):
        for d in days:
            time = (pd.Timestamp("2150-03-01") + pd.Timedelta(days=d)) if dates else float(d)
            rows.append({"RecordID": record, "PatientID": f"{record}_1", "RecordTime": time, "Outcome": outcome,
                         "LOS": 5.0, "Readmission": readmission, "Sex": 1, "Age": 70.0,
                         **{v: np.nan for v in VARIABLES}, "Heart Rate": 80.0 + d,
                         **{k: (v(d) if callable(v) else v) for k, v in values.items()}})

    add(101, range(9), 1, 1)  # 9 days: the last 7 are kept
    add(102, [0], 0, 0)  # one time point
    add(103, [0, 1], 0, 1, **{"Glascow coma scale eye opening": "4 Spontaneously",
                               "Glascow coma scale verbal response": "Confused"})
    for record in range(104, 112):
        add(record, [0, 1, 2], int(record in (104, 105)), int(record % 2))
    add(112, [0, 1], np.nan, 0)  # no label: dropped
    return pd.DataFrame(rows)


@pytest.mark.parametrize("dates", [False, True])
def test_parquet_of_the_preprocessor(tmp_path, dates):
    frame = preprocessed_frame(dates)
    frame["Glascow coma scale eye opening"] = frame["Glascow coma scale eye opening"].astype(object)
    frame["Glascow coma scale verbal response"] = frame["Glascow coma scale verbal response"].astype(object)
    path = tmp_path / "mimic-iv-timeseries-note.parquet"
    frame.to_parquet(path)
    c = build_mimic_iv(MimicIVConfig(path=str(path), n_test=2, max_train_val=0, val_fraction=0.25), "m")
    assert c.provenance["input"] == "parquet"
    assert sorted(c.ids.tolist()) == [str(r) for r in [101, *range(103, 112)]]
    assert times(c, 101) == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert series(c, 101, "Heart Rate") == [82.0, 83.0, 84.0, 85.0, 86.0, 87.0, 88.0]
    assert series(c, 103, "Glascow coma scale eye opening") == [4.0, 4.0]
    assert series(c, 103, "Glascow coma scale verbal response") == [4.0, 4.0]
    assert c.labels[row(c, 101)].tolist() == [1, 1] and c.labels[row(c, 103)].tolist() == [0, 1]
    assert c.provenance["counts"]["records"] == 12 and c.provenance["counts"]["records_with_labels"] == 11
    ids = np.array(sorted([101, *range(103, 112)]))
    y = np.array([1 if i in (101, 104, 105) else 0 for i in ids])
    test = train_test_split(ids, test_size=2, random_state=42, stratify=y)[1]
    assert sorted(int(i) for i in c.ids[c.split == "test"]) == sorted(test)


def test_parquet_chosen_by_config_and_missing_column(tmp_path):
    frame = preprocessed_frame(False)
    path = tmp_path / "preprocessed.bin"
    frame.drop(columns=["pH"]).to_parquet(path)
    with pytest.raises(MimicIVError, match="no column 'pH'"):
        build_mimic_iv(MimicIVConfig(path=str(path), input_format="parquet", n_test=2), "m")
    with pytest.raises(MimicIVError, match="hosp/ and icu/"):
        build_mimic_iv(MimicIVConfig(path=str(path), n_test=2), "m")  # auto: a file without .parquet
    frame.to_parquet(path)
    c = build_mimic_iv(MimicIVConfig(path=str(path), input_format="parquet", n_test=2, max_train_val=0,
                                     val_fraction=0.25), "m")
    assert len(c) == 10 and dataclasses.asdict(c.normalisation)["mean"]


@pytest.mark.parametrize("table", ["hosp/admissions", "icu/chartevents"])
def test_a_truncated_table_is_named_as_truncated(mimic_root, tmp_path, table):
    """Issue 20 item 7: a .csv.gz cut short (an interrupted copy) is one MimicIVError naming the file, not an EOFError."""
    root = copy_root(mimic_root, tmp_path)
    path = root / f"{table}.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # the gzip trailer and the end of the stream are gone
    with pytest.raises(MimicIVError) as error:
        build_mimic_iv(config(root))
    message = str(error.value).replace(str(path), "<path>")  # (the test's folder name holds "truncated" too)
    assert "<path>" in message and "truncated or corrupt .csv.gz" in message and "SHA256SUMS" in message
