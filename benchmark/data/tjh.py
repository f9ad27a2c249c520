"""The TJH cohort: Tongji Hospital (Wuhan) COVID-19 patients, in-hospital mortality from daily lab panels.

Source: ``time_series_375_prerpocess_en.xlsx``, released with Yan et al., "An interpretable mortality
prediction model for COVID-19 patients", Nature Machine Intelligence 2020 (HAIRLAB/Pre_Surv_COVID_19) and
redistributed by the paper group (yhzhu99/ehr-llm-benchmark). One row per lab draw: ``PATIENT_ID`` (only on
a patient's first row), ``RE_DATE`` (draw time), ``age``, ``gender`` (1 = male, 2 = female),
``Admission time``, ``Discharge time``, ``outcome`` (1 = died), then 74 lab columns. The path is a param;
the workbook is never part of the repository.

Preprocessing — the steps of the paper group's ``my_datasets/tjh/preprocess_tjh.py``, in their order:

1. ``PATIENT_ID`` is forward-filled (each patient's id is only on the first of its rows).
2. ``gender`` 2 (female) becomes 0: static ``Sex`` is 1 = male, 0 = female, as everywhere in the suite.
3. ``RE_DATE`` is truncated to the calendar day. **Rows without a ``RE_DATE`` are dropped** (their code
   drops rows whose ``RecordTime`` is missing). In the released file 14 patients (8 deaths, 6 survivors)
   consist of a single undated row *without any lab value*, so they disappear with it: 375 → 361
   patients, 174 → 166 deaths, 201 → 195 survivors. ``undated_rows: admission_day`` keeps them instead,
   as one all-missing visit on the admission day (375 / 174 / 201; a deviation from the paper group's
   code that only adds patients with no measurement).
4. The ``2019-nCoV nucleic acid detection`` column is dropped (it is −1 or empty: no information).
5. Negative values of the lab features and of age/sex become NaN (four negative platelet counts in the
   released file) — *before* aggregation, so they do not pull a day's mean down.
6. **Day-level aggregation**: all draws of one patient on one calendar day are merged into one visit
   whose value per feature is the **mean of that day's non-missing values** (pandas ``groupby(...).mean()``
   in their code); a feature not measured that day stays NaN. Visits are ordered by day; the visit time is
   the number of days since the admission day (0 = the day of admission).
7. 73 lab features (the workbook's column order) are the dynamic features, kind ``lab``, with unit and
   reference range from the paper group's prompt tables (:mod:`benchmark.data.metadata`); ``Age`` and
   ``Sex`` are the static features; ``mortality`` = ``outcome``.
8. Split by patient: 200 test patients, the rest 7/8 train and 1/8 validation stratified by outcome, seed
   42. By default the test draw is *not* stratified, exactly as in their code
   (``train_test_split(patients, test_size=200, random_state=42)`` over patients in ascending id order),
   so the test patients are the paper group's; ``stratify_test: true`` stratifies it too.
9. The DL view (``values``): z-scores with train statistics on 5–95 % quantile-trimmed values, last
   observation carried forward, train median for features never observed
   (:mod:`benchmark.data.preprocess`). The LLM view (``raw``) keeps the day means with NaN.

Column names keep the workbook's English spelling with surrounding spaces stripped
(``"Red blood cell distribution width "`` → ``"Red blood cell distribution width"``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from benchmark.config import ConfigError, option
from benchmark.data.cohort import Cohort, FeatureSpec
from benchmark.data.metadata import reference_range_of, unit_of
from benchmark.data.preprocess import (
    check_test_size,
    fit_normalisation,
    normalise_and_impute,
    stratified_split,
)
from benchmark.runtime import sha256_file

LOGGER = logging.getLogger("eagrl")
ID, DATE, AGE, SEX = "PATIENT_ID", "RE_DATE", "age", "gender"
ADMISSION, DISCHARGE, OUTCOME = "Admission time", "Discharge time", "outcome"
HEADER = [ID, DATE, AGE, SEX, ADMISSION, DISCHARGE, OUTCOME]
DROPPED_COLUMNS = ["2019-nCoV nucleic acid detection"]
N_LAB_FEATURES = 73
# The 73 lab columns of the released workbook, in file order, exactly as spelled there (some with a
# trailing space). The '2019-nCoV nucleic acid detection' column sits between 'basophil count(#)' and
# 'mean corpuscular hemoglobin ' in the file and is dropped.
LAB_COLUMNS = [
    'Hypersensitive cardiac troponinI', 'hemoglobin', 'Serum chloride', 'Prothrombin time', 'procalcitonin',
    'eosinophils(%)', 'Interleukin 2 receptor', 'Alkaline phosphatase', 'albumin', 'basophil(%)',
    'Interleukin 10', 'Total bilirubin', 'Platelet count', 'monocytes(%)', 'antithrombin', 'Interleukin 8',
    'indirect bilirubin', 'Red blood cell distribution width ', 'neutrophils(%)', 'total protein',
    'Quantification of Treponema pallidum antibodies', 'Prothrombin activity', 'HBsAg',
    'mean corpuscular volume', 'hematocrit', 'White blood cell count', 'Tumor necrosis factorα',
    'mean corpuscular hemoglobin concentration', 'fibrinogen', 'Interleukin 1β', 'Urea', 'lymphocyte count',
    'PH value', 'Red blood cell count', 'Eosinophil count', 'Corrected calcium', 'Serum potassium', 'glucose',
    'neutrophils count', 'Direct bilirubin', 'Mean platelet volume', 'ferritin', 'RBC distribution width SD',
    'Thrombin time', '(%)lymphocyte', 'HCV antibody quantification', 'D-D dimer', 'Total cholesterol',
    'aspartate aminotransferase', 'Uric acid', 'HCO3-', 'calcium',
    'Amino-terminal brain natriuretic peptide precursor(NT-proBNP)', 'Lactate dehydrogenase',
    'platelet large cell ratio ', 'Interleukin 6', 'Fibrin degradation products', 'monocytes count',
    'PLT distribution width', 'globulin', 'γ-glutamyl transpeptidase', 'International standard ratio',
    'basophil count(#)', 'mean corpuscular hemoglobin ', 'Activation of partial thromboplastin time',
    'High sensitivity C-reactive protein', 'HIV antibody quantification', 'serum sodium', 'thrombocytocrit',
    'ESR', 'glutamic-pyruvic transaminase', 'eGFR', 'creatinine',
]
STATIC_FEATURES = [
    FeatureSpec("Age", "years", "/", "static"),
    FeatureSpec("Sex", "1 = male, 0 = female", "/", "static"),
]


@dataclass
class TJHConfig:
    """Settings of the TJH cohort (a ``datasets.<name>`` entry of params.yaml with source: tjh)."""

    path: str = option(help="Path of time_series_375_prerpocess_en.xlsx (relative to the repository root or absolute).")
    source: str = option("tjh", help="Always 'tjh' for this builder.")
    domain: str = option("tjh", help="Domain label of the cohort (the population it comes from).")
    n_test: int = option(200, minimum=1, help="Test patients (200 in the paper group's code).")
    val_fraction: float = option(0.125, minimum=0.0, maximum=0.9, help="Share of the remaining patients used for validation (1/8), stratified by outcome.")
    seed: int = option(42, help="Split seed (42 in the paper group's code).")
    stratify_test: bool = option(False, help="False: the test draw is unstratified, exactly as the paper group's code (same test patients); True: stratified by outcome.")
    undated_rows: Literal["drop", "admission_day"] = option(
        "drop", help="Rows without RE_DATE: 'drop' (paper group's code; drops the 14 patients whose only row is "
                     "undated and has no lab value) or 'admission_day' (keep them: one all-missing visit, 375 patients).")
    trim_low: float = option(0.05, help="Lower quantile of the train values kept for the normalisation statistics.")
    trim_high: float = option(0.95, help="Upper quantile of the train values kept for the normalisation statistics.")


def read_workbook(path: str | Path, where: str = "params.yaml") -> pd.DataFrame:
    """Read the raw workbook and check its layout; errors name the file and the missing column."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{where}.path: TJH workbook '{path}' not found; download time_series_375_prerpocess_en.xlsx "
            f"(HAIRLAB/Pre_Surv_COVID_19 or yhzhu99/ehr-llm-benchmark) and set its path "
            f"(e.g. `make repro TJH=/path/to/time_series_375_prerpocess_en.xlsx`)")
    try:
        frame = pd.read_excel(path)
    except Exception as error:  # openpyxl raises several unrelated types for a corrupt file
        raise ConfigError(f"{where}.path: cannot read '{path}' as an Excel workbook: {error}") from error
    missing = [c for c in HEADER if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; expected the layout of "
                          f"time_series_375_prerpocess_en.xlsx (first columns {HEADER})")
    absent = [c for c in LAB_COLUMNS if c not in frame.columns]
    if absent:
        raise ConfigError(f"{path}: lab column(s) {absent[:5]}{' ...' if len(absent) > 5 else ''} missing or renamed; "
                          f"restore them (the {N_LAB_FEATURES} columns of benchmark.data.tjh.LAB_COLUMNS, as in the "
                          f"released English workbook)")
    extra = [c for c in lab_columns(frame) if c not in LAB_COLUMNS]
    if extra:
        LOGGER.warning("%s: ignoring %d column(s) that are not in the released workbook: %s", path, len(extra),
                       extra[:10])
        frame = frame.drop(columns=extra)
    if frame.empty:
        raise ConfigError(f"{path}: the workbook has its header but no rows; save the sheet with its data (the "
                          f"released file has one row per blood draw, 6120 in all)")
    check_outcomes(frame, path)
    check_dates(frame, path)
    return frame


