"""`eagrl tjh-tables`: stage selection, the TJH-only tables on small fixtures, and one end-to-end run on the
shared workbook (skipped with a reason where ../shared/data/tjh is absent)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmark.config import ConfigError, select_datasets
from benchmark.data.cohort import Cohort
from benchmark.data.synthetic import SyntheticConfig, generate
from benchmark.reports.index import sha256_file
from eagrl.cli import main
from eagrl.ops.tjh_tables import (
    TITLE,
    TJHTablesConfig,
    check_out,
    check_workbook,
    count_rows,
    prompt_length_rows,
    readme_text,
    restrict_models,
    target_stages,
    tjh_tables,
    write_tables,
)
from eagrl.registry import METHODS
from tests.conftest import REPO, SHARED_DATA

TJH_FILE = SHARED_DATA / "tjh" / "time_series_375_prerpocess_en.xlsx"
BIN = Path(sys.executable).parent
LEVELS = ["none", "shuffle:1", "mask:0.5"]


# ------------------------------------------------------------------------------------ fixtures
def _as_real(cohort: Cohort, dropped: int, dropped_deaths: int) -> Cohort:
    """A synthetic cohort dressed as a real one: no ground truth, workbook counts in its provenance."""
    y = cohort.label("mortality")
    counts = {"patients_in_file": len(cohort) + dropped, "deaths_in_file": int(y.sum()) + dropped_deaths}
    return dataclasses.replace(cohort, salient=None, true_risk=None, provenance={"source": "tjh", "counts": counts})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder laid out like the scratch copy: params.yaml, data/cohorts, models/experts, outputs/... for a
    source `src`, the target `tjh` and another target `other` whose rows must not appear in the TJH tables."""
    root = tmp_path_factory.mktemp("tjh-workspace")
    src = generate(SyntheticConfig(domain="icu", n_patients=200, n_test=50, seed=11,
                                   features=["Heart Rate", "Glucose", "pH", "Temperature"]), name="src")
    tjh = _as_real(generate(SyntheticConfig(domain="ward", n_patients=160, n_test=60, seed=12,
                                            features=["glucose", "PH value", "D-D dimer", "albumin"]), name="tjh"), 4, 3)
    other = generate(SyntheticConfig(domain="ward", n_patients=160, n_test=60, seed=13,
                                     features=["glucose", "PH value", "albumin"]), name="other")
    cohorts = root / "data" / "cohorts"
    for cohort in (src, tjh, other):
        cohort.save(cohorts / cohort.name)
    params = {
        "seed": 42,
        "datasets": {"src": {"source": "synthetic"}, "tjh": {"source": "tjh"}, "other": {"source": "synthetic"}},
        "metrics": {"bootstrap_resamples": 20},
        "experts": {"models": ["logistic"]},
        "robustness": {"dl": {"levels": LEVELS}},
        "cross_domain": {"pairs": [{"source": "src", "target": "tjh", "task": "mortality"},
                                   {"source": "src", "target": "other", "task": "mortality"}]},
        "llm": {"prompt": {"decimals": 2, "chat_template": True}},
        "report": {"sources": [{"pattern": "models/experts/{dataset}/{method}/{task}/metrics.json",
                                "fields": {"family": "expert"}}]},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    common = ["--params", str(root / "params.yaml"), "--cohorts", str(cohorts)]
    experts = str(root / "models" / "experts")
    for name in ("src", "tjh", "other"):
        assert main(["train-expert", name, "logistic", *common, "--out", experts]) == 0
    for name in ("tjh", "other"):
        assert main(["robustness-dl", name, "experts", "logistic", *common, "--out", str(root / "outputs" / "robustness"),
                     "--models", experts]) == 0
        assert main(["cross-domain", "src", name, "mortality", "logistic", *common,
                     "--out", str(root / "outputs" / "cross_domain"), "--models", experts]) == 0
    return root


@pytest.fixture(scope="module")
def tables(workspace) -> Path:
    folder = workspace / "results" / "tjh"
    write_tables(workspace, folder, source="src", dataset="tjh")
    return folder


def _json(path: Path):
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------ the tables
def test_every_table_holds_tjh_rows_only(tables):
    assert {r["dataset"] for r in _json(tables / "cohorts.json")} == {"tjh"}
    assert {r["dataset"] for r in _json(tables / "cohort_signal.json")} == {"tjh"}
    experts = _json(tables / "experts.json")
    assert {(r["dataset"], r["model"]) for r in experts} == {("tjh", "logistic")}
    robustness = _json(tables / "robustness.json")
    assert {r["dataset"] for r in robustness["conditions"]} == {"tjh"}
    assert sorted(r["condition"] for r in robustness["conditions"]) == sorted(LEVELS)
    cross = _json(tables / "cross_domain.json")
    assert {(r["source"], r["target"], r["method"]) for r in cross} == {("src", "tjh", "logistic")}
    assert (tables / "plots" / "robustness" / "tjh_mortality.png").exists()
    assert not (tables / "plots" / "robustness" / "other_mortality.png").exists()
    for stem in ("cohorts", "experts", "robustness", "cross_domain", "counts", "external_reference"):
        for suffix in (".md", ".csv", ".json"):
            assert (tables / f"{stem}{suffix}").exists(), f"{stem}{suffix}"


def test_the_external_reference_holds_the_tjh_rows_of_clinicrealm(tables):
    data = _json(tables / "external_reference.json")
    assert data["source"]["name"] == "ClinicRealm" and {r["dataset"] for r in data["rows"]} == {"tjh"}
    experts = {(r["method"], r["metric"]): r for r in data["rows"] if r["comparator"] == "expert"}
    assert set(experts) == {(m, k) for m in ("ConCare", "AdaCare", "GRU") for k in ("auroc", "auprc")}
    # the fixture trains logistic only, which ClinicRealm does not report: their experts have no run of ours here
    assert {r["verdict"] for r in experts.values()} == {"not reproduced"}
    assert all("no metrics file" in r["note"] for r in experts.values())
    assert "ClinicRealm" in (tables / "external_reference.md").read_text()


def test_the_empty_faithfulness_table_of_real_data_is_not_kept(tables):
    assert not list(tables.glob("faithfulness.*"))


def test_counts_go_from_the_workbook_to_the_splits(tables, workspace):
    rows = _json(tables / "counts.json")
    cohort = Cohort.load(workspace / "data" / "cohorts" / "tjh")
    y = cohort.label("mortality")
    assert rows[0] == {"step": "workbook (every patient in the file)", "patients": len(cohort) + 4,
                       "deaths": int(y.sum()) + 3, "survivors": len(cohort) + 4 - int(y.sum()) - 3}
    assert rows[1]["step"] == "cohort (4 patients without a dated row dropped)" and rows[1]["patients"] == len(cohort)
    splits = {r["step"]: r for r in rows[2:]}
    assert splits["test split"]["patients"] == 60
    assert sum(r["patients"] for r in splits.values()) == len(cohort)
    assert sum(r["deaths"] for r in splits.values()) == int(y.sum())


def test_counts_of_a_cohort_without_file_counts(small_ward):
    rows = count_rows(small_ward)
    assert [r["step"] for r in rows] == ["cohort", "train split", "val split", "test split"]
    assert rows[0]["patients"] == rows[0]["deaths"] + rows[0]["survivors"] == len(small_ward)


def test_the_filters_keep_the_default_and_refuse_unknown_data_sets(workspace, tmp_path):
    from benchmark.reports.cohorts import report_cohorts

    report_cohorts(workspace / "params.yaml", workspace / "data" / "cohorts", tmp_path, methods=METHODS)  # no filter: every data set
    assert {r["dataset"] for r in _json(tmp_path / "cohorts.json")} == {"src", "tjh", "other"}
    assert select_datasets(["a", "b", "c"], ["c", "a"]) == ["a", "c"]
    with pytest.raises(ConfigError, match=r"\['mimic_iv'\] not under 'datasets'.*eagrl configure"):
        report_cohorts(workspace / "params.yaml", workspace / "data" / "cohorts", tmp_path, datasets=["mimic_iv"], methods=METHODS)


def test_readme_states_provenance_counts_and_why_no_llm_rows(tables, tmp_path):
    folder = tmp_path / "tables"
    for path in tables.rglob("*"):
        if path.is_file():
            (folder / path.relative_to(tables)).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(tables)).write_bytes(path.read_bytes())
    lengths = [{"dataset": "tjh", "style": "qd", "split": "test", "patients": 60, "features": 4, "tokens_median": 3000.0,
                "tokens_min": 2000, "tokens_max": 5000, "tokenizer": "tok.gguf"},
               {"dataset": "src", "style": "qd", "split": "test", "patients": 50, "features": 4, "tokens_median": 500.0,
                "tokens_min": 400, "tokens_max": 600, "tokenizer": "tok.gguf"}]
    (folder / "prompt_lengths.json").write_text(json.dumps(lengths))
    info = {"command": "eagrl tjh-tables --tjh w.xlsx", "commit": "abc123", "workbook_name": "w.xlsx",
            "workbook_sha256": "f" * 64, "date": "2026-01-01 00:00:00 UTC", "models": ["logistic"], "source": "src",
            "repro_seconds": 90.0, "cpus": 2, "load": 1.0, "targets": ["prepare@tjh"], "ran": ["prepare@tjh"],
            "stage_times": [{"stage (log name)": "prepare@tjh", "started": "x", "wall s": 1.0, "peak MB": 400.0}]}
    text = readme_text(info, folder)
    assert text.startswith(f"# {TITLE}\n")
    cohort_rows = _json(folder / "counts.json")
    assert f"**{cohort_rows[0]['patients']} patients: {cohort_rows[0]['deaths']} deaths" in text
    assert f"**{cohort_rows[-1]['patients']} of them into test**" in text
    assert "abc123" in text and "f" * 64 in text and "make tjh-tables TJH=" in text
    assert "**3000 tokens**" in text and "6.0 times the src median of 500" in text
    assert "no faithfulness table" in text and "[experts.md](experts.md)" in text and "logistic" in text
    assert "## Beside ClinicRealm" in text
    assert re.search(r"\| ConCare +\| AUROC +\| — +\| 0\.910 ± 0\.021 +\| — +\| not reproduced", text)


