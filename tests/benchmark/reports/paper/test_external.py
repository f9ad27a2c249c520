"""External reference (ClinicRealm): z by hand, verdicts, loading errors, the comparison on fake metrics files,
`eagrl verify`'s outputs, and the shipped rows against the shared transcription (skipped where it is absent)."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest
import yaml

from benchmark.config import ConfigError
from benchmark.reports.paper.external import (
    CONSISTENT,
    CSV_COLUMNS,
    DIFFERS,
    FOLDER,
    NO_COUNTERPART,
    NOT_REPRODUCED,
    compare_external,
    load_reference,
    write_reference_tables,
    z_score,
    z_verdict,
)
from eagrl.cli import main
from tests.benchmark.fake_results import metrics_file, record
from tests.conftest import SHARED_DATA

CLINICREALM = SHARED_DATA / "clinicrealm"  # <repository>/../shared/data/clinicrealm
OUR_EXPERTS = {"ConCare", "AdaCare", "GRU"}
LLMS = {"Qwen2.5-7B", "OpenBioLLM-8B", "HuatuoGPT-o1-7B", "DeepSeek-R1-7B"}


# ------------------------------------------------------------------------------------ z and verdicts
def test_z_score_by_hand():
    # ours ConCare on TJH 0.978 ± 0.010 vs theirs 91.00 ± 2.14 (×100): 0.068 / sqrt(0.0001 + 0.00045796)
    assert z_score(0.978, 0.010, 0.910, 0.0214) == pytest.approx(0.068 / math.sqrt(0.0001 + 0.0214 ** 2))
    assert z_score(0.978, 0.010, 0.910, 0.0214) == pytest.approx(2.8787, abs=1e-4)
    assert z_score(0.5, 0.03, 0.6, 0.04) == pytest.approx(-2.0)  # 3-4-5: -0.1 / 0.05
    assert z_score(0.7, 0.0, 0.7, 0.0) == 0.0
    assert z_score(0.8, 0.0, 0.7, 0.0) == math.inf
    assert math.isnan(z_score(math.nan, 0.01, 0.7, 0.01))


@pytest.mark.parametrize("z, expected", [(0.0, CONSISTENT), (1.96, CONSISTENT), (-1.96, CONSISTENT),
                                         (1.9601, DIFFERS), (-2.5, DIFFERS), (math.inf, DIFFERS)])
def test_verdict_thresholds(z, expected):
    assert z_verdict(z) == expected


def test_a_nan_z_has_no_verdict():
    with pytest.raises(ValueError, match="NaN"):
        z_verdict(math.nan)


# ------------------------------------------------------------------------------------ loading
def test_the_shipped_reference_loads_with_its_provenance():
    reference = load_reference()
    meta = reference.meta
    assert (meta.name, meta.source.repository, meta.source.file) == (
        "ClinicRealm", "yhzhu99/ehr-llm-benchmark", "docs/structured-ehr-results.html")
    assert meta.source.commit == "d413e70e7fa29ee5cd815ec87276be7eb1526aef"
    assert (meta.bootstrap, meta.scale) == (100, 100.0)
    assert {r["method"] for r in reference.rows} == OUR_EXPERTS | LLMS
    assert {(r["dataset"], r["task"]) for r in reference.rows} == {("tjh", "mortality"), ("mimic_iv", "mortality"),
                                                                  ("mimic_iv", "readmission")}
    gru = next(r for r in reference.rows if (r["method"], r["dataset"], r["metric"]) == ("GRU", "tjh", "auroc"))
    assert (gru["mean"], gru["std"]) == (pytest.approx(0.9357), pytest.approx(0.0171))  # 93.57 ± 1.71 / 100


def _copy(tmp_path):
    folder = tmp_path / "external"
    shutil.copytree(FOLDER, folder)
    return folder


def _edit_yaml(folder, change):
    path = folder / "clinicrealm.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _one_line_error(folder, *expected):
    with pytest.raises(ConfigError) as error:
        load_reference(folder)
    message = str(error.value)
    assert "\n" not in message
    for text in expected:
        assert text in message, message
    return message


def test_a_missing_field_names_the_file_and_the_field(tmp_path):
    folder = _copy(tmp_path)
    _edit_yaml(folder, lambda d: d["source"].pop("commit"))
    _one_line_error(folder, "clinicrealm.yaml", "source", "commit")


def test_a_bad_commit_or_bootstrap_is_named_with_the_fix(tmp_path):
    folder = _copy(tmp_path)
    _edit_yaml(folder, lambda d: d["source"].update(commit="d413e70"))
    _one_line_error(folder, "clinicrealm.yaml", "source.commit", "full commit hash")
    folder = _copy(tmp_path / "b")
    _edit_yaml(folder, lambda d: d.update(bootstrap="many"))
    _one_line_error(folder, "clinicrealm.yaml", "bootstrap")


def test_an_unmatched_csv_row_names_the_match_table(tmp_path):
    folder = _copy(tmp_path)
    _edit_yaml(folder, lambda d: d["match"]["dataset"].pop("tjh"))
    _one_line_error(folder, "clinicrealm.yaml", "match.dataset", "'tjh'", "add tjh:")
    folder = _copy(tmp_path / "b")
    _edit_yaml(folder, lambda d: d["match"].update(method=[m for m in d["match"]["method"] if m["method"] != "GRU"]))
    _one_line_error(folder, "clinicrealm.yaml", "match.method", "'GRU'")
    folder = _copy(tmp_path / "c")
    _edit_yaml(folder, lambda d: d["match"]["method"][0]["ours"].pop("method"))
    _one_line_error(folder, "clinicrealm.yaml", "match.method[0].ours.method")


def test_a_bad_csv_names_the_line_or_the_header(tmp_path):
    folder = _copy(tmp_path)
    path = folder / "clinicrealm.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 2)[0] + ",n/a,1.71"
    path.write_text("\n".join(lines) + "\n")
    _one_line_error(folder, "clinicrealm.csv", "line 2", "mean_x100")
    path.write_text("method,mean\nGRU,0.9\n")
    _one_line_error(folder, "clinicrealm.csv", "header", ",".join(CSV_COLUMNS))
    path.unlink()
    _one_line_error(folder, "clinicrealm.csv", "not found")


# ------------------------------------------------------------------------------------ the comparison
def _fake_records(tmp_path):
    """Fake metrics files: gru and concare on tjh, vanilla on a local Qwen2.5-7B-Instruct folder on tjh, and a
    gru on another data set (must not be used)."""
    expert = {"task": "mortality", "family": "expert"}
    return [
        record(tmp_path / "gru", 1.5, dataset="tjh", method="gru", **expert),
        record(tmp_path / "concare", 0.2, dataset="tjh", method="concare", **expert),
        record(tmp_path / "other", 3.0, dataset="synthetic_icu", method="gru", **expert),
        record(tmp_path / "vanilla", 0.8, dataset="tjh", task="mortality", method="vanilla", family="prompting",
               backbone="/models/Qwen2.5-7B-Instruct"),
    ]


def _by(rows, method, dataset, task, metric):
    return next(r for r in rows if (r["method"], r["dataset"], r["task"], r["metric"]) == (method, dataset, task, metric))


def test_compare_gives_every_verdict_where_it_belongs(tmp_path):
    reference, records = load_reference(), _fake_records(tmp_path)
    rows = compare_external(records, reference, configured=["tjh", "synthetic_icu"])
    assert len(rows) == len(reference.rows) == 42
    for metric in ("auroc", "auprc"):
        gru = _by(rows, "GRU", "tjh", "mortality", metric)
        ours = records[0].summary(metric)
        assert gru["z"] == pytest.approx(z_score(ours["mean"], ours["std"], gru["theirs_mean"], gru["theirs_std"]))
        assert gru["verdict"] == z_verdict(gru["z"]) and gru["n"] == 120 and gru["metrics_file"]
        assert gru["comparator"] == "expert" and gru["ours_method"] == "gru"
    concare = _by(rows, "ConCare", "tjh", "mortality", "auroc")
    assert concare["ours_mean"] < 0.7 and concare["verdict"] == DIFFERS  # a weak fake vs their 0.910 ± 0.021
    qwen = _by(rows, "Qwen2.5-7B", "tjh", "mortality", "auroc")
    assert qwen["verdict"] in (CONSISTENT, DIFFERS) and qwen["ours_method"] == "vanilla on Qwen2.5-7B-Instruct"
    adacare = _by(rows, "AdaCare", "tjh", "mortality", "auroc")
    assert adacare["verdict"] == NOT_REPRODUCED and "no metrics file" in adacare["note"]
    mimic = _by(rows, "GRU", "mimic_iv", "readmission", "auroc")
    assert mimic["verdict"] == NOT_REPRODUCED and "not in this profile" in mimic["note"]
    huatuo = _by(rows, "HuatuoGPT-o1-7B", "tjh", "mortality", "auroc")
    assert huatuo["verdict"] == NO_COUNTERPART and "HuatuoGPT-o1-7B" in huatuo["note"] and huatuo["z"] is None
    assert {r["verdict"] for r in rows if r["comparator"] == "llm" and r["ours_mean"] is None} == {NO_COUNTERPART}


def test_compare_can_be_restricted_to_data_sets(tmp_path):
    rows = compare_external(_fake_records(tmp_path), load_reference(), ["tjh"], datasets=["tjh"])
    assert {r["dataset"] for r in rows} == {"tjh"} and len(rows) == 14  # (3 experts + 4 LLMs) x 2 metrics


def test_a_record_close_to_theirs_is_consistent(tmp_path):
    gru = record(tmp_path / "gru", 1.5, dataset="tjh", task="mortality", method="gru", family="expert")
    reference = load_reference()
    for row in reference.rows:  # put their GRU at our mean, one of our stds away
        if (row["method"], row["dataset"]) == ("GRU", "tjh"):
            row["mean"] = gru.summary(row["metric"])["mean"] + gru.summary(row["metric"])["std"]
    rows = compare_external([gru], reference, ["tjh"], datasets=["tjh"])
    assert _by(rows, "GRU", "tjh", "mortality", "auroc")["verdict"] == CONSISTENT


def test_eagrl_verify_writes_the_external_reference(tmp_path, monkeypatch):
    metrics_file(tmp_path / "models/experts/tjh/gru/mortality", 1.5)
    params = {"datasets": {"tjh": {"source": "tjh"}}, "metrics": {"bootstrap_resamples": 40},
              "report": {"sources": [{"pattern": "models/experts/{dataset}/{method}/{task}/metrics.json",
                                      "fields": {"family": "expert"}}]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["verify"]) == 0
    results = tmp_path / "results"
    comparison = (results / "paper_comparison.md").read_text()
    assert comparison.index("# Paper vs reproduced") < comparison.index("## External reference (ClinicRealm)")
    assert "d413e70e7fa2" in comparison and "100 bootstrap resamples" in comparison
    data = json.loads((results / "external_reference.json").read_text())
    assert data["source"]["commit"] == "d413e70e7fa29ee5cd815ec87276be7eb1526aef" and data["source"]["bootstrap"] == 100
    gru = _by(data["rows"], "GRU", "tjh", "mortality", "auroc")
    assert gru["verdict"] in (CONSISTENT, DIFFERS) and gru["z"] is not None
    assert _by(data["rows"], "ConCare", "tjh", "mortality", "auroc")["verdict"] == NOT_REPRODUCED
    with (results / "external_reference.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 42
    assert (results / "external_reference.md").read_text().startswith("# External reference (ClinicRealm)")


def test_write_reference_tables_collects_under_a_root(tmp_path):
    root = tmp_path / "work"
    metrics_file(root / "models/experts/tjh/gru/mortality", 1.5)
    params = {"datasets": {"tjh": {"source": "tjh"}},
              "report": {"sources": [{"pattern": "models/experts/{dataset}/{method}/{task}/metrics.json",
                                      "fields": {"family": "expert"}}]}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    paths = write_reference_tables(root / "params.yaml", root, tmp_path / "out" / "external_reference", ["tjh"])
    assert sorted(p.suffix for p in paths) == [".csv", ".json", ".md"]
    rows = json.loads((tmp_path / "out" / "external_reference.json").read_text())["rows"]
    assert {r["dataset"] for r in rows} == {"tjh"}
    assert _by(rows, "GRU", "tjh", "mortality", "auroc")["verdict"] in (CONSISTENT, DIFFERS)
    assert _by(rows, "AdaCare", "tjh", "mortality", "auroc")["verdict"] == NOT_REPRODUCED


# ------------------------------------------------------------------------------------ the shipped rows
def _csv_rows(path):
    with path.open(newline="") as handle:
        return [tuple(row) for row in csv.reader(handle)]


@pytest.mark.skipif(not (CLINICREALM / "structured_ehr_results.csv").exists(),
                    reason=f"the ClinicRealm transcription is not at {CLINICREALM} (../shared/data/clinicrealm "
                           f"relative to the repository root)")
def test_the_shipped_rows_are_the_shared_transcription_row_for_row():
    shared = _csv_rows(CLINICREALM / "structured_ehr_results.csv")
    shipped = _csv_rows(FOLDER / "clinicrealm.csv")
    assert shipped[0] == shared[0] == CSV_COLUMNS
    wanted = [row for row in shared[1:] if (row[1] in OUR_EXPERTS and row[2] == "full shot")
              or (row[1] in LLMS and row[2] == "base prompt")]
    assert shipped[1:] == wanted  # the same rows, unchanged, in the same order
    readme = (CLINICREALM / "README.md").read_text()
    assert load_reference().meta.source.commit in readme