def check_dates(frame: pd.DataFrame, path: str | Path) -> None:
    """Every filled date cell must read as a date: one that does not is an error naming the column, the workbook
    row and the cell, never a silently dropped visit. Blank ``RE_DATE`` cells stay allowed (``undated_rows``)."""
    for column in (DATE, ADMISSION, DISCHARGE):
        cells = frame[column]
        parsed = pd.to_datetime(cells, errors="coerce", format="mixed")
        bad = parsed.isna() & cells.notna() & (cells.astype(str).str.strip() != "")
        if bad.any():
            rows = frame.index[bad]
            examples = ", ".join(f"row {i + 2}: {cells[i]!r}" for i in rows[:3])
            raise ConfigError(f"{path}: column '{column}': {int(bad.sum())} cell(s) are not dates, e.g. {examples}; "
                              f"write them as dates (YYYY-MM-DD hh:mm:ss) or leave them blank")


def check_outcomes(frame: pd.DataFrame, path: str | Path) -> None:
    """Every row's ``outcome`` must be 0 or 1 and constant per patient: a blank or other value is an error
    naming the patient and the workbook row, never a label chosen silently."""
    patients = frame[ID].ffill()
    outcome = pd.to_numeric(frame[OUTCOME], errors="coerce")
    bad = ~outcome.isin([0, 1])
    if bad.any():
        rows = frame.index[bad]
        examples = ", ".join(f"row {i + 2} (patient {patients[i]}: {frame[OUTCOME][i]!r})" for i in rows[:3])
        raise ConfigError(f"{path}: column '{OUTCOME}': {int(bad.sum())} row(s) are not 0 or 1, e.g. {examples}; "
                          f"enter 1 (died) or 0 (discharged alive) in every row, or remove the patient")
    varying = outcome.groupby(patients).nunique()
    if (varying > 1).any():
        raise ConfigError(f"{path}: column '{OUTCOME}': patient(s) {varying.index[varying > 1].tolist()[:5]} have "
                          f"both 0 and 1 in different rows; give each patient one outcome")


