"""``eagrl tjh-tables`` / ``make tjh-tables TJH=PATH``: the real-data (TJH) tables, in ``results/tjh/``.

The committed tables of ``results/`` come from the default profile, which has synthetic data only: the TJH
workbook is public but may not be redistributed, so ``params.yaml`` does not name it. ``eagrl configure --tjh
PATH`` (``make repro TJH=PATH``) adds ``datasets.tjh`` and the cross-domain pair ``synthetic_icu`` → ``tjh``;
a full ``dvc repro`` then also runs every LLM stage on TJH, whose prompts hold one line per lab (73 labs:
thousands of tokens), far too slow on the 2-core CPU of the default profile. This command produces the
deep-learning side instead, so that readers see real-data numbers beside the synthetic ones:

1. the working tree (tracked and untracked-but-not-ignored files: the code being run, committed or not) is
   copied into a scratch folder (:func:`eagrl.ops.scratch.copy_worktree`), without ``results/`` and
   ``dvc.lock`` so that every number comes from this run; ``git init``; ``eagrl configure --tjh PATH`` there
   (``--models`` then restricts ``experts.models``). The user's params.yaml, results and DVC cache are
   never touched, and the workbook is read where it is, never copied;
2. ``dvc repro`` of exactly the stages the tables need: ``prepare@tjh``, ``train_expert@tjh-<model>``,
   ``robustness_dl@tjh`` and the ``cross_domain_dl`` stages of the ``synthetic_icu`` → ``tjh`` pair
   (names read from ``dvc stage list``); DVC runs their upstream (``prepare@synthetic_icu``, the
   ``synthetic_icu`` experts) by itself. ``build_backbone`` runs too when no built backbone is found (below);
3. the report functions of the pipeline (``report-cohorts``, ``report-experts``, ``report-robustness``,
   ``report-cross-domain``) write their tables restricted to TJH (their ``datasets`` filter), plus
   ``counts`` (workbook → cohort → splits), ``external_reference`` (our TJH experts beside ClinicRealm's
   on the same split, :mod:`benchmark.reports.paper.external`) and ``prompt_lengths`` (the TJH prompts in tokens of the
   backbone's tokenizer, which is why LLM rows are absent), and ``README.md`` (command, commit, the
   workbook's sha256, date, stages run, key numbers). The folder ``--out`` is replaced as a whole, in
   one rename, and only when it is absent, empty or an earlier output of this command.

The prompt lengths need the backbone's tokenizer: ``--backbone DIR`` (a folder built by ``eagrl
build-backbone``, or any Hugging Face model folder), else ``<repository>/models/backbone`` when it has been
built, else ``build_backbone`` runs in the scratch copy (about 20 s). The scratch copy is removed after a
successful run unless ``--keep-workdir``; after a failure it is kept for inspection.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from benchmark.config import ConfigError, describe, load_params, section
from benchmark.data.cohort import Cohort
from benchmark.paths import BACKBONE, COHORTS, RESULTS, cohort_dir
from benchmark.reports.index import git_commit, sha256_file
from benchmark.runtime import atomic_directory, atomic_write_text
from benchmark.stage_cli import stage_parser
from benchmark.tables import write_table
from eagrl.ops.scratch import make_scratch_copy, scratch_env
from eagrl.ops.tjh_config import (
    DATASET,
    TJHTablesConfig,
    check_out,
    check_workbook,
    find_backbone,
    restrict_models,
)
from eagrl.ops.tjh_readme import readme_text
from eagrl.ops.tjh_rows import (
    load_tokenizer_from,
    prompt_length_rows,
    stage_times,
    tokenizer_label,
    write_tables,
)


@dataclass
class ScratchRun:
    """What happened in the scratch copy."""

    workdir: Path
    targets: list[str]
    ran: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    backbone: Path | None = None


def target_stages(params: dict[str, Any], stage_names: list[str], source: str = "synthetic_icu",
                  dataset: str = DATASET, where: str = "params.yaml") -> list[str]:
    """The DVC stages the TJH tables need (see the module docstring), checked against ``stage_names``.

    The cross-domain stages are named by DVC after the pair's position in ``cross_domain.pairs``
    (``cross_domain_dl@pair<i>-<model>``), so the position of ``source`` → ``dataset`` is looked up here.
    """
    models = list(section(params, "experts.models", where))
    pairs = section(params, "cross_domain.pairs", where)
    positions = [i for i, pair in enumerate(pairs) if pair.get("source") == source and pair.get("target") == dataset]
    if not positions:
        raise ConfigError(f"{where}: cross_domain.pairs has no {{source: {source}, target: {dataset}}} pair; "
                          f"`eagrl configure --tjh PATH` adds it when '{source}' is a data set (or pass --source)")
    pair = f"pair{positions[0]}"
    targets = [f"prepare@{dataset}"]
    targets += [f"train_expert@{dataset}-{m}" for m in models]
    targets += [f"robustness_dl@{dataset}"]  # every expert of experts.models, one stage
    targets += [f"cross_domain_dl@{pair}-{m}" for m in models]
    missing = [t for t in targets if t not in stage_names]
    if missing:
        raise ConfigError(f"dvc.yaml: no stage(s) {missing} (after `eagrl configure --tjh`); the stage names of "
                          f"prepare / train_expert / robustness_dl / cross_domain_dl changed: update "
                          f"eagrl/ops/tjh_tables.py:target_stages")
    return targets


# ------------------------------------------------------------------------------------------ scratch run
def _say(message: str, log: TextIO) -> None:
    print(f"tjh-tables: {message}", file=log, flush=True)


def _step(command: list[str], cwd: Path, env: dict[str, str], log: TextIO, capture: bool = False) -> tuple[str, float]:
    """Run one command in the scratch copy (its output streamed unless ``capture``); raise on failure."""
    _say(f"$ {' '.join(command)}", log)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        detail = f"\n{result.stdout}\n{result.stderr}" if capture else " (its output is above)"
        raise ConfigError(f"`{' '.join(command)}` failed in {cwd}{detail}; the scratch copy is kept for inspection")
    _say(f"  done in {seconds:.1f} s", log)
    return result.stdout or "", seconds


def run_scratch(root: Path, config: TJHTablesConfig, workbook: Path, workdir: Path, log: TextIO) -> ScratchRun:
    """Steps 1-2 of the module docstring: copy, configure, ``dvc repro`` of the needed stages."""
    count = make_scratch_copy(root, workdir)  # every table must come from this run
    (workdir / "dvc.lock").unlink(missing_ok=True)  # every needed stage runs; dvc.lock then lists exactly those
    _say(f"copied {count} files of {root} to {workdir}", log)
    env = scratch_env(workdir)
    bin_dir = Path(sys.executable).parent
    seconds: dict[str, float] = {}
    _step(["git", "init", "-q"], workdir, env, log)
    _, seconds["configure"] = _step([str(bin_dir / "eagrl"), "configure", "--tjh", str(workbook)], workdir, env, log)
    params_path = workdir / "params.yaml"
    if config.models:
        restrict_models(params_path, config.models)
        _say(f"experts.models restricted to {config.models}", log)
    listed, _ = _step([str(bin_dir / "dvc"), "stage", "list", "--name-only"], workdir, env, log, capture=True)
    targets = target_stages(load_params(params_path), listed.split(), config.source, DATASET, str(params_path))
    backbone = find_backbone(root, config.backbone)
    if backbone is None:
        targets.append("build_backbone")
    _say(f"dvc repro of {len(targets)} target stage(s) and their upstream: {' '.join(targets)}", log)
    _, seconds["dvc_repro"] = _step([str(bin_dir / "dvc"), "repro", *targets], workdir, env, log)
    lock = yaml.safe_load((workdir / "dvc.lock").read_text()) or {}
    ran = list(lock.get("stages", {}))
    if backbone is None:
        backbone = workdir / BACKBONE
    return ScratchRun(workdir, targets, ran, seconds, backbone)


# ------------------------------------------------------------------------------------------ command
def tjh_tables(config: TJHTablesConfig, root: str | Path = ".", log: TextIO = sys.stdout) -> Path:
    """The whole command (module docstring); returns the output folder."""
    root = Path(root).resolve()
    workbook = check_workbook(config.tjh)
    out = Path(config.out) if Path(config.out).is_absolute() else root / config.out
    check_out(out)
    started = time.perf_counter()
    commit, dirty = git_commit(root)  # of the code copied now (edits made during the run are not in it)
    workdir = Path(config.workdir).resolve() if config.workdir else Path(tempfile.mkdtemp(prefix="eagrl-tjh-tables-"))
    run = run_scratch(root, config, workbook, workdir, log)
    staging = workdir / RESULTS / DATASET
    _say(f"writing the tables restricted to {DATASET} into {staging}", log)
    write_tables(workdir, staging, config.source, DATASET)
    params = workdir / "params.yaml"
    models = list(section(load_params(params), "experts.models", str(params)))
    _say(f"measuring {config.style} prompt lengths with the tokenizer of {run.backbone}", log)
    tokenizer = load_tokenizer_from(run.backbone)
    cohorts = [Cohort.load(cohort_dir(name, workdir / COHORTS)) for name in (DATASET, config.source)]
    lengths = prompt_length_rows(cohorts, tokenizer, params, config.style, tokenizer_name=tokenizer_label(run.backbone))
    write_table(lengths, staging / "prompt_lengths", "Prompt lengths in tokens",
                f"{config.style.upper()} prompts of every test patient, rendered as the LLM methods render them (chat "
                "template of `llm.prompt`), counted with the backbone's tokenizer. Why the TJH tables have no LLM rows.",
                floatfmt=".1f")
    info = {
        "command": " ".join(["eagrl tjh-tables --tjh", workbook.name, *(["--models", *config.models] if config.models else [])]),
        "commit": commit + (" + uncommitted changes" if dirty else ""),
        "workbook_name": workbook.name, "workbook_sha256": sha256_file(workbook),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), "models": models, "source": config.source,
        "repro_seconds": run.seconds.get("dvc_repro", 0.0), "cpus": os.cpu_count() or 1, "load": os.getloadavg()[0],
        "targets": run.targets, "ran": run.ran, "stage_times": stage_times(workdir / "logs"),
    }
    atomic_write_text(staging / "README.md", readme_text(info, staging))
    with atomic_directory(out) as tmp:
        for path in sorted(staging.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                target = tmp / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    _say(f"{len([p for p in out.rglob('*') if p.is_file()])} file(s) written to {out} in "
         f"{(time.perf_counter() - started) / 60:.1f} min", log)
    if config.keep_workdir:
        _say(f"scratch copy kept at {workdir}", log)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl tjh-tables``."""
    parser = stage_parser(subparsers, "tjh-tables", "Real-data (TJH) DL tables into results/tjh/ (make tjh-tables TJH=PATH).",
                          __doc__, "options:\n" + describe(TJHTablesConfig), params=False)
    parser.add_argument("--tjh", required=True, help="Path of time_series_375_prerpocess_en.xlsx.")
    parser.add_argument("--out", default="results/tjh", help="Output folder (default: results/tjh).")
    parser.add_argument("--root", default=".", help="Repository root whose working tree is copied.")
    parser.add_argument("--source", default="synthetic_icu", help="Source data set of the cross-domain pair.")
    parser.add_argument("--models", nargs="+", default=[], help="Experts to train and report (default: experts.models).")
    parser.add_argument("--backbone", default="", help="Folder with the backbone's tokenizer (default: models/backbone "
                                                       "when built, else built in the scratch copy).")
    parser.add_argument("--style", default="qd", help="Prompt style of the length measurement (default: qd).")
    parser.add_argument("--workdir", default="", help="Scratch folder (default: a new temporary folder).")
    parser.add_argument("--keep-workdir", action="store_true", help="Keep the scratch copy after a successful run.")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    config = TJHTablesConfig(tjh=args.tjh, out=args.out, source=args.source, models=list(args.models),
                             backbone=args.backbone, style=args.style, workdir=args.workdir,
                             keep_workdir=args.keep_workdir)
    tjh_tables(config, args.root)
