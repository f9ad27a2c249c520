"""TJH cohort: exact aggregation on a tiny workbook in the real layout; counts on the shared file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.config import ConfigError
from benchmark.data.cohort import SPLITS
from benchmark.data.preprocess import fit_normalisation, normalise_and_impute
from benchmark.data.sources import build_cohort
from benchmark.data.tjh import (
    DROPPED_COLUMNS,
    HEADER,
    LAB_COLUMNS,
    N_LAB_FEATURES,
    TJHConfig,
    build_tjh,
    daily_records,
    read_workbook,
)
from tests.conftest import SHARED_DATA

TJH_FILE = SHARED_DATA / "tjh" / "time_series_375_prerpocess_en.xlsx"
NUCLEIC = DROPPED_COLUMNS[0]
PLT, GLU, HB = "Platelet count", "glucose", "hemoglobin"


def _row(pid, date, age, gender, admitted, outcome, **labs):
    row = {c: np.nan for c in HEADER + LAB_COLUMNS + [NUCLEIC]}
    row.update({"PATIENT_ID": pid, "RE_DATE": pd.Timestamp(date) if date else pd.NaT, "age": age,
                "gender": gender, "Admission time": pd.Timestamp(admitted),
                "Discharge time": pd.Timestamp(admitted) + pd.Timedelta(days=9), "outcome": outcome})
    row.update(labs)
    return row


@pytest.fixture(scope="module")
def tiny_workbook(tmp_path_factory):
    """Three hand-made patients + 12 one-draw fillers, in the workbook's real column order."""
    return write_tiny_workbook(tmp_path_factory.mktemp("tjh") / "tiny.xlsx")


def write_tiny_workbook(path):
    """The tiny workbook of :func:`tiny_workbook` at ``path`` (also used by the configure tests)."""
    rows = [
        # patient 1: survivor, male; two draws on day 0 (one id missing -> forward-filled), a negative on day 2
        _row(1, "2020-02-01 12:00", 50, 1, "2020-02-01 10:00", 0, **{PLT: 100.0, GLU: 5.0, NUCLEIC: -1.0}),
        _row(np.nan, "2020-02-01 20:00", 50, 1, "2020-02-01 10:00", 0, **{PLT: 200.0, HB: 130.0}),
        _row(np.nan, "2020-02-03 08:00", 50, 1, "2020-02-01 10:00", 0, **{PLT: -5.0, GLU: 7.0}),
        # patient 2: died, female (2 in the file); a negative and a positive draw on one day; an undated row
        _row(2, "2020-02-06 07:00", 70, 2, "2020-02-05 22:00", 1, **{PLT: -1.0}),
        _row(np.nan, "2020-02-06 09:00", 70, 2, "2020-02-05 22:00", 1, **{PLT: 80.0, GLU: 9.0}),
        _row(np.nan, None, 70, 2, "2020-02-05 22:00", 1),
        # patient 3: died; its only row is undated and empty (like 14 patients of the released file)
        _row(3, None, 60, 1, "2020-02-07 01:00", 1),
    ]
    for k in range(12):
        rows.append(_row(4 + k, f"2020-02-{10 + k} 09:00", 40 + k, 1 + k % 2, f"2020-02-{9 + k} 09:00", k % 2,
                         **{PLT: 150.0 + 10 * k, GLU: 5.0 + k / 10}))
    frame = pd.DataFrame(rows)
    columns = HEADER + LAB_COLUMNS[:63] + [NUCLEIC] + LAB_COLUMNS[63:]
    assert len(columns) == 81  # the released workbook has 81 columns
    frame[columns].to_excel(path, index=False)
    return path


def test_layout_constants():
    assert len(LAB_COLUMNS) == N_LAB_FEATURES == 73
    assert NUCLEIC not in LAB_COLUMNS


