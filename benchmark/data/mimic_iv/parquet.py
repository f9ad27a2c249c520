"""The paper group's preprocessed parquet: records and day-level values read as they are (no extraction).

yhzhu99/ehr-llm-benchmark, ``my_datasets/mimic-iv``: one row per record and day; each record is one patient,
as in their code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmark.data.mimic_iv.config import DAY, VARIABLES, MimicIVConfig, MimicIVError
from benchmark.data.mimic_iv.items import Variable, leading_number

# Columns of the paper group's preprocessed parquet (besides the 17 variables).
PARQUET_ID, PARQUET_TIME = "RecordID", "RecordTime"
PARQUET_LABELS = {"mortality": "Outcome", "readmission": "Readmission"}
PARQUET_STATIC = ("Age", "Sex")


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
            leading = leading_number(words)
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
