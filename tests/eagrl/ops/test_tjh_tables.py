"""`eagrl tjh-tables`: stage selection and one end-to-end run on the shared workbook (skipped with a reason
where ../shared/data/tjh is absent). The tables and the README on small fixtures: test_tjh_rows.py,
test_tjh_readme.py; the checks: test_tjh_config.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.config import ConfigError
from benchmark.reports.index import sha256_file
from eagrl.ops.tjh_config import TJHTablesConfig
from eagrl.ops.tjh_tables import target_stages, tjh_tables
from tests.conftest import REPO, SHARED_DATA

TJH_FILE = SHARED_DATA / "tjh" / "time_series_375_prerpocess_en.xlsx"
BIN = Path(sys.executable).parent


def _json(path: Path):
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------ stages
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