def test_day_level_aggregation_is_exact(tiny_workbook):
    daily, counts = daily_records(read_workbook(tiny_workbook))
    assert counts["rows"] == 19 and counts["undated_rows"] == 2 and counts["negative_values"] == 2
    assert counts["patients_in_file"] == 15 and counts["patients"] == 14  # patient 3 had only an undated row
    assert NUCLEIC not in daily.columns
    one = daily[daily["patient"] == 1]
    assert len(one) == 2  # two days
    assert one[PLT].iloc[0] == 150.0  # mean of 100 and 200 on day 0
    assert one[GLU].iloc[0] == 5.0  # mean of the non-missing draws only
    assert one[HB].iloc[0] == 130.0
    assert np.isnan(one[PLT].iloc[1])  # the negative value became NaN
    assert one[GLU].iloc[1] == 7.0
    two = daily[daily["patient"] == 2]
    assert len(two) == 1 and two[PLT].iloc[0] == 80.0  # negative dropped before the mean (not (-1 + 80) / 2)
    assert two["Sex"].iloc[0] == 0 and one["Sex"].iloc[0] == 1


def test_tiny_cohort(tiny_workbook):
    config = TJHConfig(path=str(tiny_workbook), n_test=4, val_fraction=0.25)
    cohort = build_tjh(config, "tiny")
    assert len(cohort) == 14 and cohort.ids[:3].tolist() == ["1", "2", "4"]
    assert cohort.feature_names[17] == "Red blood cell distribution width"  # trailing space stripped
    assert {f.kind for f in cohort.features} == {"lab"}
    plt = cohort.feature_names.index(PLT)
    assert cohort.features[plt].unit == "x 10^9/L"  # from the prompt tables (metadata.unit_of)
    assert cohort.n_visits[:2].tolist() == [2, 1]
    assert cohort.times[0, :2].tolist() == [0.0, 2.0]  # days since the admission day
    assert cohort.times[1, 0] == 1.0  # admitted late on Feb 5, first draw on Feb 6
    assert cohort.raw[0, 0, plt] == 150.0 and np.isnan(cohort.raw[0, 1, plt])
    assert cohort.static[:2].tolist() == [[50.0, 1.0], [70.0, 0.0]]
    assert cohort.label("mortality")[:2].tolist() == [0, 1]
    assert (cohort.split == "test").sum() == 4
    assert cohort.provenance["counts"]["deaths"] == int(cohort.label("mortality").sum())
    kept = build_tjh(TJHConfig(path=str(tiny_workbook), n_test=4, val_fraction=0.25,
                               undated_rows="admission_day"), "tiny")
    assert len(kept) == 15
    three = kept.ids.tolist().index("3")
    assert kept.n_visits[three] == 1 and kept.times[three, 0] == 0 and not kept.mask[three].any()


def test_errors_name_the_key_and_file(tmp_path, tiny_workbook):
    with pytest.raises(ConfigError, match=r"datasets\.tjh\.path: TJH workbook .* not found"):
        build_cohort("tjh", {"source": "tjh", "path": str(tmp_path / "absent.xlsx")}, "params.yaml: datasets.tjh")
    with pytest.raises(ConfigError, match="missing required key 'path'"):
        build_cohort("tjh", {"source": "tjh"}, "params.yaml: datasets.tjh")
    frame = pd.read_excel(tiny_workbook).drop(columns=["D-D dimer"])
    broken = tmp_path / "broken.xlsx"
    frame.to_excel(broken, index=False)
    with pytest.raises(ConfigError, match=r"broken\.xlsx: lab column\(s\) \['D-D dimer'\] missing or renamed"):
        read_workbook(broken)


def _edited(tmp_path, tiny_workbook, edit):
    frame = pd.read_excel(tiny_workbook)
    edit(frame)
    path = tmp_path / "edited.xlsx"
    frame.to_excel(path, index=False)
    return path


@pytest.mark.parametrize("value", [np.nan, 0.5, 2])
def test_an_outcome_that_is_not_0_or_1_is_an_error_naming_the_row(tmp_path, tiny_workbook, value):
    # A blank outcome used to become "survived" silently (issue 20): the row and patient are named instead.
    def edit(frame):
        frame["outcome"] = frame["outcome"].astype(float)
        frame.loc[3, "outcome"] = value  # patient 2 (died), its first row
    path = _edited(tmp_path, tiny_workbook, edit)
    with pytest.raises(ConfigError, match=r"edited\.xlsx: column 'outcome': 1 row\(s\) are not 0 or 1, e.g. row 5 "
                                          r"\(patient 2\.0"):
        read_workbook(path)


