"""Settings of the MIMIC-IV cohort: the ``datasets.<name>`` entry, its checks, and the shared constants.

The 17 variables, the GCS total and its parts, the static features, the tasks and :class:`MimicIVError`
(the error every reader of this package raises for input it cannot use).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from benchmark.config import ConfigError, option
from benchmark.data.cohort import FeatureSpec

EXPECTED_VERSION = "MIMIC-IV v2.2 or v3.x"
TASKS = ("mortality", "readmission")
DAY = 86_400.0  # seconds

# The 17 variables in the order of the paper group's ``labtest_features`` (and of the synthetic icu domain).
VARIABLES = [
    "Capillary refill rate", "Glascow coma scale eye opening", "Glascow coma scale motor response",
    "Glascow coma scale total", "Glascow coma scale verbal response", "Diastolic blood pressure",
    "Fraction inspired oxygen", "Glucose", "Heart Rate", "Height", "Mean blood pressure", "Oxygen saturation",
    "Respiratory rate", "Systolic blood pressure", "Temperature", "Weight", "pH",
]
GCS_TOTAL = "Glascow coma scale total"
GCS_PARTS = ("Glascow coma scale eye opening", "Glascow coma scale verbal response",
             "Glascow coma scale motor response")
STATIC_FEATURES = [
    FeatureSpec("Age", "years", "/", "static"),
    FeatureSpec("Sex", "1 = male, 0 = female", "/", "static"),
]


class MimicIVError(ConfigError):
    """MIMIC-IV input that cannot be read: the message names the table or file, the column and the fix."""


@dataclass
class MimicIVConfig:
    """Settings of the MIMIC-IV cohort (a ``datasets.<name>`` entry of params.yaml with source: mimic_iv)."""

    path: str = option(help="MIMIC-IV root holding hosp/ and icu/ (e.g. /data/mimiciv/2.2), or the paper group's preprocessed .parquet file.")
    source: str = option("mimic_iv", help="Always 'mimic_iv' for this reader.")
    input_format: Literal["auto", "raw", "parquet"] = option("auto", help="'auto': a .parquet path is the preprocessed file, a folder the raw tables; or force 'raw' / 'parquet'.")
    tasks: list[str] = option(["mortality", "readmission"], help="Labels kept, in this order: 'mortality' (in-hospital) and/or 'readmission' (30-day, death included).")
    features: list[str] = option([], help="Subset of the 17 variables shown to models, by name; empty = all 17.")
    item_map: str = option("", help="Path of an alternative item-id map in the format of benchmark/data/resources/mimic_iv_items.yaml; empty = the packaged map.")
    non_blood_items: bool = option(True, help="Keep the urine / body-fluid glucose and pH item ids of mimic3-benchmarks' map (the paper group's port does); false = blood and bedside values only.")
    min_age: float = option(18.0, help="Youngest age (years) at ICU admission kept (mimic3-benchmarks: adults).")
    exclude_transfers: bool = option(True, help="Drop ICU stays whose first and last care unit differ (mimic3-benchmarks' filter).")
    one_stay_per_admission: bool = option(True, help="Keep only admissions with exactly one (remaining) ICU stay (mimic3-benchmarks' filter).")
    stay_selection: Literal["first", "last", "random"] = option("first", help="Which eligible ICU stay represents a patient with several: the first, the last or a random one (seeded); one per patient keeps splits patient-level.")
    window_days: int = option(7, help="Days kept at the end of each stay (day-level records).")
    min_time_points: int = option(2, help="Fewest days with a value for a stay to be kept.")
    aggregate: Literal["last", "mean"] = option("last", help="Day value of numeric variables: the day's last observation or their mean (categories always take the last).")
    derive_gcs_total: bool = option(True, help="Derive the GCS total as the sum of eye + verbal + motor charted at the same time (MIMIC-IV charts no total).")
    drop_outliers: bool = option(True, help="Drop values outside each variable's plausible bounds (item map), treating them as entry / unit errors.")
    readmission_days: float = option(30.0, help="Readmission window in days after discharge: another ICU stay in (0, w] or death <= w.")
    readmission_anchor: Literal["icu_outtime", "hospital_dischtime"] = option("icu_outtime", help="Discharge time the readmission window starts from: the ICU stay's outtime or the hospital dischtime.")
    stratify_task: Literal["mortality", "readmission"] = option("mortality", help="Label the splits are stratified by (the paper group uses the outcome, in-hospital mortality).")
    n_test: int = option(200, minimum=1, help="Test patients, stratified (paper: 200).")
    max_train_val: int = option(10000, help="Patients sampled (stratified) from the rest for train + validation (paper: 10,000); 0 = all.")
    val_fraction: float = option(0.125, minimum=0.0, maximum=0.9, help="Share of the sampled train + validation patients used for validation (1/8 as in the paper's code).")
    seed: int = option(42, help="Seed of the split, the sampling and stay_selection: random.")
    block_mb: int = option(64, help="Size in MB of the CSV blocks streamed from chartevents / labevents (memory per block is a few times this).")


def check_config(config: MimicIVConfig, variables: Collection[str], where: str) -> list[str]:
    """Validate the settings against the item map's variable names; return the selected names (canonical order)."""
    if not config.tasks or any(t not in TASKS for t in config.tasks) or len(set(config.tasks)) != len(config.tasks):
        raise ConfigError(f"{where}.tasks: {config.tasks!r}; choose a non-empty list from {list(TASKS)}")
    unknown = [f for f in config.features if f not in VARIABLES]
    if unknown:
        raise ConfigError(f"{where}.features: unknown variable(s) {unknown}; choose from {VARIABLES}")
    names = [v for v in VARIABLES if (not config.features or v in config.features) and v in variables]
    if not names:
        raise ConfigError(f"{where}.features: none of {config.features} is in the item map")
    checks = [
        (config.window_days >= 1, "window_days", "must be >= 1"),
        (1 <= config.min_time_points <= config.window_days, "min_time_points", "must be between 1 and window_days"),
        (config.n_test >= 1, "n_test", "must be >= 1"),
        (config.max_train_val >= 0, "max_train_val", "must be >= 0 (0 = all)"),
        (0 < config.val_fraction < 1, "val_fraction", "must be in (0, 1)"),
        (config.readmission_days > 0, "readmission_days", "must be > 0"),
        (config.block_mb >= 1, "block_mb", "must be >= 1"),
    ]
    for ok, key, what in checks:
        if not ok:
            raise ConfigError(f"{where}.{key}={getattr(config, key)!r}: {what}")
    return names
