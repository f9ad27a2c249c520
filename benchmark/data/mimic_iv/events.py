"""Events: chartevents and labevents streamed into one value per (stay, day, variable), and the raw-table reader.

Steps 3 to 7 of the extraction described in :mod:`benchmark.data.mimic_iv`: item ids to variables, units,
outliers, the derived GCS total and the day values; :func:`extract_raw` runs the whole extraction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data.mimic_iv.config import (
    DAY,
    EXPECTED_VERSION,
    GCS_PARTS,
    GCS_TOTAL,
    MimicIVConfig,
    MimicIVError,
)
from benchmark.data.mimic_iv.items import CONVERTERS, Catalogue, Variable, catalogue, leading_number
from benchmark.data.mimic_iv.labels import candidate_stays, label_stays
from benchmark.data.mimic_iv.tables import TABLES, check_columns, read_small, stream, table_path
from benchmark.runtime import LOGGER


def _observation_values(frame: pd.DataFrame, cat: Catalogue, drop_outliers: bool) -> tuple[np.ndarray, np.ndarray]:
    """Variable code and cleaned value of each event row (NaN = unusable): steps 3-5 of the package docstring."""
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
        leading = leading_number(words)
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


def _partial(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (stay, day, variable): last time and value, sum and count (combinable across blocks)."""
    frame = frame.sort_values("t", kind="stable")
    grouped = frame.groupby(["stay_id", "day", "var"], sort=False)
    return grouped.agg(t=("t", "last"), last=("value", "last"), sum=("value", "sum"),
                       count=("value", "count")).reset_index()


def _events(path: Path, table: str, stays: pd.DataFrame, cat: Catalogue, config: MimicIVConfig,
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
    for batch in stream(path, table, config.block_mb):
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


def _gcs_totals(rows: list[pd.DataFrame], cat: Catalogue) -> pd.DataFrame:
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


def _day_values(partials: list[pd.DataFrame], cat: Catalogue, aggregate: str) -> pd.DataFrame:
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


def _check_dictionaries(root: Path, cat: Catalogue) -> dict[str, list[int]]:
    """Item ids of the map that this MIMIC-IV release does not define (reported, not fatal)."""
    report: dict[str, list[int]] = {}
    for table, dictionary in (("chartevents", "d_items"), ("labevents", "d_labitems")):
        wanted = cat.itemids(table)
        if not wanted:
            continue
        defined = set(read_small(table_path(root, dictionary), dictionary)["itemid"].astype(int))
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
    cat = catalogue(variables, names, config)
    provenance: dict[str, Any] = {"item_ids_not_defined": _check_dictionaries(root, cat)}
    stays, counts = label_stays(read_small(paths["icustays"], "icustays"),
                                read_small(paths["admissions"], "admissions"),
                                read_small(paths["patients"], "patients"), config)
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
