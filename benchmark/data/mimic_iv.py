"""The MIMIC-IV cohort: ICU stays, the 17 mimic3-benchmark variables per day, mortality and readmission.

MIMIC-IV is credentialed (PhysioNet data use agreement): the tables are read from the user's own copy,
whose path is a param (``datasets.mimic_iv.path``, set by ``eagrl configure --mimic-iv PATH`` or
``make repro MIMIC=PATH``). Nothing of it is written outside ``data/``: the cohort folder holds the
patient-level arrays, and logs / provenance carry counts and item ids only. Parser messages of malformed
files are withheld because they may quote a row.

Two inputs
----------
* **Raw tables** of MIMIC-IV v2.2 or v3.x (``PATH/hosp`` and ``PATH/icu``, ``.csv.gz`` or ``.csv``):
  ``patients``, ``admissions``, ``icustays``, ``chartevents``, ``labevents``, ``d_items``, ``d_labitems``.
  The two event tables (tens of GB) are streamed in blocks with pyarrow, filtered by item id and stay /
  subject first, and reduced to one partial aggregate per (stay, day, variable) per block, so memory grows
  with the cohort, not with the tables (a full v2.2 chartevents stays far below 24 GiB).
* **The paper group's preprocessed parquet** (yhzhu99/ehr-llm-benchmark, ``my_datasets/mimic-iv``): one
  row per record and day with ``RecordID``, ``RecordTime``, ``Outcome``, ``LOS``, ``Readmission``,
  ``Sex``, ``Age`` and the 17 variables. Chosen when the path is a ``.parquet`` file or
  ``input_format: parquet``; extraction is skipped and the values are used as they are (each record is one
  patient, as in their code).

Extraction from the raw tables (the paper group's MIMIC-IV port of mimic3-benchmarks, yhzhu99/ehr-datasets,
plus their day-level preprocessing)
-------------------------------------------------------------------------------------------------------
1. **Labels on every ICU stay** (before any filter, so that later stays count):

   * ``mortality`` — in-hospital death: ``admissions.hospital_expire_flag`` = 1 for the stay's admission
     (the port tests whether ``deathtime`` or ``dod`` falls between ``admittime`` and ``dischtime``; the
     flag is MIMIC-IV's own record of the same event and does not depend on the date-only ``dod``).
   * ``readmission`` — 30-day readmission: another ICU stay of the same patient whose ``intime`` lies in
     (0, 30] days after discharge, **or** death within 30 days of discharge with no such stay, i.e. a death
     time <= discharge + 30 days (this includes deaths in hospital). Discharge is the stay's ICU ``outtime``
     (``readmission_anchor: hospital_dischtime`` uses the admission's ``dischtime``). The death time is the
     admission's ``deathtime`` when the patient died in hospital, else ``patients.dod`` (a date, read as
     00:00 of that day; MIMIC-IV records out-of-hospital deaths up to one year after the last discharge).
2. **Candidate stays** (mimic3-benchmarks' filters, as in the port): age at ICU admission >= 18, with age =
   ``anchor_age + year(intime) - anchor_year`` (MIMIC-IV's documented rule; the port used ``anchor_age``
   alone); no care-unit transfer (``first_careunit == last_careunit``); admissions with exactly one ICU
   stay left. Sex is 1 = male, 0 = female.
3. **Events**: chartevents by ``stay_id``, labevents by ``subject_id`` and time, both kept only between
   ``intime`` and ``outtime``. Item ids → variables from ``resources/mimic_iv_items.yaml`` (mimic3-benchmarks'
   map restricted to ids that exist in MIMIC-IV, plus MIMIC-IV equivalents; see its header). Value: the
   categorical text table first (GCS, capillary refill), else ``valuenum``, else the number in ``value``.
4. **Units** (per item, documented in the YAML): °F → °C; Celsius items with values >= 79 were charted in
   °F and are converted (mimic3-benchmarks' rule); inch → cm; lb → kg; FiO2 > 1 is a percentage → /100;
   saturation <= 1 is a fraction → x100. Converted values are rounded to 2 decimals.
5. **Outliers**: values outside a variable's plausible ``bounds`` (YAML) are dropped (missing), not clipped.
6. **GCS**: the eye / verbal / motor scores are kept as ordinal categories (kind ``categorical``). MIMIC-IV
   charts no GCS total, so the total is derived as the sum of the three components charted at the same time.
7. **Days**: day ``d`` of a stay is ``floor((charttime - intime) / 24 h)``; the day's value is the last
   observation of that day (``aggregate: mean`` averages numeric variables; categories always take the
   last). Only the last ``window_days`` (7) days of the stay are kept: days ``d > last_day - 7``, with
   ``last_day`` the day of ``outtime``. Visit times are these day numbers.
8. **Patients**: stays with at least ``min_time_points`` (2) days carrying a value are eligible; one stay per
   patient (``stay_selection``: the first by default) keeps splits patient-level.

Split (as in the paper group's ``preprocess_mimic.py``)
------------------------------------------------------
200 test patients stratified by the outcome (in-hospital mortality), seed 42 — the exact
``train_test_split`` call of their code over records in ascending id order; then 10,000 of the rest sampled
stratified, split 7/8 train and 1/8 validation stratified. Patients not sampled are left out of the cohort
(their count is in the provenance). Normalisation and imputation: :mod:`benchmark.data.preprocess`.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import yaml
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from benchmark.config import ConfigError, option
from benchmark.data.cohort import FEATURE_KINDS, Cohort, FeatureSpec
from benchmark.data.metadata import reference_range_of, unit_of
from benchmark.data.preprocess import fit_normalisation, normalise_and_impute, stratified_split
from benchmark.runtime import LOGGER

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

# Raw tables: module folder and the columns this reader uses (names of the official MIMIC-IV schema).
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "patients": ("hosp", ("subject_id", "gender", "anchor_age", "anchor_year", "dod")),
    "admissions": ("hosp", ("subject_id", "hadm_id", "admittime", "dischtime", "deathtime",
                            "hospital_expire_flag")),
    "icustays": ("icu", ("subject_id", "hadm_id", "stay_id", "first_careunit", "last_careunit", "intime",
                         "outtime")),
    "chartevents": ("icu", ("stay_id", "charttime", "itemid", "value", "valuenum")),
    "labevents": ("hosp", ("subject_id", "charttime", "itemid", "value", "valuenum")),
    "d_items": ("icu", ("itemid", "label", "linksto")),
    "d_labitems": ("hosp", ("itemid", "label")),
}
EVENT_TYPES = {
    "chartevents": {"stay_id": pa.int64(), "charttime": pa.timestamp("s"), "itemid": pa.int64(),
                    "value": pa.string(), "valuenum": pa.float64()},
    "labevents": {"subject_id": pa.int64(), "charttime": pa.timestamp("s"), "itemid": pa.int64(),
                  "value": pa.string(), "valuenum": pa.float64()},
}
# Columns of the paper group's preprocessed parquet (besides the 17 variables).
PARQUET_ID, PARQUET_TIME = "RecordID", "RecordTime"
PARQUET_LABELS = {"mortality": "Outcome", "readmission": "Readmission"}
PARQUET_STATIC = ("Age", "Sex")


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


# --------------------------------------------------------------------------------------------- item map
@dataclass(frozen=True)
class Item:
    """One MIMIC-IV item id mapped to a variable, with the unit it is charted in and its conversion."""

    itemid: int
    table: Literal["chartevents", "labevents"]
    variable: str
    label: str
    unit: str
    convert: str
    origin: str
    fluid: str = "blood"


@dataclass(frozen=True)
class Variable:
    """One of the 17 variables: kind, plausible bounds, category scores and its items."""

    name: str
    kind: str
    bounds: tuple[float, float]
    categories: dict[str, float]
    items: tuple[Item, ...]


def _f_to_c(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 50, (v - 32.0) * 5.0 / 9.0, v)


def _c_or_f(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 79, (v - 32.0) * 5.0 / 9.0, v)


CONVERTERS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "none": None,
    "F_to_C": _f_to_c,
    "C_or_F": _c_or_f,
    "in_to_cm": lambda v: v * 2.54,
    "lb_to_kg": lambda v: v * 0.453592,
    "to_fraction": lambda v: np.where(v > 1, v / 100.0, v),
    "to_percent": lambda v: np.where(v <= 1, v * 100.0, v),
}


def load_item_map(path: str | Path | None = None) -> dict[str, Variable]:
    """Read and check an item-id map (default: the packaged ``resources/mimic_iv_items.yaml``).

    Returns the variables in the canonical order of :data:`VARIABLES`. Errors name the file and the key:
    unknown variables, kinds, tables or conversions, malformed bounds, and an item id mapped twice.
    """
    if path:
        source = str(path)
        if not Path(path).exists():
            raise ConfigError(f"item_map {path}: file not found (copy benchmark/data/resources/mimic_iv_items.yaml)")
        text = Path(path).read_text("utf-8")
    else:
        source = "benchmark/data/resources/mimic_iv_items.yaml"
        text = resources.files("benchmark.data").joinpath("resources/mimic_iv_items.yaml").read_text("utf-8")
    table = (yaml.safe_load(text) or {}).get("variables")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{source}: needs a mapping 'variables: {{name: {{kind, bounds, items}}}}'")
    unknown = sorted(set(table) - set(VARIABLES))
    if unknown:
        raise ConfigError(f"{source}: variables {unknown} are not among the 17 MIMIC-IV variables {VARIABLES}")
    seen: dict[int, str] = {}
    out: dict[str, Variable] = {}
    for name in [v for v in VARIABLES if v in table]:
        spec, where = table[name] or {}, f"{source}: variables.{name}"
        kind = spec.get("kind")
        if kind not in FEATURE_KINDS or kind == "static":
            raise ConfigError(f"{where}.kind: '{kind}' is not one of lab, vital, categorical")
        bounds = spec.get("bounds")
        if not (isinstance(bounds, list) and len(bounds) == 2 and float(bounds[0]) < float(bounds[1])):
            raise ConfigError(f"{where}.bounds: expected [low, high] with low < high, got {bounds!r}")
        categories = {str(k).strip().lower(): float(v) for k, v in (spec.get("categories") or {}).items()}
        items = []
        for i, raw in enumerate(spec.get("items") or []):
            here = f"{where}.items[{i}]"
            if raw.get("table") not in ("chartevents", "labevents"):
                raise ConfigError(f"{here}.table: '{raw.get('table')}' is not chartevents or labevents")
            if raw.get("convert", "none") not in CONVERTERS:
                raise ConfigError(f"{here}.convert: '{raw.get('convert')}' is not one of {sorted(CONVERTERS)}")
            itemid = int(raw["itemid"])
            if itemid in seen:
                raise ConfigError(f"{here}.itemid: {itemid} is already mapped to '{seen[itemid]}' (an item maps to one variable)")
            seen[itemid] = name
            items.append(Item(itemid, raw["table"], name, str(raw.get("label", "")), str(raw.get("unit", "")),
                              raw.get("convert", "none"), str(raw.get("origin", "")), raw.get("fluid", "blood")))
        out[name] = Variable(name, kind, (float(bounds[0]), float(bounds[1])), categories, tuple(items))
    return out


@dataclass(frozen=True)
class _Catalogue:
    """The item map compiled for one run: variable codes are positions in ``names``."""

    names: list[str]
    kinds: list[str]
    bounds: np.ndarray  # (v, 2)
    categories: dict[int, dict[str, float]]
    code: dict[int, int]  # itemid -> variable code
    convert: dict[int, str]  # itemid -> converter name
    table: dict[int, str]  # itemid -> table

    def itemids(self, table: str) -> list[int]:
        return sorted(i for i, t in self.table.items() if t == table)


def _catalogue(variables: dict[str, Variable], names: list[str], config: MimicIVConfig) -> _Catalogue:
    """Compile the variables ``names`` (selected + those needed to derive the GCS total)."""
    needed = list(names)
    if GCS_TOTAL in names and config.derive_gcs_total:
        needed += [part for part in GCS_PARTS if part not in needed]
    needed = [v for v in VARIABLES if v in needed and v in variables]
    code, convert, table = {}, {}, {}
    for j, name in enumerate(needed):
        for item in variables[name].items:
            if not config.non_blood_items and item.fluid != "blood":
                continue
            code[item.itemid], convert[item.itemid], table[item.itemid] = j, item.convert, item.table
    categories = {j: variables[n].categories for j, n in enumerate(needed) if variables[n].kind == "categorical"}
    return _Catalogue(needed, [variables[n].kind for n in needed],
                      np.array([variables[n].bounds for n in needed], dtype=float).reshape(-1, 2),
                      categories, code, convert, table)


# --------------------------------------------------------------------------------------------- raw files
def check_input(path: str | Path, input_format: str = "auto") -> Literal["raw", "parquet"]:
    """Which input ``path`` is ('raw' tables or the 'parquet'), checking that everything needed is there.

    Used by ``eagrl configure --mimic-iv`` to fail early, and by the builder.
    """
    path = Path(path)
    if not path.exists():
        raise MimicIVError(f"MIMIC-IV path {path}: not found (give the folder holding hosp/ and icu/, or the .parquet file)")
    kind = input_format
    if kind == "auto":
        kind = "parquet" if path.name.endswith(".parquet") else "raw"
    if kind == "raw":
        if not path.is_dir():
            raise MimicIVError(f"MIMIC-IV path {path}: a file, but raw input needs the folder holding hosp/ and icu/ "
                               f"({EXPECTED_VERSION}); for the paper group's preprocessed file use a .parquet path "
                               f"or input_format: parquet")
        problems = []
        for table in TABLES:
            try:
                table_path(path, table)
            except MimicIVError as error:
                problems.append((table, str(error)))
        if len(problems) == 1:
            raise MimicIVError(problems[0][1])
        if problems:
            missing = ", ".join(f"{TABLES[t][0]}/{t}.csv.gz" for t, _ in problems)
            raise MimicIVError(f"MIMIC-IV path {path}: {len(problems)} of {len(TABLES)} tables not found: {missing}. "
                               + problems[0][1].split(". ", 1)[1])
    return kind  # type: ignore[return-value]


def table_path(root: str | Path, table: str) -> Path:
    """``root/<module>/<table>.csv.gz`` (or ``.csv``); a missing table names the file and the version."""
    root = Path(root)
    module, _ = TABLES[table]
    for suffix in (".csv.gz", ".csv"):
        candidate = root / module / f"{table}{suffix}"
        if candidate.exists():
            return candidate
    hint = ""
    if (root / "core").is_dir():
        hint = " This folder has a core/ module, the layout of MIMIC-IV v1.0; v2.0 moved its tables into hosp/."
    elif any((root / f"{table}{suffix}").exists() for suffix in (".csv.gz", ".csv")):
        hint = f" {table} lies directly in {root}: keep the hosp/ and icu/ sub-folders as PhysioNet ships them."
    raise MimicIVError(
        f"MIMIC-IV table '{table}' not found: expected {root / module / table}.csv.gz (or .csv). This reader "
        f"expects the {EXPECTED_VERSION} layout, with the hosp/ and icu/ modules under the configured path.{hint}"
    )


def table_columns(path: Path) -> list[str]:
    """Column names from the header line of a CSV(.gz) file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            return [name.strip() for name in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MimicIVError(f"{path}: cannot read the header line ({type(error).__name__}); the file is not a "
                           f"MIMIC-IV CSV(.gz) table") from None


def check_columns(path: Path, table: str) -> None:
    """Raise naming the table, the first missing column and the expected MIMIC-IV version."""
    _, required = TABLES[table]
    present = table_columns(path)
    missing = [name for name in required if name not in present]
    if missing:
        more = f" (missing too: {missing[1:]})" if len(missing) > 1 else ""
        raise MimicIVError(
            f"MIMIC-IV table '{table}' ({path}) has no column '{missing[0]}'{more}. This reader expects the "
            f"{EXPECTED_VERSION} schema, in which {table} has the columns {list(required)}; found {present}."
        )


INCOMPLETE_HINT = ("A truncated or corrupt .csv.gz (an interrupted download or copy) fails this way: download or copy "
                   "it again and check it against PhysioNet's SHA256SUMS.txt.")


def _read_small(path: Path, table: str) -> pd.DataFrame:
    """A dimension table (patients, admissions, icustays, dictionaries) with just the needed columns."""
    check_columns(path, table)
    _, required = TABLES[table]
    try:
        return pd.read_csv(path, usecols=list(required), low_memory=False)
    except EOFError:  # a .csv.gz cut short (an interrupted download or copy)
        raise MimicIVError(f"MIMIC-IV table '{table}' ({path}): the compressed file ends early. {INCOMPLETE_HINT}") from None
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise MimicIVError(f"MIMIC-IV table '{table}' ({path}) could not be parsed ({type(error).__name__}; the "
                           f"parser message is withheld because it may quote a row)") from None


def _seconds(series: pd.Series) -> np.ndarray:
    """Timestamps (strings) → float seconds since the epoch, NaN where missing or malformed."""
    stamps = pd.to_datetime(series, errors="coerce").astype("datetime64[s]")
    out = stamps.to_numpy().astype("int64").astype(float)
    out[stamps.isna().to_numpy()] = np.nan
    return out


def _stream(path: Path, table: str, block_mb: int) -> Iterator[pa.RecordBatch]:
    """Blocks of an event table (only the needed columns, fixed types) with a progress bar in file bytes."""
    check_columns(path, table)
    types = EVENT_TYPES[table]
    source = pa.OSFile(str(path))
    stream = pa.CompressedInputStream(source, "gzip") if path.name.endswith(".gz") else source
    withheld = "the parser message is withheld because it may quote a row"
    try:
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(block_size=block_mb << 20, use_threads=True),
            parse_options=pa_csv.ParseOptions(newlines_in_values=table == "labevents"),
            convert_options=pa_csv.ConvertOptions(include_columns=list(types), column_types=types,
                                                  strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
    except (pa.ArrowException, OSError, ValueError) as error:
        source.close()
        raise MimicIVError(f"MIMIC-IV table '{table}' ({path}) could not be opened ({type(error).__name__}; "
                           f"{withheld}). {INCOMPLETE_HINT}") from None
    done = 0
    with tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, unit_divisor=1024,
              desc=f"mimic_iv {table}", mininterval=2.0) as bar:
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowException, OSError, ValueError) as error:
                    raise MimicIVError(
                        f"MIMIC-IV table '{table}' ({path}) could not be parsed after about {done:,} bytes "
                        f"({type(error).__name__}; {withheld}). Is it the {EXPECTED_VERSION} {table} table? "
                        f"{INCOMPLETE_HINT}") from None
                position = source.tell()
                bar.update(position - done)
                done = position
                yield batch
        finally:
            source.close()


