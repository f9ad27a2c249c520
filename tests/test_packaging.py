"""The README's two commands are the only way in: the Makefile, CI and the Dockerfile all use them."""

import re
import tomllib

from tests.conftest import REPO

README_COMMANDS = {"make repro", "make test"}


def readme_commands() -> set[str]:
    text = (REPO / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick_start, re.S).group(1)
    return {line.split("#")[0].strip() for line in block.splitlines() if line.strip()}


def test_readme_gives_exactly_the_two_commands():
    assert readme_commands() == README_COMMANDS


def test_ci_runs_the_readme_test_command():
    lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert "make test" in lines


def _dockerfile() -> str:
    return (REPO / "Dockerfile").read_text().replace("\\\n", " ")


def test_dockerfile_runs_the_readme_commands():
    text = _dockerfile()
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    make_calls = [f"make {m.group(1)}" for run in runs for m in re.finditer(r"(?:^RUN|&&|;)\s*make (\w+)", run)]
    # `make deps` installs the dependencies alone (a layer before the source); the README's test command does the rest
    assert make_calls == ["make deps", "make test"], "the image must install through the README's test command only"
    cmd = re.search(r'^CMD \[(.*)\]', text, re.M).group(1)
    assert cmd.replace('"', "").replace(", ", " ") == "make repro"


def test_dockerfile_layers_user_volumes_and_secrets():
    text = _dockerfile()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "ARG BASE=python:3.11-slim" and lines[1] == "FROM ${BASE}"
    index = {line.split()[0] + " " + line.split()[-2]: i for i, line in enumerate(lines) if line.startswith("COPY")}
    deps = next(i for i, line in enumerate(lines) if "make deps" in line)
    source = next(i for i, line in enumerate(lines) if re.match(r"COPY .* \. \.$", line))
    assert index["COPY Makefile"] < deps < source, "dependencies are installed before the source is copied"
    user = next(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert user < deps and not re.match(r"USER (0|root)\b", lines[user]), "the suite runs as a non-root user"
    volumes = re.search(r"^VOLUME \[(.*)\]", text, re.M).group(1)
    for path in ("/suite/.dvc/cache", "/suite/models", "/suite/outputs", "huggingface"):
        assert path in volumes
    # the CA bundle is a BuildKit secret: mounted for a RUN, never copied into or set in the image
    assert "--mount=type=secret,id=pip_ca,required=false" in text
    assert not re.search(r"^(ENV|ARG).*PIP_(CERT|CONFIG_FILE)", text, re.M)
    assert "--build-arg VARIANT=gpu" in text and "nvidia/cuda" in (REPO / "README.md").read_text()


def test_local_base_script():
    script = (REPO / "docker/build-local-base.sh").read_text()
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert "debootstrap --variant=minbase" in script and "docker import" in script


def test_makefile_targets_exist():
    text = (REPO / "Makefile").read_text()
    for target in ("repro:", "test:", "install:"):
        assert re.search(rf"^{target}", text, re.M), target
    assert "dvc repro" in text and "pytest" in text


def test_cpu_torch_is_pinned_exactly():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch == ["torch==2.13.0"], "a loose torch pin pulls a multi-GB CUDA build on the CPU path"
    assert any(d.startswith("vllm") for d in project["optional-dependencies"]["gpu"])
    assert project["scripts"]["eagrl"] == "eagrl.cli:main"


PATIENT_DATA = ["tjh/time_series_375_prerpocess_en.xlsx", "raw/tjh.xls", "hosp/labevents.csv.gz",
                "cohort/values.parquet", "mimic-iv-2.2/hosp/admissions.csv", "data/cohorts/tjh/meta.json"]


def test_patient_data_is_ignored_by_git():
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "--no-index", *PATIENT_DATA], cwd=REPO, capture_output=True,
                            text=True)
    assert sorted(result.stdout.split()) == sorted(PATIENT_DATA)


def test_patient_data_is_kept_out_of_the_image():
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for needed in ("**/*.xlsx", "**/*.xls", "**/*.parquet", "**/*.csv.gz", "data", "mimic*"):
        assert needed in patterns


VERDICT_HEADER = "| claim | verdict | why |"


def test_readme_is_a_short_front_page():
    readme = REPO / "README.md"
    assert readme.stat().st_size < 10_000, "the README is a front page: reference material goes to docs/"
    first_screen = "\n".join(readme.read_text().splitlines()[:60])
    for needed in ("make repro", "make test", "source .venv/bin/activate", VERDICT_HEADER):
        assert needed in first_screen, f"{needed!r} is not in the README's first 60 lines"


MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_markdown_links_point_to_existing_files():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) > 1, "docs/ holds the reference pages"
    broken = []
    for page in pages:
        for target in MARKDOWN_LINK.findall(page.read_text()):
            path = target.split("#", 1)[0]
            if not path or re.match(r"^[a-z][a-z0-9+.-]*:", path):  # anchor within the page, or a URL
                continue
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, broken


def _declared_distributions() -> tuple[set[str], set[str]]:
    """(runtime dependencies, extras' dependencies) of pyproject.toml, as normalised distribution names."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def names(requirements):
        return {re.split(r"[=<>!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
                for r in requirements}

    extras = set().union(*(names(v) for v in project.get("optional-dependencies", {}).values()))
    return names(project["dependencies"]), extras


def test_every_third_party_import_of_the_suite_is_a_declared_dependency():
    """benchmark/, methods/ and tests/ import only the standard library, themselves and pyproject's dependencies
    (optional GPU imports such as vllm, and the test tools, come from an extra); test tools are not runtime
    dependencies."""
    import ast
    import importlib.metadata
    import sys

    runtime, extras = _declared_distributions()
    assert not {"pytest", "pytest-benchmark", "ruff"} & runtime
    assert {"pytest", "pytest-benchmark"} <= extras
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for path in [p for folder in ("benchmark", "methods", "eagrl", "tests") for p in (REPO / folder).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                       else [])
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ("benchmark", "benchmarks", "eagrl", "methods", "tests"):
                    continue
                dists = {d.lower().replace("_", "-").replace(".", "-") for d in providers.get(top, [top])}
                if not dists & (runtime | extras):
                    undeclared.setdefault(top, path.relative_to(REPO).as_posix())
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
