"""The raw MIMIC-IV tables: locating them, checking their headers, reading them (the event tables in blocks).

Parser messages of malformed files are withheld because they may quote a row; a truncated ``.csv.gz`` is
named as such.
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from tqdm import tqdm

from benchmark.data.mimic_iv.config import EXPECTED_VERSION, MimicIVError

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


def read_small(path: Path, table: str) -> pd.DataFrame:
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


def seconds(series: pd.Series) -> np.ndarray:
    """Timestamps (strings) → float seconds since the epoch, NaN where missing or malformed."""
    stamps = pd.to_datetime(series, errors="coerce").astype("datetime64[s]")
    out = stamps.to_numpy().astype("int64").astype(float)
    out[stamps.isna().to_numpy()] = np.nan
    return out


def stream(path: Path, table: str, block_mb: int) -> Iterator[pa.RecordBatch]:
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
