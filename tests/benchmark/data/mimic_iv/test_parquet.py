"""The paper group's preprocessed parquet, with day numbers or dates, and a file missing a column."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from benchmark.data.mimic_iv import VARIABLES, MimicIVConfig, build_mimic_iv
from benchmark.data.mimic_iv.config import MimicIVError
from tests.benchmark.data.mimic_iv.fake_mimic import row, series, times


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
