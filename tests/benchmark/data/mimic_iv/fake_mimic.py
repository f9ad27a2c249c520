"""A tiny MIMIC-IV fixture in the real v2.2 schema, written by the tests themselves, and helpers to read cohorts.

The fixture (gzipped CSVs under ``root/hosp`` and ``root/icu``) holds 15 patients and 20 ICU stays, each
built to exercise one rule; ``EXPECTED`` lists the labels every labelled stay must get. Times are offsets
(days, hours) from 2150-01-01 08:00, the ICU admission of most stays. The pytest fixtures built on it are
in this folder's ``conftest.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.cohort import Cohort
from benchmark.data.mimic_iv import MimicIVConfig
from benchmark.data.mimic_iv.items import load_item_map

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


def icu_stay(fx: Fixture, subject: int, stay: int, gender: str, age: int, out: int, discharge: float,
             *, dod: str = "", died: bool = False, year: int = 2150, last_unit: str = MICU) -> None:
    """A patient whose admission starts just before an ICU stay from day 0 to day ``out``, charted daily.

    The admission ends at day ``discharge`` (with an in-hospital death then when ``died``).
    """
    fx.patient(subject, gender, age, year=year, dod=dod)
    h = fx.admission(subject, ts(-0.1), ts(discharge), died=ts(discharge) if died else "")
    fx.stay(subject, h, stay, ts(0), ts(out), last_unit=last_unit)
    daily(fx, subject, stay, range(out + 1))


def build_fixture() -> Fixture:
    fx = Fixture()
    # S1: readmitted to the ICU 16 days after discharge; both stays eligible (stay selection).
    icu_stay(fx, 10000001, 30000001, "M", 60, out=3, discharge=5)
    h = fx.admission(10000001, ts(18), ts(25))
    fx.stay(10000001, h, 30000002, ts(19), ts(21))
    daily(fx, 10000001, 30000002, range(2), start=19)
    # S2: next ICU stay 42 days later (that stay has a single time point); age = 70 + (2150 - 2147).
    icu_stay(fx, 10000002, 30000003, "F", 70, out=2, discharge=2.5, year=2147)
    h = fx.admission(10000002, ts(43.9), ts(46))
    fx.stay(10000002, h, 30000004, ts(44), ts(45))
    daily(fx, 10000002, 30000004, [0], start=44)
    # S3: discharged alive, out-of-hospital death 2150-01-23 (19.7 days after ICU discharge).
    icu_stay(fx, 10000003, 30000005, "M", 50, out=2, discharge=4, dod="2150-01-23")
    # S4: died in the ICU.
    icu_stay(fx, 10000004, 30000006, "F", 80, out=3, discharge=3, dod="2150-01-04", died=True)
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
        icu_stay(fx, subject, stay, "F", 65, out=2, discharge=2.5)
        h = fx.admission(subject, ts(31.9), ts(34))
        fx.stay(subject, h, stay + 1, ts(32, gap_hours), ts(33))
        daily(fx, subject, stay + 1, [0], start=32.1)
    # S10: out-of-hospital death 34.7 days after ICU discharge.
    icu_stay(fx, 10000010, 30000014, "M", 75, out=2, discharge=2.5, dod="2150-02-07")
    # S11: 9.5-day stay: the last 7 days (3..9) are kept; two heart rates on day 9.
    fx.patient(10000011, "F", 58)
    h = fx.admission(10000011, ts(-0.1), ts(11))
    fx.stay(10000011, h, 30000015, ts(0), ts(9, 12))
    for d in range(10):
        fx.chart(10000011, 30000015, ts(d, 0), 220045, 70 + d)
    fx.chart(10000011, 30000015, ts(9, 10), 220045, 95)
    # S12: 16 years old.
    icu_stay(fx, 10000012, 30000016, "M", 16, out=2, discharge=3)
    # S13: transferred between care units.
    icu_stay(fx, 10000013, 30000020, "F", 66, out=2, discharge=3, last_unit="Surgical Intensive Care Unit (SICU)")
    # S14: died in hospital 3 days after ICU discharge.
    icu_stay(fx, 10000014, 30000017, "M", 82, out=2, discharge=5, dod="2150-01-06", died=True)
    # S15: two ICU stays in one admission (a bounce-back).
    fx.patient(10000015, "F", 61)
    h = fx.admission(10000015, ts(-0.1), ts(8))
    fx.stay(10000015, h, 30000018, ts(0), ts(2))
    fx.stay(10000015, h, 30000019, ts(4), ts(6))
    daily(fx, 10000015, 30000018, range(3))
    daily(fx, 10000015, 30000019, range(3), start=4)
    fx.dictionaries(leave_out=(224322,))  # IABP Mean: absent from this "release"
    return fx


def config(root: Path, **overrides) -> MimicIVConfig:
    settings = {"path": str(root), "n_test": 2, "max_train_val": 6, "val_fraction": 0.25}
    return MimicIVConfig(**{**settings, **overrides})


def row(cohort: Cohort, stay: int) -> int:
    return int(np.flatnonzero(cohort.ids == str(stay))[0])


def times(cohort: Cohort, stay: int) -> list[float]:
    i = row(cohort, stay)
    return cohort.times[i, : cohort.n_visits[i]].tolist()


def series(cohort: Cohort, stay: int, feature: str) -> list[float]:
    i, j = row(cohort, stay), cohort.feature_names.index(feature)
    return cohort.raw[i, : cohort.n_visits[i], j].tolist()


def copy_root(mimic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(mimic_root, tmp_path / "copy"))