def parse_lab_values(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Lab cells as numbers: censored forms ``<x``, ``>x``, ``<=x``, ``>=x`` become ``x`` (counted), any other
    text becomes missing (counted, and the columns logged), so no value disappears unreported."""
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    text = frame[columns].where(frame[columns].notna() & values.isna())
    censored_pattern = r"^\s*[<>]=?\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*$"
    censored = text.apply(lambda column: pd.to_numeric(column.astype("string").str.extract(censored_pattern)[0],
                                                       errors="coerce"))
    is_censored = censored.notna()
    unparsable = text.notna() & ~is_censored
    if unparsable.to_numpy().any():
        counts = unparsable.sum()
        LOGGER.warning("lab cells that are not numbers were read as missing: %s",
                       {c: int(n) for c, n in counts.items() if n})
    return values.mask(is_censored, censored), {"censored_values": int(is_censored.to_numpy().sum()),
                                                "unparsable_values": int(unparsable.to_numpy().sum())}


def lab_columns(frame: pd.DataFrame) -> list[str]:
    """The lab columns of a workbook in file order: every column but the header and the dropped ones."""
    return [c for c in frame.columns if c not in HEADER and c not in DROPPED_COLUMNS]


def daily_records(frame: pd.DataFrame, undated_rows: str = "drop") -> tuple[pd.DataFrame, dict[str, int]]:
    """Steps 1–6 of the module docstring: one row per patient and calendar day, lab values as day means.

    Returns the frame (columns ``patient``, ``day``, ``admission_day``, ``Age``, ``Sex``, ``mortality``
    and the stripped lab names, sorted by patient id then day) and counts of what was changed.
    """
    frame = frame.copy()
    labs = list(LAB_COLUMNS)
    counts: dict[str, int] = {"rows": len(frame)}
    frame[ID] = frame[ID].ffill()
    if frame[ID].isna().any():
        raise ValueError(f"the first row of the workbook has no {ID}; it cannot be forward-filled")
    counts["patients_in_file"] = int(frame[ID].nunique())
    counts["deaths_in_file"] = int(frame.groupby(ID)[OUTCOME].first().sum())
    frame[SEX] = frame[SEX].replace(2, 0)
    for column in (DATE, ADMISSION):
        frame[column] = pd.to_datetime(frame[column]).dt.normalize()
    undated = frame[DATE].isna()
    counts["undated_rows"] = int(undated.sum())
    if undated_rows == "drop":
        frame = frame[~undated]
    elif undated_rows == "admission_day":
        frame.loc[undated, DATE] = frame.loc[undated, ADMISSION]
    else:
        raise ValueError(f"undated_rows must be 'drop' or 'admission_day', got {undated_rows!r}")
    frame = frame.drop(columns=[c for c in DROPPED_COLUMNS if c in frame.columns])
    numeric = [AGE, SEX, *labs]
    values, parsed = parse_lab_values(frame, numeric)
    counts.update(parsed)
    negative = values < 0
    counts["negative_values"] = int(negative.to_numpy().sum())
    frame[numeric] = values.mask(negative)
    grouped = frame.groupby([ID, DATE], sort=True)
    daily = grouped[numeric].mean()
    daily[OUTCOME] = grouped[OUTCOME].max()
    daily[ADMISSION] = grouped[ADMISSION].min()
    daily = daily.reset_index()
    counts["patients"] = int(daily[ID].nunique())
    counts["days"] = len(daily)
    daily = daily.rename(columns={ID: "patient", DATE: "day", ADMISSION: "admission_day", AGE: "Age",
                                  SEX: "Sex", OUTCOME: "mortality", **{c: c.strip() for c in labs}})
    return daily, counts


def _paper_split(labels: np.ndarray, n_test: int, val_fraction: float, seed: int) -> np.ndarray:
    """The paper group's split: unstratified test draw, then train/val stratified by outcome."""
    n = len(labels)
    check_test_size(n_test, n)
    rest, test = train_test_split(np.arange(n), test_size=n_test, random_state=seed, stratify=None)
    rest_labels = labels[rest]
    stratify = rest_labels if np.bincount(rest_labels.astype(int), minlength=2).min() >= 2 else None
    train, val = train_test_split(rest, test_size=val_fraction, random_state=seed, stratify=stratify)
    split = np.empty(n, dtype=object)
    split[train], split[val], split[test] = "train", "val", "test"
    return split.astype(str)


def build_tjh(config: TJHConfig, name: str = "tjh", where: str = "params.yaml") -> Cohort:
    """Build the TJH cohort from the workbook at ``config.path`` (see the module docstring)."""
    if config.source != "tjh":
        raise ConfigError(f"{where}.source: expected 'tjh', got {config.source!r}")
    if not 0 < config.val_fraction < 1:
        raise ConfigError(f"{where}.val_fraction: must be in (0, 1), got {config.val_fraction}")
    if not 0 <= config.trim_low < config.trim_high <= 1:
        raise ConfigError(f"{where}.trim_low/trim_high: need 0 <= trim_low < trim_high <= 1")
    frame = read_workbook(config.path, where)
    labs = [c.strip() for c in LAB_COLUMNS]
    daily, counts = daily_records(frame, config.undated_rows)

    patients = daily["patient"].drop_duplicates().to_numpy()  # ascending id (groupby sorted), as theirs
    n, d = len(patients), len(labs)
    first = daily.groupby("patient", sort=True).first()
    n_visits = daily.groupby("patient", sort=True).size().to_numpy()
    T = int(n_visits.max())
    times = np.full((n, T), np.nan)
    raw = np.full((n, T, d), np.nan)
    row = 0
    lab_values = daily[labs].to_numpy(dtype=np.float64)
    day_numbers = (daily["day"] - daily["admission_day"]).dt.days.to_numpy(dtype=np.float64)
    counts["days_before_admission"] = int((day_numbers < 0).sum())
    if counts["days_before_admission"]:  # kept, at negative day numbers: a draw before the recorded admission
        LOGGER.warning("%s: %d patient-day(s) of %d patient(s) are dated before the admission day; they are kept at "
                       "negative day numbers (check RE_DATE and 'Admission time' if that is not expected)",
                       config.path, counts["days_before_admission"],
                       int(daily.loc[day_numbers < 0, "patient"].nunique()))
    for i, k in enumerate(n_visits):
        raw[i, :k] = lab_values[row:row + k]
        times[i, :k] = day_numbers[row:row + k]
        row += k
    labels = first["mortality"].to_numpy().astype(np.int8)[:, None]
    static = first[["Age", "Sex"]].to_numpy(dtype=np.float64)

    if config.stratify_test:
        split = stratified_split(labels[:, 0], config.n_test, config.val_fraction, config.seed)
    else:
        split = _paper_split(labels[:, 0], config.n_test, config.val_fraction, config.seed)
    stats = fit_normalisation(raw, split == "train", (config.trim_low, config.trim_high))
    values = normalise_and_impute(raw, n_visits, stats)
    features = [FeatureSpec(lab, unit_of("tjh", lab), reference_range_of("tjh", lab), "lab") for lab in labs]
    ids = np.array([str(int(p)) if float(p).is_integer() else str(p) for p in patients])
    real = np.arange(T)[None, :] < n_visits[:, None]
    counts["deaths"] = int(labels.sum())
    counts["observed_cells"] = int((~np.isnan(raw[real])).sum())
    counts["missing_rate"] = round(1.0 - counts["observed_cells"] / (int(real.sum()) * d), 4)
    cohort = Cohort(
        name=name, domain=config.domain, features=features, static_features=list(STATIC_FEATURES),
        tasks=["mortality"], ids=ids, n_visits=n_visits.astype(np.int64), times=times, raw=raw, values=values,
        mask=~np.isnan(raw), static=static, labels=labels, split=split, normalisation=stats,
        provenance={"source": "tjh", "workbook": str(config.path), "sha256": sha256_file(config.path),
                    "counts": counts, "aggregation": "mean of the non-missing draws per patient and calendar day"},
    )
    cohort.validate(source=f"{where} (TJH workbook {config.path})")
    return cohort