# --------------------------------------------------------------------------------------------- labels
def label_stays(icustays: pd.DataFrame, admissions: pd.DataFrame, patients: pd.DataFrame,
                config: MimicIVConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """Every ICU stay with times (s), age, sex, care units and both labels (see the module docstring).

    Labels are computed on all stays of the table, before any filter, so that a readmission to a stay that
    is later filtered out still counts. Returns the frame and counts of stays dropped for missing links.
    """
    stays = icustays.copy()
    stays["intime_s"], stays["outtime_s"] = _seconds(stays["intime"]), _seconds(stays["outtime"])
    stays["year"] = pd.to_datetime(stays["intime"], errors="coerce").dt.year
    adm = admissions[["hadm_id", "dischtime", "deathtime", "hospital_expire_flag"]].drop_duplicates("hadm_id")
    pat = patients[["subject_id", "gender", "anchor_age", "anchor_year", "dod"]].drop_duplicates("subject_id")
    stays = stays.merge(adm, on="hadm_id", how="left").merge(pat, on="subject_id", how="left")
    counts = {"icu_stays": len(stays)}
    complete = (np.isfinite(stays["intime_s"]) & np.isfinite(stays["outtime_s"])
                & stays["hospital_expire_flag"].notna() & stays["anchor_age"].notna())
    stays = stays[complete.to_numpy()].reset_index(drop=True)
    counts["icu_stays_with_times_admission_and_patient"] = len(stays)

    stays["age"] = stays["anchor_age"].astype(float) + (stays["year"] - stays["anchor_year"]).astype(float)
    stays["sex"] = stays["gender"].map({"M": 1.0, "F": 0.0})
    stays["mortality"] = (stays["hospital_expire_flag"].astype(int) == 1).astype(np.int8)

    death_in_hospital = admissions.assign(t=_seconds(admissions["deathtime"])).groupby("subject_id")["t"].min()
    death_date = pd.Series(_seconds(patients["dod"]), index=patients["subject_id"]).groupby(level=0).min()
    death = death_in_hospital.reindex(stays["subject_id"]).to_numpy()
    death = np.where(np.isnan(death), death_date.reindex(stays["subject_id"]).to_numpy(), death)

    anchor = stays["outtime_s"].to_numpy() if config.readmission_anchor == "icu_outtime" else _seconds(stays["dischtime"])
    anchor = np.where(np.isnan(anchor), stays["outtime_s"].to_numpy(), anchor)
    # The next ICU stay of the same patient that starts strictly after the anchor, among *all* stays of
    # the table (also those dropped above for missing links).
    left = pd.DataFrame({"row": np.arange(len(stays)), "subject_id": stays["subject_id"].to_numpy(),
                         "anchor": anchor}).sort_values("anchor", kind="stable")
    right = pd.DataFrame({"subject_id": icustays["subject_id"].to_numpy(),
                          "next_in": _seconds(icustays["intime"])}).dropna().sort_values("next_in", kind="stable")
    nxt = pd.merge_asof(left, right, left_on="anchor", right_on="next_in", by="subject_id",
                        direction="forward", allow_exact_matches=False).sort_values("row")
    window = config.readmission_days * DAY
    gap = nxt["next_in"].to_numpy() - anchor
    readmitted = (gap > 0) & (gap <= window)
    died = death <= anchor + window
    stays["readmission"] = (readmitted | died).astype(np.int8)
    stays["death_s"] = death
    return stays, counts


def candidate_stays(stays: pd.DataFrame, config: MimicIVConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """mimic3-benchmarks' stay filters in the port's order: transfers, one stay per admission, age."""
    counts = {}
    if config.exclude_transfers:
        stays = stays[(stays["first_careunit"] == stays["last_careunit"]).to_numpy()]
        counts["without_care_unit_transfer"] = len(stays)
    if config.one_stay_per_admission:
        per_admission = stays.groupby("hadm_id")["stay_id"].transform("size")
        stays = stays[(per_admission == 1).to_numpy()]
        counts["single_icu_stay_admissions"] = len(stays)
    stays = stays[(stays["age"] >= config.min_age).to_numpy()]
    counts[f"age_at_least_{config.min_age:g}"] = len(stays)
    stays = stays.copy()
    stays["last_day"] = np.floor((stays["outtime_s"] - stays["intime_s"]) / DAY)
    stays["first_day"] = stays["last_day"] - config.window_days + 1
    return stays.reset_index(drop=True), counts


# --------------------------------------------------------------------------------------------- events
def _observation_values(frame: pd.DataFrame, cat: _Catalogue, drop_outliers: bool) -> tuple[np.ndarray, np.ndarray]:
    """Variable code and cleaned value of each event row (NaN = unusable), following the module steps 3-5."""
    itemid = frame["itemid"].to_numpy()
    var = pd.Series(itemid).map(cat.code).to_numpy(dtype=np.int64)
    value = frame["valuenum"].to_numpy(dtype=float, na_value=np.nan).copy()
    text = frame["value"]
    missing = np.isnan(value)
    if missing.any():
        value[missing] = pd.to_numeric(text[missing], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    for j, table in cat.categories.items():
        rows = var == j
        if not rows.any():
            continue
        words = text[rows].astype("string").str.strip().str.lower()
        looked_up = words.map(table).to_numpy(dtype=float, na_value=np.nan)
        leading = _leading_number(words)
        current = value[rows]
        value[rows] = np.where(~np.isnan(looked_up), looked_up, np.where(~np.isnan(current), current, leading))
    conversion = pd.Series(itemid).map(cat.convert).to_numpy()
    for name, function in CONVERTERS.items():
        rows = conversion == name
        if function is None or not rows.any():
            continue
        value[rows] = np.round(function(value[rows]), 2)
    if drop_outliers:
        low, high = cat.bounds[var, 0], cat.bounds[var, 1]
        with np.errstate(invalid="ignore"):
            value[(value < low) | (value > high)] = np.nan
    return var, value


def _leading_number(words: pd.Series) -> np.ndarray:
    """The integer a text starts with ('4 Spontaneously' -> 4), NaN otherwise."""
    digits = words.str.extract(r"^(\d+)", expand=False)
    return pd.to_numeric(digits, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _partial(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (stay, day, variable): last time and value, sum and count (combinable across blocks)."""
    frame = frame.sort_values("t", kind="stable")
    grouped = frame.groupby(["stay_id", "day", "var"], sort=False)
    return grouped.agg(t=("t", "last"), last=("value", "last"), sum=("value", "sum"),
                       count=("value", "count")).reset_index()


def _events(path: Path, table: str, stays: pd.DataFrame, cat: _Catalogue, config: MimicIVConfig,
            keep_raw: set[int]) -> tuple[list[pd.DataFrame], list[pd.DataFrame], dict[str, int]]:
    """Stream one event table: day-level partial aggregates, raw rows of ``keep_raw`` codes, counts."""
    itemids = pa.array(cat.itemids(table), type=pa.int64())
    key = "stay_id" if table == "chartevents" else "subject_id"
    keys = pa.array(np.unique(stays[key].to_numpy()).astype(np.int64), type=pa.int64())
    windows = stays[["stay_id", "subject_id", "intime_s", "outtime_s", "first_day"]]
    partials, raw_rows = [], []
    counts = {"rows_matched": 0, "values_kept": 0}
    if len(itemids) == 0 or len(keys) == 0:
        return partials, raw_rows, counts
    for batch in _stream(path, table, config.block_mb):
        batch = batch.filter(pc.is_in(batch.column("itemid"), value_set=itemids))
        batch = batch.filter(pc.is_in(batch.column(key), value_set=keys))
        if batch.num_rows == 0:
            continue
        t = pc.cast(batch.column("charttime"), pa.int64()).to_numpy(zero_copy_only=False)
        frame = batch.drop_columns(["charttime"]).to_pandas()
        frame["t"] = np.where(batch.column("charttime").is_null().to_numpy(zero_copy_only=False), np.nan, t)
        frame = frame.merge(windows, on=key, how="inner")
        inside = (frame["t"] >= frame["intime_s"]) & (frame["t"] <= frame["outtime_s"])
        frame = frame[inside.to_numpy()].reset_index(drop=True)
        frame["day"] = np.floor((frame["t"] - frame["intime_s"]) / DAY)
        frame = frame[(frame["day"] >= frame["first_day"]).to_numpy()].reset_index(drop=True)
        counts["rows_matched"] += len(frame)
        if frame.empty:
            continue
        var, value = _observation_values(frame, cat, config.drop_outliers)
        obs = pd.DataFrame({"stay_id": frame["stay_id"].to_numpy(), "day": frame["day"].to_numpy(),
                            "var": var, "t": frame["t"].to_numpy(), "value": value})
        obs = obs[~np.isnan(value)]
        counts["values_kept"] += len(obs)
        if keep_raw:
            held = obs["var"].isin(keep_raw).to_numpy()
            if held.any():
                raw_rows.append(obs[held])
        partials.append(_partial(obs))
    return partials, raw_rows, counts


def _gcs_totals(rows: list[pd.DataFrame], cat: _Catalogue) -> pd.DataFrame:
    """GCS total = eye + verbal + motor charted at the same time (one row per complete triple)."""
    parts = [cat.names.index(p) for p in GCS_PARTS]
    if not rows:
        return pd.DataFrame(columns=["stay_id", "day", "var", "t", "value"])
    frame = pd.concat(rows, ignore_index=True)
    wide = frame.pivot_table(index=["stay_id", "day", "t"], columns="var", values="value", aggfunc="last")
    if any(p not in wide.columns for p in parts):
        return pd.DataFrame(columns=["stay_id", "day", "var", "t", "value"])
    wide = wide.dropna(subset=parts)
    total = wide[parts].sum(axis=1)
    return pd.DataFrame({"stay_id": wide.index.get_level_values("stay_id"), "day": wide.index.get_level_values("day"),
                         "var": cat.names.index(GCS_TOTAL), "t": wide.index.get_level_values("t"),
                         "value": total.to_numpy()})


def _day_values(partials: list[pd.DataFrame], cat: _Catalogue, aggregate: str) -> pd.DataFrame:
    """Combine the partial aggregates into one value per (stay, day, variable)."""
    if not partials:
        return pd.DataFrame({"record": pd.Series(dtype=np.int64), "day": pd.Series(dtype=float),
                             "feature": pd.Series(dtype=str), "value": pd.Series(dtype=float)})
    frame = pd.concat(partials, ignore_index=True).sort_values("t", kind="stable")
    frame = frame.groupby(["stay_id", "day", "var"], sort=True).agg(
        last=("last", "last"), sum=("sum", "sum"), count=("count", "sum")).reset_index()
    categorical = np.isin(frame["var"].to_numpy(), list(cat.categories))
    mean = frame["sum"].to_numpy() / frame["count"].to_numpy()
    value = frame["last"].to_numpy() if aggregate == "last" else np.where(categorical, frame["last"], mean)
    names = np.array(cat.names, dtype=object)
    return pd.DataFrame({"record": frame["stay_id"].to_numpy(), "day": frame["day"].to_numpy(),
                         "feature": names[frame["var"].to_numpy()], "value": value.astype(float)})


def _check_dictionaries(root: Path, cat: _Catalogue) -> dict[str, list[int]]:
    """Item ids of the map that this MIMIC-IV release does not define (reported, not fatal)."""
    report: dict[str, list[int]] = {}
    for table, dictionary in (("chartevents", "d_items"), ("labevents", "d_labitems")):
        wanted = cat.itemids(table)
        if not wanted:
            continue
        defined = set(_read_small(table_path(root, dictionary), dictionary)["itemid"].astype(int))
        missing = sorted(set(wanted) - defined)
        if len(missing) == len(wanted):
            raise MimicIVError(f"none of the {len(wanted)} {table} item ids of the item map is in {dictionary}: "
                               f"is {root} a {EXPECTED_VERSION} release (MIMIC-III ids differ)?")
        if missing:
            LOGGER.warning("mimic_iv: %d %s item id(s) of the map are not in %s and match nothing: %s",
                           len(missing), table, dictionary, missing)
        report[f"{table}_itemids_not_in_{dictionary}"] = missing
    return report


def extract_raw(root: str | Path, config: MimicIVConfig, variables: dict[str, Variable],
                names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Candidate stays (labels, age, sex) and their day-level values from the raw MIMIC-IV tables.

    Returns ``records`` (one row per candidate stay, index ``stay_id``), ``observations`` (record, day,
    feature, value) and a provenance dict with counts and unknown item ids.
    """
    root = Path(root)
    paths = {table: table_path(root, table) for table in TABLES}  # every table first: fail before hours of reading
    for table, path in paths.items():
        check_columns(path, table)
    cat = _catalogue(variables, names, config)
    provenance: dict[str, Any] = {"item_ids_not_defined": _check_dictionaries(root, cat)}
    stays, counts = label_stays(_read_small(paths["icustays"], "icustays"),
                                _read_small(paths["admissions"], "admissions"),
                                _read_small(paths["patients"], "patients"), config)
    stays, filtered = candidate_stays(stays, config)
    counts.update(filtered)
    derive = GCS_TOTAL in cat.names and config.derive_gcs_total
    keep_raw = {cat.names.index(p) for p in GCS_PARTS} if derive else set()
    partials, raw_rows = [], []
    for table in ("chartevents", "labevents"):
        part, rows, table_counts = _events(paths[table], table, stays, cat, config, keep_raw)
        partials += part
        raw_rows += rows
        counts.update({f"{table}_{k}": v for k, v in table_counts.items()})
    if derive:
        totals = _gcs_totals(raw_rows, cat)
        counts["gcs_totals_derived"] = len(totals)
        if len(totals):
            partials.append(_partial(totals))
    observations = _day_values(partials, cat, config.aggregate)
    observations = observations[observations["feature"].isin(names)]
    records = pd.DataFrame({"subject": stays["subject_id"].to_numpy(), "order": stays["intime_s"].to_numpy(),
                            "age": stays["age"].to_numpy(float), "sex": stays["sex"].to_numpy(float),
                            "mortality": stays["mortality"].to_numpy(), "readmission": stays["readmission"].to_numpy()},
                           index=pd.Index(stays["stay_id"].to_numpy(), name="record"))
    provenance["counts"] = counts
    return records, observations, provenance


# --------------------------------------------------------------------------------------------- parquet
def read_preprocessed(path: str | Path, config: MimicIVConfig, variables: dict[str, Variable],
                      names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Records and day-level observations from the paper group's preprocessed parquet.

    ``RecordTime`` may be a day number or a date (then days since the record's first date). Labels come
    from the record's first row (constant per record in their file); records without a label are dropped.
    Values are taken as they are, except that categorical text is turned into its score.
    """
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise MimicIVError(f"{path}: cannot be read as parquet ({type(error).__name__}); give the file written "
                           f"by the paper group's MIMIC-IV preprocessor or the raw tables folder") from None
    required = [PARQUET_ID, PARQUET_TIME, *PARQUET_STATIC,
                *sorted({PARQUET_LABELS[t] for t in (*config.tasks, config.stratify_task)}), *names]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise MimicIVError(
            f"{path}: no column '{missing[0]}'" + (f" (missing too: {missing[1:]})" if len(missing) > 1 else "")
            + f". The paper group's preprocessed MIMIC-IV parquet has one row per record and day with "
              f"{PARQUET_ID}, {PARQUET_TIME}, Outcome, LOS, Readmission, Sex, Age and the 17 variables {VARIABLES}."
        )
    frame = frame[required].copy()
    frame[PARQUET_TIME] = _record_days(frame)
    frame = frame.sort_values([PARQUET_ID, PARQUET_TIME], kind="stable").reset_index(drop=True)
    first = frame.groupby(PARQUET_ID, sort=True).first()
    counts: dict[str, int] = {"records": len(first)}
    labels = {task: pd.to_numeric(first[column], errors="coerce") for task, column in PARQUET_LABELS.items()
              if column in first.columns}
    labelled = np.logical_and.reduce([labels[t].notna().to_numpy() for t in labels])
    counts["records_with_labels"] = int(labelled.sum())
    sex = pd.to_numeric(first["Sex"], errors="coerce")
    sex = sex.where(sex.notna(), first["Sex"].map({"M": 1.0, "F": 0.0}))
    records = pd.DataFrame({"subject": first.index.to_numpy(), "order": np.zeros(len(first)),
                            "age": pd.to_numeric(first["Age"], errors="coerce").to_numpy(float),
                            "sex": sex.to_numpy(dtype=float, na_value=np.nan),
                            **{t: labels[t].fillna(-1).to_numpy().astype(np.int8) for t in labels}},
                           index=pd.Index(first.index, name="record"))[labelled]
    long = frame.melt(id_vars=[PARQUET_ID, PARQUET_TIME], value_vars=names, var_name="feature", value_name="raw")
    value = pd.to_numeric(long["raw"], errors="coerce").to_numpy(dtype=float, na_value=np.nan).copy()
    for name in names:
        if variables[name].kind != "categorical":
            continue
        rows = (long["feature"] == name).to_numpy() & np.isnan(value)
        if rows.any():
            words = long.loc[rows, "raw"].astype("string").str.strip().str.lower()
            looked_up = words.map(variables[name].categories).to_numpy(dtype=float, na_value=np.nan)
            leading = _leading_number(words)
            value[rows] = np.where(np.isnan(looked_up), leading, looked_up)
    long = pd.DataFrame({"record": long[PARQUET_ID].to_numpy(), "day": long[PARQUET_TIME].to_numpy(float),
                         "feature": long["feature"].to_numpy(), "value": value})
    long = long[~np.isnan(value)]
    # One value per (record, day, feature): the day's last row (rows are in time order).
    long = long.groupby(["record", "day", "feature"], sort=True).last().reset_index()
    last_day = frame.groupby(PARQUET_ID)[PARQUET_TIME].max()
    long = long[(long["day"].to_numpy() > last_day.reindex(long["record"]).to_numpy() - config.window_days)]
    return records, long[long["record"].isin(records.index)], {"counts": counts}


def _record_days(frame: pd.DataFrame) -> np.ndarray:
    """``RecordTime`` as day numbers: numbers stay, dates become days since the record's first date."""
    column = frame[PARQUET_TIME]
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=float)
    stamps = pd.to_datetime(column, errors="coerce")
    if stamps.isna().all() and column.notna().any():
        raise MimicIVError(f"column {PARQUET_TIME} holds neither day numbers nor dates")
    seconds = stamps.astype("datetime64[s]").to_numpy().astype("int64").astype(float)
    start = pd.Series(seconds).groupby(frame[PARQUET_ID].to_numpy()).transform("min").to_numpy()
    return np.floor((seconds - start) / DAY)


# --------------------------------------------------------------------------------------------- cohort
def paper_split(labels: np.ndarray, n_test: int, max_train_val: int, val_fraction: float, seed: int) -> np.ndarray:
    """'test' / 'train' / 'val' per record, or '' for records not sampled (the paper group's procedure).

    The test draw is :func:`stratified_split`'s (their ``train_test_split(records, test_size=200,
    random_state=42, stratify=outcome)``). When more than ``max_train_val`` records remain, that many are
    sampled stratified (their second ``train_test_split``) and split 7/8 : 1/8 stratified; otherwise the
    rest is split as by :func:`stratified_split`.
    """
    labels = np.asarray(labels).astype(int)
    if max_train_val <= 0 or len(labels) - n_test <= max_train_val:
        return stratified_split(labels, n_test, val_fraction, seed)
    # The same first call as stratified_split (so the same test patients), keeping its shuffled rest as
    # the paper group's code does, so that the sample below is theirs too.
    rest, test = train_test_split(np.arange(len(labels)), test_size=n_test, random_state=seed,
                                  stratify=_stratify(labels))
    sampled = train_test_split(rest, test_size=max_train_val, random_state=seed, stratify=_stratify(labels[rest]))[1]
    train, val = train_test_split(sampled, test_size=val_fraction, random_state=seed,
                                  stratify=_stratify(labels[sampled]))
    out = np.full(len(labels), "", dtype=object)
    out[test], out[train], out[val] = "test", "train", "val"
    return out.astype(str)


def _stratify(labels: np.ndarray) -> np.ndarray | None:
    """Stratify by ``labels`` when every class has at least two members (sklearn's requirement)."""
    return labels if np.unique(labels, return_counts=True)[1].min() >= 2 else None


def _select_stays(records: pd.DataFrame, how: str, seed: int) -> pd.DataFrame:
    """One record per patient (``subject``): the first or last by ``order`` or a seeded random one."""
    if how == "random":
        rng = np.random.default_rng(seed)
        shuffled = records.iloc[rng.permutation(len(records))]
        return shuffled[~shuffled["subject"].duplicated(keep="first")].sort_index()
    ordered = records.sort_values(["order"], kind="stable")
    return ordered[~ordered["subject"].duplicated(keep="first" if how == "first" else "last")].sort_index()


def assemble(records: pd.DataFrame, observations: pd.DataFrame, names: list[str], kinds: dict[str, str],
             config: MimicIVConfig, name: str, provenance: dict[str, Any], where: str) -> Cohort:
    """Eligibility (time points), one record per patient, the split, and the cohort arrays."""
    counts = provenance.setdefault("counts", {})
    points = observations.groupby("record")["day"].nunique()
    eligible = records[(points.reindex(records.index).fillna(0) >= config.min_time_points).to_numpy()]
    counts[f"with_at_least_{config.min_time_points}_time_points"] = len(eligible)
    eligible = _select_stays(eligible, config.stay_selection, config.seed)
    counts["patients"] = len(eligible)
    if len(eligible) <= config.n_test:
        raise MimicIVError(f"{where}: only {len(eligible)} patients qualify, fewer than n_test + 1 = {config.n_test + 1}; "
                           f"check the path or lower n_test")
    split = paper_split(eligible[config.stratify_task].to_numpy(), config.n_test, config.max_train_val,
                        config.val_fraction, config.seed)
    chosen = eligible[split != ""]
    split = split[split != ""]
    counts["not_sampled"] = int(len(eligible) - len(chosen))
    counts.update({f"split_{s}": int((split == s).sum()) for s in ("train", "val", "test")})

    obs = observations[observations["record"].isin(chosen.index)].sort_values(["record", "day"], kind="stable")
    position = pd.Series(np.arange(len(chosen)), index=chosen.index)
    days = obs[["record", "day"]].drop_duplicates()
    visit = days.groupby("record").cumcount()
    n_visits = days.groupby("record").size().reindex(chosen.index).to_numpy().astype(np.int64)
    T, d = int(n_visits.max()), len(names)
    times = np.full((len(chosen), T), np.nan)
    times[position.loc[days["record"]].to_numpy(), visit.to_numpy()] = days["day"].to_numpy()
    visit_of = pd.Series(visit.to_numpy(), index=pd.MultiIndex.from_frame(days))
    rows = position.loc[obs["record"]].to_numpy()
    cols = visit_of.reindex(pd.MultiIndex.from_frame(obs[["record", "day"]])).to_numpy()
    raw = np.full((len(chosen), T, d), np.nan)
    raw[rows, cols, pd.Index(names).get_indexer(obs["feature"])] = obs["value"].to_numpy(float)

    stats = fit_normalisation(raw, split == "train")
    features = [FeatureSpec(n, unit_of("mimic_iv", n), reference_range_of("mimic_iv", n), kinds[n]) for n in names]
    labels = np.stack([chosen[task].to_numpy() for task in config.tasks], axis=1).astype(np.int8)
    cohort = Cohort(
        name=name, domain="icu", features=features, static_features=list(STATIC_FEATURES),
        tasks=list(config.tasks), ids=np.array([str(i) for i in chosen.index]), n_visits=n_visits, times=times,
        raw=raw, values=normalise_and_impute(raw, n_visits, stats), mask=~np.isnan(raw),
        static=np.stack([chosen["age"].to_numpy(float), chosen["sex"].to_numpy(float)], axis=1),
        labels=labels, split=split, normalisation=stats,
        provenance={"source": "mimic_iv", "expected_version": EXPECTED_VERSION, **provenance},
    )
    cohort.validate(source=f"MIMIC-IV cohort '{name}'")
    return cohort


def _check_config(config: MimicIVConfig, variables: dict[str, Variable], where: str) -> list[str]:
    """Validate the settings; return the selected variable names (canonical order)."""
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


def build_mimic_iv(config: MimicIVConfig, name: str = "mimic_iv", where: str = "params.yaml") -> Cohort:
    """Build the MIMIC-IV cohort from the raw tables or the paper group's parquet (see the module docstring).

    Logs counts only (stays per filter step, patients per split, unknown item ids), never patient rows.
    """
    variables = load_item_map(config.item_map or None)
    names = _check_config(config, variables, where)
    kind = check_input(config.path, config.input_format)
    reader = read_preprocessed if kind == "parquet" else extract_raw
    records, observations, provenance = reader(config.path, config, variables, names)
    provenance["input"] = kind
    provenance["item_map"] = config.item_map or "packaged: benchmark/data/resources/mimic_iv_items.yaml"
    cohort = assemble(records, observations, names, {n: variables[n].kind for n in names}, config, name,
                      provenance, where)
    LOGGER.info("prepare@%s: MIMIC-IV (%s input) counts %s", name, kind,
                json.dumps(provenance["counts"], sort_keys=True))
    return cohort
