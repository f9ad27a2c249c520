"""The raw tables: missing tables, columns, old layouts and damaged files are named, rows never quoted."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from benchmark.config import ConfigError
from benchmark.data.mimic_iv import build_mimic_iv, check_input
from benchmark.data.mimic_iv.config import MimicIVError
from tests.benchmark.data.mimic_iv.fake_mimic import config, copy_root


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
