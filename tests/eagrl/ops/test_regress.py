"""make regress: fresh results/*.json against the committed versions, within tolerances."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
import yaml

from eagrl.cli import main
from eagrl.ops.regress import regress

MAIN = {"synthetic_icu": {"mortality": {"gru": {"n": 200, "auroc_mean": 0.8123, "auroc_std": 0.021},
                                        "vanilla (smollm2)": {"n": 200, "auroc_mean": 0.55, "auroc_std": 0.04,
                                                              "parse_failure_rate": 0.1}}}}
COHORTS = [{"dataset": "synthetic_icu", "task": "mortality", "split": "test", "patients": 200, "prevalence": 0.2},
           {"dataset": "synthetic_icu", "task": "mortality", "split": "train", "patients": 525, "prevalence": 0.2}]
PARAMS = {"regress": {"abs_tol": 0.005, "tolerances": {"*/n": 0, "*/patients": 0}, "exclude": ["runtime.json"]}}


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _write(root, name, data):
    path = root / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


@pytest.fixture
def repo(tmp_path):
    """A git repository with committed results, whose working tree holds identical fresh results."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    _write(tmp_path, "main.json", MAIN)
    _write(tmp_path, "cohorts.json", COHORTS)
    _write(tmp_path, "runtime.json", {"wall_s": 100.0})
    (tmp_path / "results" / "main.md").write_text("# Main\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "results")
    return tmp_path


def _run(root):
    out = io.StringIO()
    status = regress(root, "params.yaml", out=out)
    return status, out.getvalue()


def _commit_edit(root, name, data):
    """Hand-edit a committed number: commit the edit, then restore the fresh file in the working tree."""
    fresh = (root / "results" / name).read_text()
    _write(root, name, data)
    _git(root, "commit", "-q", "-am", "edit by hand")
    (root / "results" / name).write_text(fresh)


def test_passes_when_equal(repo):
    status, text = _run(repo)
    assert status == 0, text
    assert "passed" in text and "changed 0" in text and "missing 0" in text


def test_fails_when_a_committed_number_is_edited(repo):
    edited = json.loads(json.dumps(MAIN))
    edited["synthetic_icu"]["mortality"]["gru"]["auroc_mean"] = 0.8523
    _commit_edit(repo, "main.json", edited)
    status, text = _run(repo)
    assert status == 1
    assert "main.json:synthetic_icu/mortality/gru/auroc_mean" in text and "changed" in text and "FAILED" in text


def test_tolerance_is_respected(repo):
    within = json.loads(json.dumps(MAIN))
    within["synthetic_icu"]["mortality"]["gru"]["auroc_mean"] += 0.004  # abs_tol 0.005
    _write(repo, "main.json", within)
    assert _run(repo)[0] == 0
    beyond = json.loads(json.dumps(MAIN))
    beyond["synthetic_icu"]["mortality"]["gru"]["auroc_mean"] += 0.006
    _write(repo, "main.json", beyond)
    assert _run(repo)[0] == 1


def test_per_key_tolerance_overrides_the_default(repo):
    (repo / "params.yaml").write_text(yaml.safe_dump(
        {"regress": {**PARAMS["regress"], "tolerances": {"*/auroc_std": 0.05, "*/n": 0}}}))
    wider = json.loads(json.dumps(MAIN))
    wider["synthetic_icu"]["mortality"]["gru"]["auroc_std"] += 0.03  # beyond abs_tol, within its own 0.05
    _write(repo, "main.json", wider)
    assert _run(repo)[0] == 0
    rows = json.loads(json.dumps(COHORTS))
    rows[1]["prevalence"] = 0.204  # within the default 0.005
    rows[0]["patients"] = 201
    _write(repo, "cohorts.json", rows)
    status, text = _run(repo)
    assert status == 1 and "synthetic_icu,mortality,test/patients" in text and "prevalence" not in text


def test_missing_metric_and_missing_file_fail(repo):
    fewer = json.loads(json.dumps(MAIN))
    del fewer["synthetic_icu"]["mortality"]["vanilla (smollm2)"]["parse_failure_rate"]
    _write(repo, "main.json", fewer)
    status, text = _run(repo)
    assert status == 1 and "parse_failure_rate" in text and "missing" in text
    _write(repo, "main.json", MAIN)
    (repo / "results" / "cohorts.json").unlink()
    status, text = _run(repo)
    assert status == 1 and "cohorts.json:(whole file)" in text


def test_new_numbers_and_excluded_files_do_not_fail(repo):
    more = json.loads(json.dumps(MAIN))
    more["synthetic_icu"]["mortality"]["qd (smollm2)"] = {"n": 200, "auroc_mean": 0.5}
    _write(repo, "main.json", more)
    _write(repo, "runtime.json", {"wall_s": 999.0})  # excluded: timings vary
    status, text = _run(repo)
    assert status == 0, text
    assert "new" in text and "runtime" not in text


def test_cli_exit_status(repo, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(["regress"]) == 0
    _write(repo, "main.json", {})
    with pytest.raises(SystemExit) as exit_info:
        main(["regress"])
    assert exit_info.value.code == 1


def test_unknown_ref_is_a_usage_error(repo, monkeypatch):
    (repo / "params.yaml").write_text(yaml.safe_dump({"regress": {"ref": "no-such-ref"}}))
    monkeypatch.chdir(repo)
    assert main(["regress"]) == 2


def test_profile_reference_fails_on_a_hand_edit_and_update_rewrites_it(repo):
    """--profile compares a scratch run's top-level results with the committed reference results/<profile>/."""
    from eagrl.ops.regress import regress_profile
    from eagrl.ops.scratch import copy_worktree

    params = {**PARAMS, "regress": {**PARAMS["regress"], "profiles": {"ci": "results/ci"}}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    scratch = repo.parent / "scratch"
    scratch.mkdir()
    copy_worktree(repo, scratch)  # stands in for the scratch run: same files, results included
    out = io.StringIO()
    assert regress_profile(repo, "profiles/ci.yaml", fresh=scratch, update=True, out=out) == 0
    assert json.loads((repo / "results" / "ci" / "main.json").read_text()) == MAIN
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "ci reference")
    assert regress_profile(repo, "profiles/ci.yaml", fresh=scratch, out=io.StringIO()) == 0
    edited = json.loads(json.dumps(MAIN))
    edited["synthetic_icu"]["mortality"]["gru"]["auroc_mean"] = 0.83
    _write(repo, "ci/main.json", edited)
    _git(repo, "commit", "-q", "-am", "edit the ci reference by hand")
    out = io.StringIO()
    assert regress_profile(repo, "profiles/ci.yaml", fresh=scratch, out=out) == 1
    assert "main.json:synthetic_icu/mortality/gru/auroc_mean" in out.getvalue() and "changed" in out.getvalue()


def test_profile_without_a_reference_entry_is_a_usage_error(repo):
    from benchmark.config import ConfigError
    from eagrl.ops.regress import regress_profile

    with pytest.raises(ConfigError, match="regress.profiles has no entry 'ci'"):
        regress_profile(repo, "profiles/ci.yaml", fresh=repo, out=io.StringIO())


def _ci_reference(repo, machine_sensitive):
    """Commit a ci reference written by --update (with this machine's fingerprint); return the scratch copy."""
    from eagrl.ops.regress import regress_profile
    from eagrl.ops.scratch import copy_worktree

    params = {**PARAMS, "regress": {**PARAMS["regress"], "profiles": {"ci": "results/ci"},
                                    "machine_sensitive": machine_sensitive}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    scratch = repo.parent / f"{repo.name}-scratch"
    scratch.mkdir()
    copy_worktree(repo, scratch)
    assert regress_profile(repo, "profiles/ci.yaml", fresh=scratch, update=True, out=io.StringIO()) == 0
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "ci reference")
    return scratch


def test_update_records_the_machine_and_it_is_not_compared(repo):
    from eagrl.ops.regress import regress_profile
    from eagrl.ops.regress_machine import machine_fingerprint

    scratch = _ci_reference(repo, ["main.json:*"])
    recorded = json.loads((repo / "results" / "ci" / "machine.json").read_text())
    assert recorded == machine_fingerprint()
    assert {"cpu", "isa", "torch_cpu_capability", "torch"} <= set(recorded)
    out = io.StringIO()
    assert regress_profile(repo, "profiles/ci.yaml", fresh=scratch, out=out) == 0
    assert "machine.json" not in out.getvalue() and "differs from the reference" not in out.getvalue()


def test_on_another_machine_only_machine_sensitive_numbers_are_forgiven(repo, monkeypatch):
    """A score that moved on a different CPU is reported as 'machine'; a cohort count that moved still fails."""
    import eagrl.ops.regress as regress_module

    scratch = _ci_reference(repo, ["main.json:*"])
    edited = json.loads(json.dumps(MAIN))
    edited["synthetic_icu"]["mortality"]["gru"]["auroc_mean"] = 0.83
    _write(repo, "ci/main.json", edited)
    _git(repo, "commit", "-q", "-am", "a reference made on another CPU")

    assert regress_module.regress_profile(repo, "profiles/ci.yaml", fresh=scratch, out=io.StringIO()) == 1  # same machine: strict
    here = regress_module.machine_fingerprint()
    other = {**here, "isa": f"not-{here['isa']}", "torch_cpu_capability": f"not-{here['torch_cpu_capability']}"}
    monkeypatch.setattr(regress_module, "machine_fingerprint", lambda: other)
    out = io.StringIO()
    assert regress_module.regress_profile(repo, "profiles/ci.yaml", fresh=scratch, out=out) == 0
    text = out.getvalue()
    assert "differs from the reference" in text and "torch_cpu_capability" in text
    assert "gru/auroc_mean" in text and "| machine" in text and "machine 1" in text

    cohorts = json.loads(json.dumps(COHORTS))
    cohorts[0]["patients"] = 199
    _write(repo, "ci/cohorts.json", cohorts)
    _git(repo, "commit", "-q", "-am", "a cohort count edited by hand")
    out = io.StringIO()
    assert regress_module.regress_profile(repo, "profiles/ci.yaml", fresh=scratch, out=out) == 1
    assert "cohorts.json" in out.getvalue() and "changed" in out.getvalue()
