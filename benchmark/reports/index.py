"""Stage ``report_index``: ``results/README.md``, the index of every results file and where it came from.

A number in ``results/`` is only worth something if a reader can tell which settings and which code
produced it. The index records, once for the whole folder,

* the **profile** (``profile`` in params.yaml: ``default`` for the CPU profile, ``paper`` for the
  paper-scale one; ``eagrl configure --profile`` selects one),
* the **git commit** of the code (``git rev-parse HEAD``, marked ``+ uncommitted changes`` when the
  tracked code or settings differ from it; ``dvc.lock`` and ``results/``, which the run itself rewrites, do not count),
* the **params hash** — sha256 of the bytes of params.yaml — so that two result sets can be checked to
  come from the same settings without diffing the files,

No wall-clock time is written (no date, no modification time): the index changes only when a result or the
code that made it changes, so its hash stays stable across re-runs; the commit dates the results.

then the sub-folders written by other commands than ``dvc repro`` (``ci/``: the ``make regress`` reference;
``tjh/``: the real-data tables of ``make tjh-tables``), each with the command that writes it, and then one line
per file: its title (the Markdown heading, or that of the Markdown twin of a CSV/JSON), size and sha256 prefix. The stage runs last (its DVC deps are the other results files)
so the index lists them all.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from benchmark.config import ParamsSource, load_params
from benchmark.paths import RESULTS
from benchmark.runtime import LOGGER, atomic_write_text, configure_logging, sha256_file
from benchmark.stage_cli import stage_parser
from benchmark.tables import markdown_table

INDEX = "README.md"
DEFAULT_PROFILE = "default"
# Sub-folders of results/ that `dvc repro` does not write: name -> what they hold and which command writes them.
SUBFOLDERS = {
    "ci": "the `ci` profile's reference numbers for `make regress`, written by "
          "`eagrl regress --profile profiles/ci.yaml --update` (a scratch run of that profile)",
    "cpu-full": "the `cpu-full` profile's tables (EAG-RL and every ablation on every default task), written by "
                "`eagrl regress --profile profiles/cpu-full.yaml --update` (a scratch run of that profile; hours on "
                "2 cores; its runtime.md gives the stages' times)",
    "tjh": "real-data (TJH) tables of the deep-learning experts, written by `make tjh-tables TJH=/path/to/"
           "time_series_375_prerpocess_en.xlsx` (a scratch run with the workbook; see tjh/README.md)",
}


# Tracked paths that `dvc repro` itself rewrites: a change there does not mean the code differs from the commit.
PIPELINE_WRITTEN = ("dvc.lock", RESULTS.as_posix())


def git_commit(cwd: str | Path = ".") -> tuple[str, bool]:
    """``(commit, dirty)`` of the repository at ``cwd``; ``("unknown", False)`` outside git.

    ``dirty`` ignores :data:`PIPELINE_WRITTEN`, so a full run on a clean checkout is recorded as clean.
    """
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 *(f":(exclude){path}" for path in PIPELINE_WRITTEN)], cwd=cwd,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())


def profile_name(params: dict[str, Any]) -> str:
    """The profile a params mapping declares (``profile`` key), ``default`` when it declares none."""
    value = params.get("profile")
    return str(value) if value else DEFAULT_PROFILE


def provenance(params: ParamsSource = "params.yaml", cwd: str | Path = ".") -> dict[str, Any]:
    """Profile, git commit (+ dirty flag) and params sha256."""
    commit, dirty = git_commit(cwd)
    params = load_params(params)
    return {
        "profile": profile_name(params),
        "commit": commit,
        "dirty": dirty,
        "params_sha256": sha256_file(params.source),
    }


def _title(path: Path) -> str:
    """The first Markdown heading of ``path`` or of its ``.md`` twin; empty when there is none."""
    source = path if path.suffix == ".md" else path.with_suffix(".md")
    if not source.exists():
        return ""
    for line in source.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def index_rows(results: str | Path = RESULTS) -> list[dict[str, Any]]:
    """One row per file under ``results`` (except the index itself), sorted by path."""
    results = Path(results)
    rows = []
    for path in sorted(p for p in results.rglob("*") if p.is_file() and p.name != INDEX and not p.name.startswith(".")):
        stat = path.stat()
        rows.append({
            "file": f"[{path.relative_to(results).as_posix()}]({path.relative_to(results).as_posix()})",
            "title": _title(path) or "—",
            "bytes": stat.st_size,
            "sha256": sha256_file(path)[:12],
        })
    return rows


def subfolder_lines(results: str | Path = RESULTS) -> list[str]:
    """Markdown lines naming the sub-folders of ``results`` that another command writes (``SUBFOLDERS``)."""
    results = Path(results)
    lines = [f"- [{name}/]({name}/): {text}" for name, text in SUBFOLDERS.items() if (results / name).is_dir()]
    return ["Sub-folders written by other commands:", "", *lines, ""] if lines else []


def write_index(params: ParamsSource = "params.yaml", results: str | Path = RESULTS, cwd: str | Path = ".") -> Path:
    """Write ``results/README.md``; returns its path."""
    configure_logging()
    params = load_params(params)
    info = provenance(params, cwd)
    rows = index_rows(results)
    commit = info["commit"] + (" + uncommitted changes" if info["dirty"] else "")
    text = "\n".join([
        "# Results",
        "",
        "Every table here is written by `dvc repro` (see dvc.yaml), except in the sub-folders listed below; nothing "
        "is typed in by hand. `make regress` re-runs the pipeline and checks every number in the JSON files against "
        "the committed ones.",
        "",
        f"- profile: `{info['profile']}`",
        f"- git commit: `{commit}`",
        f"- params hash (sha256 of {Path(params.source).name}): `{info['params_sha256']}`",
        "",
        "`.md` files are for reading, `.csv` for spreadsheets, `.json` for `dvc metrics show` and `make regress`.",
        "",
        *subfolder_lines(results),
        markdown_table(rows) if rows else "(no results files yet)",
        "",
    ])
    path = atomic_write_text(Path(results) / INDEX, text)
    LOGGER.info("report-index: %d file(s), profile %s, commit %s -> %s", len(rows), info["profile"], commit, path)
    return path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-index``."""
    parser = stage_parser(subparsers, "report-index",
                          "Write results/README.md, the index of the results files (DVC stage report_index).", __doc__)
    parser.add_argument("--results", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: write_index(args.params, args.results))