# ------------------------------------------------------------------------------------ prompt lengths
def test_prompt_lengths_count_the_rendered_prompts(workspace):
    from methods.llm.config import PromptConfig
    from methods.llm.prompting import rendered_prompts
    from tests.methods.llm.conftest import _corpus, build_tokenizer

    cohort = Cohort.load(workspace / "data" / "cohorts" / "tjh")
    tokenizer = build_tokenizer(_corpus(cohort))
    rows = prompt_length_rows([cohort], tokenizer, workspace / "params.yaml", "qd", tokenizer_name="tiny")
    test = cohort.subset("test")
    expected = [len(tokenizer(r.text, add_special_tokens=False)["input_ids"])
                for r in rendered_prompts(tokenizer, test, "mortality", "qd", PromptConfig())]
    assert rows == [{"dataset": "tjh", "style": "qd", "split": "test", "patients": len(test), "features": 4,
                     "tokens_median": float(np.median(expected)), "tokens_min": min(expected),
                     "tokens_max": max(expected), "tokenizer": "tiny"}]


# ------------------------------------------------------------------------------------ stages and checks
def _params(pairs) -> dict:
    return {"experts": {"models": ["logistic", "gru"]}, "cross_domain": {"pairs": pairs}}


def test_target_stages_name_the_tjh_stages_and_the_pair_position():
    pairs = [{"source": "synthetic_icu", "target": "synthetic_ward"}, {"source": "synthetic_icu", "target": "tjh"}]
    names = ["prepare@tjh", "prepare@synthetic_icu", "train_expert@tjh-logistic", "train_expert@tjh-gru",
             "robustness_dl@tjh", "robustness_hybrid@tjh", "cross_domain_dl@pair0-logistic",
             "cross_domain_dl@pair0-gru", "cross_domain_dl@pair1-logistic", "cross_domain_dl@pair1-gru", "llm_eval@tjh-qd"]
    assert target_stages(_params(pairs), names) == [
        "prepare@tjh", "train_expert@tjh-logistic", "train_expert@tjh-gru", "robustness_dl@tjh",
        "cross_domain_dl@pair1-logistic", "cross_domain_dl@pair1-gru"]
    with pytest.raises(ConfigError, match="no stage.*cross_domain_dl@pair1-gru"):
        target_stages(_params(pairs), names[:-2])
    with pytest.raises(ConfigError, match="cross_domain.pairs has no .*synthetic_icu, target: tjh"):
        target_stages(_params(pairs[:1]), names)