def test_a_header_only_workbook_is_one_error_not_a_traceback(tmp_path, tiny_workbook):
    """Issue 20 item 7: a workbook with its header and no rows is refused by name (it used to fail deep in numpy)."""
    path = _edited(tmp_path, tiny_workbook, lambda frame: frame.drop(frame.index, inplace=True))
    with pytest.raises(ConfigError, match=r"edited\.xlsx: the workbook has its header but no rows"):
        read_workbook(path)


@pytest.mark.parametrize("column", ["RE_DATE", "Admission time"])
def test_a_cell_that_is_not_a_date_names_the_column_row_and_cell(tmp_path, tiny_workbook, column):
    """Issue 20 item 7: an unparsable date names the file, the column, the Excel row and the cell."""
    def edit(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[1, column] = "2020-13-45 99:00"
    with pytest.raises(ConfigError, match=rf"edited\.xlsx: column '{column}': 1 cell\(s\) are not dates, "
                                          r"e.g. row 3: '2020-13-45 99:00'"):
        read_workbook(_edited(tmp_path, tiny_workbook, edit))


def test_an_outcome_that_changes_within_a_patient_is_an_error(tmp_path, tiny_workbook):
    def edit(frame):
        frame.loc[4, "outcome"] = 0  # patient 2's second row says survived, the others died
    with pytest.raises(ConfigError, match=r"patient\(s\) \[2\.0\] have both 0 and 1"):
        read_workbook(_edited(tmp_path, tiny_workbook, edit))


def test_unknown_columns_are_ignored_with_a_warning(tmp_path, tiny_workbook, caplog):
    def edit(frame):
        frame["my notes"] = "checked"
    with caplog.at_level("WARNING", logger="eagrl"):
        frame = read_workbook(_edited(tmp_path, tiny_workbook, edit))
    assert "my notes" not in frame.columns and "ignoring 1 column(s)" in caplog.text and "my notes" in caplog.text


def test_censored_lab_values_are_read_and_counted(tmp_path, tiny_workbook, caplog):
    def edit(frame):
        frame[GLU] = frame[GLU].astype(object)
        frame.loc[0, GLU] = "<1.0"      # patient 1, day 0 (with 200.0 platelets in its second draw)
        frame.loc[2, GLU] = ">= 20"     # patient 1, day 2
        frame.loc[4, GLU] = "haemolysed"  # patient 2, day 0: text, read as missing and counted
    with caplog.at_level("WARNING", logger="eagrl"):
        daily, counts = daily_records(read_workbook(_edited(tmp_path, tiny_workbook, edit)))
    assert counts["censored_values"] == 2 and counts["unparsable_values"] == 1
    first = daily[daily["patient"] == 1].sort_values("day")
    assert first["glucose"].tolist() == [1.0, 20.0]
    assert "glucose" in caplog.text


# ------------------------------------------------------------------------------------ the shared file
requires_file = pytest.mark.skipif(
    not TJH_FILE.exists(),
    reason=f"the TJH workbook is not at {TJH_FILE} (../shared/data/tjh relative to the repository root); "
           f"these checks run where the shared data copy is present")


@pytest.fixture(scope="module")
def tjh():
    return build_tjh(TJHConfig(path=str(TJH_FILE)), "tjh")


@requires_file
def test_released_file_counts(tjh):
    counts = tjh.provenance["counts"]
    assert counts["patients_in_file"] == 375 and counts["deaths_in_file"] == 174  # 201 survivors
    assert counts["undated_rows"] == 14 and counts["negative_values"] == 4
    # the paper group's preprocessing drops the 14 patients whose only row is undated (and empty)
    y = tjh.label("mortality")
    assert len(tjh) == 361 and y.sum() == 166 and (1 - y).sum() == 195
    assert len(tjh.features) == 73 and tjh.static_names == ["Age", "Sex"]
    assert int(tjh.n_visits.sum()) == 1704 and tjh.n_visits.max() == 13
    assert set(np.unique(tjh.static[:, 1])) == {0.0, 1.0}


@requires_file
def test_released_file_splits(tjh):
    assert (tjh.split == "test").sum() == 200
    parts = [set(tjh.ids[tjh.split == s]) for s in SPLITS]
    assert sum(len(p) for p in parts) == len(tjh) == len(set.union(*parts))
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert (tjh.split == "val").sum() == 21 and (tjh.split == "train").sum() == 140
    y = tjh.label("mortality")
    assert abs(y[tjh.split == "val"].mean() - y[tjh.split == "train"].mean()) < 0.05  # val is stratified


@requires_file
def test_released_file_normalisation_from_train_only(tjh):
    train = tjh.split == "train"
    expected = fit_normalisation(tjh.raw, train)
    assert np.allclose(tjh.normalisation.mean, expected.mean) and np.allclose(tjh.normalisation.std, expected.std)
    everyone = fit_normalisation(tjh.raw, np.ones(len(tjh), dtype=bool))
    assert not np.allclose(tjh.normalisation.mean, everyone.mean)
    assert np.allclose(tjh.values, normalise_and_impute(tjh.raw, tjh.n_visits, expected))
    assert np.isnan(tjh.raw).any() and np.isfinite(tjh.values).all()  # LLM view keeps NaN, DL view is filled


@requires_file
def test_released_file_keeping_undated_patients():
    kept = build_tjh(TJHConfig(path=str(TJH_FILE), undated_rows="admission_day"), "tjh")
    y = kept.label("mortality")
    assert len(kept) == 375 and y.sum() == 174 and (1 - y).sum() == 201
    assert (kept.split == "test").sum() == 200


def test_a_cohort_whose_workbook_changed_is_refused(tmp_path, tiny_workbook):
    # The raw path is a param, not a DVC dep: replacing the workbook in place must not leave a stale cohort.
    import shutil

    from benchmark.data.cohort import Cohort, CohortError

    workbook = tmp_path / "tjh.xlsx"
    shutil.copy(tiny_workbook, workbook)
    build_tjh(TJHConfig(path=str(workbook), n_test=5), "tjh").save(tmp_path / "tjh")
    Cohort.load(tmp_path / "tjh")  # unchanged: fine
    frame = pd.read_excel(workbook)
    frame.loc[0, "age"] = 51
    frame.to_excel(workbook, index=False)
    with pytest.raises(CohortError, match=r"provenance\.sha256: .* has changed since .*`dvc repro --force prepare@tjh`"):
        Cohort.load(tmp_path / "tjh")
    workbook.unlink()
    Cohort.load(tmp_path / "tjh")  # a cohort whose workbook is gone stands alone


def test_draws_before_admission_are_kept_counted_and_named(tmp_path, tiny_workbook, caplog):
    """Issue 20's extra probes: a blood draw dated before admission is kept at a negative day, counted and logged."""
    def edit(frame):
        frame["RE_DATE"] = pd.to_datetime(frame["RE_DATE"])
        frame.loc[0, "RE_DATE"] = frame.loc[0, "RE_DATE"] - pd.Timedelta(days=3)
    path = _edited(tmp_path, tiny_workbook, edit)
    with caplog.at_level("WARNING"):
        cohort = build_tjh(TJHConfig(path=str(path), n_test=3))
    assert cohort.provenance["counts"]["days_before_admission"] == 1
    assert float(np.nanmin(cohort.times)) == -3.0
    assert "dated before the admission day" in caplog.text and str(path) in caplog.text


def test_a_test_split_as_large_as_the_cohort_is_a_config_error(tiny_workbook):
    with pytest.raises(ConfigError, match=r"n_test = 100: the cohort has 14 patients, so n_test must be between 1 and 13"):
        build_tjh(TJHConfig(path=str(tiny_workbook), n_test=100))
