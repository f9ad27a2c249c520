"""results/README.md: the index of the results files with profile, commit and params hash."""

from __future__ import annotations

import hashlib
import subprocess

import yaml

from benchmark.reports.index import git_commit, provenance
from eagrl.cli import main


def _params(path, **extra):
    path.write_text(yaml.safe_dump({"seed": 1, **extra}))
    return path


def test_index_lists_every_file_with_provenance(tmp_path):
    params = _params(tmp_path / "params.yaml", profile="paper")
    results = tmp_path / "results"
    results.mkdir()
    (results / "main.md").write_text("# Main results\n\ntext\n")
    (results / "main.json").write_text("{}\n")
    (results / "claims.md").write_text("# The paper's claims, checked\n")
    assert main(["report-index", "--params", str(params), "--results", str(results)]) == 0
    text = (results / "README.md").read_text()
    assert "profile: `paper`" in text
    assert hashlib.sha256(params.read_bytes()).hexdigest() in text
    assert "| [main.json](main.json) | Main results" in text  # the JSON takes its Markdown twin's title
    assert "The paper's claims, checked" in text
    assert "README.md](README.md)" not in text
    assert "Sub-folders" not in text  # none here


def test_index_names_the_command_of_each_sub_folder(tmp_path):
    params = _params(tmp_path / "params.yaml")
    results = tmp_path / "results"
    (results / "tjh").mkdir(parents=True)
    (results / "tjh" / "experts.md").write_text("# Expert models\n")
    (results / "plots").mkdir()
    assert main(["report-index", "--params", str(params), "--results", str(results)]) == 0
    text = (results / "README.md").read_text()
    assert "- [tjh/](tjh/): real-data (TJH) tables" in text and "make tjh-tables TJH=" in text
    assert "[ci/]" not in text and "[plots/]" not in text
    assert "| [tjh/experts.md](tjh/experts.md) | Expert models" in text


def test_profile_defaults_and_commit_outside_git(tmp_path):
    info = provenance(_params(tmp_path / "params.yaml"), cwd=tmp_path)
    assert info["profile"] == "default"
    assert info["commit"] == "unknown"


def test_commit_and_dirty_flag(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    params = _params(tmp_path / "params.yaml")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    commit, dirty = git_commit(tmp_path)
    assert len(commit) == 40 and not dirty
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "main.md").write_text("old\n")
    git("add", ".")
    git("commit", "-q", "-m", "y")
    commit = git_commit(tmp_path)[0]
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "results" / "main.md").write_text("new\n")
    assert git_commit(tmp_path) == (commit, False)   # what the run rewrites is not "uncommitted code"
    params.write_text("seed: 2\n")
    assert git_commit(tmp_path) == (commit, True)


def test_the_index_carries_no_wall_clock_time(tmp_path):
    """Re-writing the index later, over files touched later, gives the same bytes (a stable DVC hash)."""
    import os

    params = _params(tmp_path / "params.yaml")
    results = tmp_path / "results"
    results.mkdir()
    (results / "main.md").write_text("# Main results\n")
    assert main(["report-index", "--params", str(params), "--results", str(results)]) == 0
    first = (results / "README.md").read_bytes()
    os.utime(results / "main.md", (1_000_000_000, 1_000_000_000))  # another modification time
    assert main(["report-index", "--params", str(params), "--results", str(results)]) == 0
    assert (results / "README.md").read_bytes() == first