def test_workbook_and_output_folder_checks(tmp_path):
    with pytest.raises(ConfigError, match=r"TJH workbook not found.*make tjh-tables TJH="):
        check_workbook(tmp_path / "absent.xlsx")
    (tmp_path / "book.csv").write_text("x")
    with pytest.raises(ConfigError, match="expected the Excel workbook"):
        check_workbook(tmp_path / "book.csv")
    check_out(tmp_path / "new")  # absent: fine
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "main.md").write_text("# Main\n")
    with pytest.raises(ConfigError, match="not written by `eagrl tjh-tables`"):
        check_out(foreign)
    ours = tmp_path / "tjh"
    ours.mkdir()
    (ours / "README.md").write_text(f"# {TITLE}\n")
    check_out(ours)


def test_restrict_models_keeps_comments_and_refuses_unknown_models(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experts:\n  models: [logistic, gru, concare]  # the matrix\n  top_k: 3  # why\n")
    restrict_models(path, ["concare", "logistic"])
    assert yaml.safe_load(path.read_text())["experts"] == {"models": ["logistic", "concare"], "top_k": 3}
    assert "# why" in path.read_text()
    with pytest.raises(ConfigError, match=r"--models \['retain'\]: not in experts.models"):
        restrict_models(path, ["retain"])


# ------------------------------------------------------------------------------------ end to end
def _is_git_repo(root: Path) -> bool:
    return subprocess.run(["git", "-C", str(root), "rev-parse"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not TJH_FILE.exists(),
                    reason=f"the TJH workbook is not at {TJH_FILE} (../shared/data/tjh relative to the repository "
                           f"root); the end-to-end run of `eagrl tjh-tables` needs it")
def test_tjh_tables_end_to_end_on_the_shared_workbook(tmp_path):
    if not (BIN / "dvc").exists() or not (BIN / "eagrl").exists():
        pytest.skip(f"dvc or eagrl is not installed next to {sys.executable}; run `make test`")
    if not _is_git_repo(REPO):
        pytest.skip(f"{REPO} is not a git checkout: the command copies the working tree with git ls-files")
    out, workdir, log = tmp_path / "tjh", tmp_path / "scratch", io.StringIO()
    # logistic only: the whole expert set takes several minutes on 2 cores (make tjh-tables runs it)
    tjh_tables(TJHTablesConfig(tjh=str(TJH_FILE), out=str(out), models=["logistic"], workdir=str(workdir)), REPO, log)
    counts = {r["step"].split(" (")[0]: r for r in _json(out / "counts.json")}
    assert (counts["workbook"]["patients"], counts["workbook"]["deaths"], counts["workbook"]["survivors"]) == (375, 174, 201)
    assert counts["test split"]["patients"] == 200 and counts["cohort"]["patients"] == 361
    assert {(r["dataset"], r["model"]) for r in _json(out / "experts.json")} == {("tjh", "logistic")}
    assert {(r["source"], r["target"]) for r in _json(out / "cross_domain.json")} == {("synthetic_icu", "tjh")}
    assert {r["dataset"] for r in _json(out / "robustness.json")["conditions"]} == {"tjh"}
    lengths = {r["dataset"]: r for r in _json(out / "prompt_lengths.json")}
    assert lengths["tjh"]["features"] == 73 and lengths["tjh"]["tokens_median"] > lengths["synthetic_icu"]["tokens_median"]
    readme = (out / "README.md").read_text()
    assert sha256_file(TJH_FILE) in readme and "375 patients: 174 deaths and 201 survivors" in readme
    assert "train_expert@tjh-logistic" in readme and "cross_domain_dl@pair" in readme
    assert not workdir.exists() and "dvc repro" in log.getvalue()
    assert not list(out.rglob("*.xlsx"))
