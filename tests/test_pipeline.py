"""End to end: `dvc repro` of the prepare stages and the cohort report in a temporary git + DVC repository.

The repository's own dvc.yaml and params.yaml are copied (with small cohorts), together with the source
files the stages depend on; the stages run through the installed `eagrl` command. A second `dvc repro`
must find nothing to do — the property that makes `make repro` cheap after a first run.

The fast tests check the shape of dvc.yaml's deps: code enters every stage as package folders (`benchmark`,
`eagrl` and the `methods/<family>` folders its module imports, checked against the import graph), never as a
hand-kept list of .py files that drifts from the imports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent
TARGETS = ["report_cohorts"]  # pulls in every prepare@<dataset> stage upstream
CODE = ("benchmark", "methods", "eagrl")  # the package folders of the code
FAMILY = re.compile(r"methods/(experts|hybrid|llm|eag_rl)")  # a method family: a stage lists those it imports
CACHES = ("__pycache__/", "*.pyc", ".pytest_cache/")  # kept out of the folder hashes by .dvcignore


def _stage_bodies() -> dict[str, dict]:
    """The stages of dvc.yaml by name, with a foreach stage's `do:` body in place of the stage."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def test_no_stage_lists_python_files_or_paths_inside_the_code_folders():
    for name, stage in _stage_bodies().items():
        inside = [dep for dep in stage.get("deps", []) if dep.endswith(".py") or (
            any(dep.startswith(f"{folder}/") for folder in CODE) and not FAMILY.fullmatch(dep))]
        assert not inside, f"{name}: {inside}; list the folders {CODE} (or methods/<family>) instead"


def method_families(command: str) -> list[str]:
    """The ``methods/<family>`` folders that ``eagrl <command>`` imports: the import closure (every import, at any
    depth, tests/test_layers.py) of its stage module and of eagrl/cli.py, plus eagrl/registry.py's for the harness
    stages that run methods they do not import (``TAKES_METHODS``; the CLI loads the registry only for those)."""
    from eagrl.cli import TAKES_METHODS, module_of
    from tests.test_layers import module_graph

    graph = module_graph()
    graph["eagrl.cli"] = graph["eagrl.cli"] - {"eagrl.registry"}

    def closure(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            module = stack.pop()
            if module not in seen:
                seen.add(module)
                stack += graph.get(module, ())
        return seen

    module = module_of(command)
    assert module, f"no module registers `eagrl {command}`"
    reach = closure(module) | closure("eagrl.cli") | (closure("eagrl.registry") if module in TAKES_METHODS else set())
    return sorted({"/".join(name.split(".")[:2]) for name in reach if name.startswith("methods.")})


def test_every_eagrl_stage_depends_on_exactly_the_code_it_imports():
    """`benchmark` and `eagrl` (every stage runs eagrl/cli.py on the harness), and exactly the method families its
    module reaches: a stale list would skip a needed re-run, a longer one re-runs stages an edit cannot change."""
    for name, stage in _stage_bodies().items():
        if stage["cmd"].startswith("eagrl "):
            deps = stage.get("deps", [])
            assert {"benchmark", "eagrl"} <= set(deps), f"{name} lacks benchmark or eagrl: {deps}"
            listed = sorted(dep for dep in deps if dep == "methods" or dep.startswith("methods/"))
            assert listed == method_families(stage["cmd"].split()[1]), f"{name}: deps {listed}"


def test_a_method_edit_reaches_only_the_stages_that_import_it():
    assert method_families("train-expert") == ["methods/experts"]
    assert method_families("report-main") == []
    assert "methods/eag_rl" in method_families("rl") and "methods/hybrid" not in method_families("rl")
    assert method_families("robustness-dl") == ["methods/eag_rl", "methods/experts", "methods/hybrid", "methods/llm"]


def test_dvcignore_keeps_caches_out_of_the_code_folders():
    patterns = {line.strip() for line in (REPO / ".dvcignore").read_text().splitlines()}
    assert set(CACHES) <= patterns


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _small_params(tmp: Path) -> list[str]:
    """params.yaml with every data set shrunk to 120 patients (40 in test); returns the data set names."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    names = []
    for name, settings in params["datasets"].items():
        if settings.get("source") != "synthetic":
            continue  # real data (TJH, MIMIC-IV) may be absent on a test machine
        settings.update(n_patients=120, n_test=40)
        names.append(name)
    params["datasets"] = {k: v for k, v in params["datasets"].items() if k in names}
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return names


@pytest.mark.slow
def test_dvc_repro_prepare_and_report(tmp_path):
    if not (BIN / "dvc").exists() or not (BIN / "eagrl").exists():
        pytest.skip(f"dvc or eagrl is not installed next to {sys.executable}; run `make test`")
    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in CODE:
        if (REPO / folder).exists():
            shutil.copytree(REPO / folder, repo / folder, ignore=ignore)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, repo / name)
    names = _small_params(repo)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org"}
    _run(["git", "init", "-q"], repo, env)
    _run([str(BIN / "dvc"), "init", "-q"], repo, env)

    first = _run([str(BIN / "dvc"), "repro", *TARGETS], repo, env)
    assert "Running stage" in first
    for name in names:
        assert f"prepare@{name}" in first
        assert (repo / "data" / "cohorts" / name / "arrays.npz").exists()
    report = repo / "results" / "cohorts.md"
    assert report.exists()
    text = report.read_text()
    assert all(name in text for name in names)
    assert (repo / "dvc.lock").exists()
    stamp = report.stat().st_mtime_ns

    second = _run([str(BIN / "dvc"), "repro", *TARGETS], repo, env)
    assert "Running stage" not in second, second
    assert report.stat().st_mtime_ns == stamp
    status = _run([str(BIN / "dvc"), "status", *TARGETS], repo, env)
    assert "up to date" in status.lower(), status


def readme_stage_rows() -> list[tuple[list[str], list[str], str]]:
    """The README's stage table as (DVC stage names, `eagrl` commands, module path) rows; a stage name ending
    in ``*`` stands for every stage with that prefix."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| DVC stages |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        stages, commands, module = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((stages.split(", "), commands.split(", "), module))
    return rows


def test_the_readme_stage_table_names_each_stage_and_its_one_module():
    """Every dvc.yaml stage is in one row of the README's table, its command among the row's commands, and the
    row's module is the one that registers exactly those commands (eagrl.cli.STAGE_MODULES)."""
    from eagrl.cli import STAGE_MODULES

    rows = readme_stage_rows()
    for _, commands, module in rows:
        assert (REPO / module).is_file(), f"README stage table: {module} does not exist"
        dotted = module.removesuffix(".py").replace("/", ".")
        assert set(commands) == set(STAGE_MODULES.get(dotted, ())), f"README stage table: {module} registers {STAGE_MODULES.get(dotted)}"
    for name, stage in _stage_bodies().items():
        matching = [commands for stages, commands, _ in rows
                    if any(name == s or (s.endswith("*") and name.startswith(s[:-1])) for s in stages)]
        assert len(matching) == 1, f"dvc.yaml stage {name} is in {len(matching)} rows of the README's stage table"
        assert stage["cmd"].split()[1] in matching[0], f"{name} runs {stage['cmd']}, not a command of its README row"
