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
   on the same split, :mod:`benchmark.paper.external`) and ``prompt_lengths`` (the TJH prompts in tokens of the
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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml

from benchmark.config import ConfigError, describe, load_params, option, section
from benchmark.data.cohort import SPLITS, Cohort
from benchmark.paper.external import display_value, rows_json, write_reference_tables
from benchmark.results_index import git_commit, sha256_file
from benchmark.runtime import atomic_directory, atomic_write_text
from benchmark.tables import markdown_table, write_table
from eagrl.ops.scratch import make_scratch_copy, scratch_env

DATASET = "tjh"         # the data set `eagrl configure --tjh` adds
TASK = "mortality"      # TJH's only task
TITLE = "TJH (real data): deep-learning tables"  # first line of README.md: marks a folder this command may replace
BACKBONE_MANIFEST = "backbone.json"


@dataclass
class TJHTablesConfig:
    """Settings of ``eagrl tjh-tables`` (command-line options; nothing of it lives in params.yaml)."""

    tjh: str = option(help="Path of time_series_375_prerpocess_en.xlsx (read where it is, never copied).")
    out: str = option("results/tjh", help="Folder that receives the tables (replaced as a whole).")
    source: str = option("synthetic_icu", help="Source data set of the cross-domain pair source -> tjh that "
                                               "`eagrl configure --tjh` adds.")
    models: list[str] = option([], help="Experts trained and reported ([] = experts.models of params.yaml); a "
                                        "subset makes a quick run (the end-to-end test uses logistic).")
    backbone: str = option("", help="Folder with the backbone's tokenizer for the prompt lengths ('' = "
                                    "<repository>/models/backbone when built, else build_backbone in the scratch copy).")
    style: str = option("qd", help="Prompt style measured (qd = Question Decomposition, EAG-RL's format).")
    workdir: str = option("", help="Scratch folder ('' = a new temporary folder); must be absent or empty.")
    keep_workdir: bool = option(False, help="Keep the scratch copy after a successful run (it is always kept "
                                            "after a failure).")


@dataclass
class ScratchRun:
    """What happened in the scratch copy."""

    workdir: Path
    targets: list[str]
    ran: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    backbone: Path | None = None


# ------------------------------------------------------------------------------------------ checks
def check_workbook(path: str | Path) -> Path:
    """The workbook's absolute path; a clear error when it is missing or not an .xlsx file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"--tjh {path}: TJH workbook not found; download time_series_375_prerpocess_en.xlsx "
                          f"(HAIRLAB/Pre_Surv_COVID_19 or yhzhu99/ehr-llm-benchmark) and pass its path "
                          f"(`make tjh-tables TJH=/path/to/time_series_375_prerpocess_en.xlsx`)")
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(f"--tjh {path}: expected the Excel workbook time_series_375_prerpocess_en.xlsx")
    return path.resolve()


def check_out(out: Path) -> None:
    """Refuse to replace a folder that holds something else than an earlier output of this command."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder; pass another --out")
    readme = out / "README.md"
    ours = readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(f"# {TITLE}")
    if any(out.iterdir()) and not ours:
        raise ConfigError(f"--out {out}: folder is not empty and was not written by `eagrl tjh-tables` (its "
                          f"README.md does not start with '# {TITLE}'); it would be replaced as a whole: pass "
                          f"another --out, e.g. results/tjh")


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


def restrict_models(params_path: Path, models: list[str]) -> None:
    """Set ``experts.models`` to ``models`` (a subset of the configured list), keeping comments."""
    from ruamel.yaml import YAML

    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.indent(mapping=2, sequence=4, offset=2)
    yaml_rt.width = 4096
    data = yaml_rt.load(params_path.read_text())
    configured = list(data["experts"]["models"])
    unknown = [m for m in models if m not in configured]
    if unknown:
        raise ConfigError(f"--models {unknown}: not in experts.models of params.yaml ({configured}); choose among those")
    data["experts"]["models"] = [m for m in configured if m in models]
    with params_path.open("w") as handle:
        yaml_rt.dump(data, handle)


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


def find_backbone(root: Path, given: str) -> Path | None:
    """The tokenizer folder to use: ``given``, else a built ``<root>/models/backbone``, else None (build it)."""
    if given:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"--backbone {given}: folder not found; pass a folder built by `eagrl build-backbone` "
                              f"or a Hugging Face model folder, or leave it out to build the backbone in the scratch copy")
        return path
    built = root / "models" / "backbone"
    return built.resolve() if (built / BACKBONE_MANIFEST).is_file() else None


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
        backbone = workdir / "models" / "backbone"
    return ScratchRun(workdir, targets, ran, seconds, backbone)


# ------------------------------------------------------------------------------------------ tables
def count_rows(cohort: Cohort, task: str = TASK) -> list[dict[str, Any]]:
    """Patients, deaths and survivors from the workbook (when the cohort records its file counts) to the splits."""
    counts = cohort.provenance.get("counts", {})
    rows: list[dict[str, Any]] = []
    if "patients_in_file" in counts and "deaths_in_file" in counts:
        patients, deaths = int(counts["patients_in_file"]), int(counts["deaths_in_file"])
        rows.append({"step": "workbook (every patient in the file)", "patients": patients, "deaths": deaths,
                     "survivors": patients - deaths})
        dropped = patients - len(cohort)
        label = (f"cohort ({dropped} patients without a dated row dropped)" if dropped
                 else "cohort (every patient kept)")
    else:
        label = "cohort"
    y = cohort.label(task)
    rows.append({"step": label, "patients": len(cohort), "deaths": int(y.sum()), "survivors": int(len(y) - y.sum())})
    for split in SPLITS:
        part = cohort.split == split
        rows.append({"step": f"{split} split", "patients": int(part.sum()), "deaths": int(y[part].sum()),
                     "survivors": int(part.sum() - y[part].sum())})
    return rows


def load_tokenizer_from(folder: Path):
    """The tokenizer of a built backbone folder (following its manifest for Hugging Face sources) or of a
    Hugging Face model folder."""
    from methods.llm.backbone import load_tokenizer

    manifest = folder / BACKBONE_MANIFEST
    location = str(folder)
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        if data.get("weights") == "source":
            location = data["location"]
    return load_tokenizer(location)


def prompt_length_rows(cohorts: list[Cohort], tokenizer, params_path: Path, style: str = "qd",
                       split: str = "test", task: str = TASK, tokenizer_name: str = "") -> list[dict[str, Any]]:
    """Per cohort: the ``style`` prompts of the ``split`` patients as the model reads them (chat template of
    ``llm.prompt``, :func:`methods.llm.prompting.rendered_prompts`), in tokens: median, min, max."""
    from methods.llm.config import load_llm_config
    from methods.llm.prompting import rendered_prompts

    prompt = load_llm_config(params_path).prompt
    rows = []
    for cohort in cohorts:
        part = cohort.subset(split)
        rendered = rendered_prompts(tokenizer, part, task, style, prompt)
        lengths = np.array([len(tokenizer(r.text, add_special_tokens=False)["input_ids"]) for r in rendered])
        rows.append({"dataset": cohort.name, "style": style, "split": split, "patients": len(part),
                     "features": len(cohort.features), "tokens_median": float(np.median(lengths)),
                     "tokens_min": int(lengths.min()), "tokens_max": int(lengths.max()), "tokenizer": tokenizer_name})
    return rows


def write_tables(workdir: Path, folder: Path, source: str = "synthetic_icu", dataset: str = DATASET) -> list[Path]:
    """The report functions of the pipeline, restricted to ``dataset``, writing into ``folder``.

    ``workdir`` is laid out like the repository (params.yaml, data/cohorts, models/experts, outputs/...). An
    empty faithfulness table (no ground-truth salient features: real data) is not kept. Adds ``counts`` and
    ``external_reference`` (the metrics files found by the workdir's ``report.sources``).
    """
    from benchmark.report import report_cohorts
    from benchmark.shift_report import report_cross_domain, report_robustness
    from eagrl.registry import METHODS
    from methods.experts.report import report_experts

    params = workdir / "params.yaml"
    cohorts = workdir / "data" / "cohorts"
    only = [dataset]
    paths = report_cohorts(params, cohorts, folder, datasets=only, methods=METHODS)
    paths += report_experts(params, workdir / "models" / "experts", cohorts, folder, datasets=only)
    paths += report_robustness(workdir / "outputs" / "robustness", folder, params, datasets=only)
    paths += report_cross_domain(workdir / "outputs" / "cross_domain", folder, params, workdir, datasets=only)
    if not json.loads((folder / "faithfulness.json").read_text()):
        for suffix in (".md", ".csv", ".json"):
            (folder / f"faithfulness{suffix}").unlink()
        paths = [p for p in paths if p.stem != "faithfulness"]
    cohort = Cohort.load(cohorts / dataset)
    paths += write_table(count_rows(cohort), folder / "counts", f"{dataset}: patients from the workbook to the splits",
                         "Task mortality (in-hospital death). The workbook row counts every patient of the file; the "
                         "cohort is what `prepare@tjh` builds with the paper group's preprocessing (see README.md of "
                         "the repository, Data sets); the splits are drawn from it as in their code "
                         "(`datasets.tjh.n_test`, `seed`).")
    paths += write_reference_tables(params, workdir, folder / "external_reference", datasets=only)
    return paths


# ------------------------------------------------------------------------------------------ README
def _rows(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else []


def stage_times(log_dir: Path) -> list[dict[str, Any]]:
    """Wall time and peak memory each stage logged (``logs/<stage>.json``, :func:`benchmark.runtime.start_stage`)."""
    rows = []
    for path in sorted(log_dir.glob("*.json")):
        record = json.loads(path.read_text())
        rows.append({"stage (log name)": record.get("stage", path.stem), "started": record.get("started", ""),
                     "wall s": record.get("wall_s"), "peak MB": record.get("peak_rss_mb")})
    return sorted(rows, key=lambda r: r["started"])


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "—" if value is None else format(value, fmt)


def _counts_sentence(counts: list[dict[str, Any]]) -> list[str]:
    """The must-show sentence of the counts, from the rows (nothing typed in)."""
    if not counts or not counts[0]["step"].startswith("workbook"):
        return []
    file, cohort = counts[0], counts[1]
    test = next((r for r in counts if r["step"] == "test split"), None)
    text = (f"The workbook holds **{file['patients']} patients: {file['deaths']} deaths and {file['survivors']} "
            f"survivors** before any split. Like the paper group's code, `prepare@tjh` drops the rows without a date, "
            f"which removes the {file['patients'] - cohort['patients']} patients whose only row is undated and empty "
            f"(`datasets.tjh.undated_rows: admission_day` keeps them): {cohort['patients']} patients "
            f"({cohort['deaths']} deaths) are split")
    if test:
        text += f", **{test['patients']} of them into test** ({test['deaths']} deaths), drawn as in their code"
    return [text + ".", ""]


def readme_text(info: dict[str, Any], folder: Path) -> str:
    """README.md of the TJH tables: provenance, what ran, the key numbers, and why LLM rows are absent."""
    counts = _rows(folder / "counts.json")
    experts = [r for r in _rows(folder / "experts.json") if r["dataset"] == DATASET]
    cross = _rows(folder / "cross_domain.json")
    robustness = (json.loads((folder / "robustness.json").read_text()).get("degradation", [])
                  if (folder / "robustness.json").exists() else [])
    lengths = {r["dataset"]: r for r in _rows(folder / "prompt_lengths.json")}
    external = [r for r in (rows_json(folder / "external_reference.json") if (folder / "external_reference.json").exists()
                            else []) if r["comparator"] == "expert"]
    tjh, other = lengths.get(DATASET), lengths.get(info["source"])
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "README.md")
    models = ", ".join(info["models"])
    lines = [
        f"# {TITLE}",
        "",
        "Real-data numbers beside the synthetic ones of `results/`: the public Tongji Hospital COVID-19 cohort "
        "(TJH; Yan et al., *Nat. Mach. Intell.* 2020), deep-learning experts only. Nothing here is typed in by hand.",
        "",
        f"- produced by: `make tjh-tables TJH=/path/to/{info['workbook_name']}` (here: `{info['command']}`; "
        f"eagrl/ops/tjh_tables.py): a scratch copy of the working tree, `eagrl configure --tjh`, then `dvc repro` "
        f"of the stages listed at the end",
        f"- git commit: `{info['commit']}`",
        f"- workbook: `{info['workbook_name']}`, sha256 `{info['workbook_sha256']}` (not in the repository)",
        f"- date: {info['date']}",
        f"- experts: {models}; cross-domain source: `{info['source']}`",
        f"- `dvc repro` wall time: {info['repro_seconds'] / 60:.1f} min on {info['cpus']} CPU core(s) "
        f"(1-minute load average {info['load']:.1f} when it ended)",
        "",
        "## Counts",
        "",
        markdown_table(counts) if counts else "(no counts)",
        "",
        *_counts_sentence(counts),
        "## Experts on TJH (test split, bootstrap mean ± std)",
        "",
        markdown_table([{"model": r["model"], "n": r["n"], "deaths": r["positives"], "AUROC": r["auroc"],
                         "AUPRC": r["auprc"]} for r in experts]) if experts else "(no expert rows)",
        "",
        "## Beside ClinicRealm (a peer benchmark's published numbers on the same test split)",
        "",
        markdown_table([{"model": r["method"], "metric": r["metric"].upper(),
                         "ours": display_value(r["ours_mean"], r["ours_std"]),
                         "ClinicRealm": display_value(r["theirs_mean"], r["theirs_std"]), "z": _num(r["z"], "+.2f"),
                         "verdict": r["verdict"]} for r in external]) if external else "(no external reference rows)",
        "",
        "Their full-shot experts of the same name (mean ± std over their bootstrap resamples); z = (ours − theirs) / "
        "√(ours_std² + theirs_std²), consistent at |z| ≤ 1.96. Source, commit and their LLM rows: "
        "[external_reference.md](external_reference.md).",
        "",
        "## Robustness on TJH (change of the test AUROC, mean over the levels of each perturbation)",
        "",
        markdown_table([{"model": r["method"], "AUROC unperturbed": _num(r["auroc_none"]),
                         "Δ shuffle": _num(r["shuffle_d_auroc"], "+.3f"), "Δ noise": _num(r["noise_d_auroc"], "+.3f"),
                         "Δ mask": _num(r["mask_d_auroc"], "+.3f")} for r in robustness])
        if robustness else "(no robustness rows)",
        "",
        "## Cross-domain: trained on " + info["source"] + ", tested on TJH",
        "",
        markdown_table([{"model": r["method"], "mapped features": r["mapped_features"],
                         "AUROC": f"{r['auroc_mean']:.3f} ± {r['auroc_std']:.3f}",
                         "AUPRC": f"{r['auprc_mean']:.3f} ± {r['auprc_std']:.3f}"} for r in cross])
        if cross else "(no cross-domain rows)",
        "",
        "## Files",
        "",
        *[f"- [{name}]({name})" for name in files],
        "",
        "`.md` for reading, `.csv` for spreadsheets, `.json` for tools. The tables are the pipeline's own reports "
        "(`report-cohorts`, `report-experts`, `report-robustness`, `report-cross-domain`) restricted to TJH. "
        + ("There is no faithfulness table: it needs ground-truth salient features, which only the synthetic "
           "cohorts have." if not (folder / "faithfulness.json").exists() else ""),
        "",
        "## Why there are no LLM rows",
        "",
    ]
    if tjh:
        ratio = f", {tjh['tokens_median'] / other['tokens_median']:.1f} times the {other['dataset']} median of " \
                f"{other['tokens_median']:.0f} ({other['features']} features)" if other else ""
        lines.append(
            f"A TJH prompt lists every lab as one line of values over the visits: the median {tjh['style'].upper()} "
            f"prompt of the {tjh['patients']} TJH test patients is **{tjh['tokens_median']:.0f} tokens** "
            f"(min {tjh['tokens_min']}, max {tjh['tokens_max']}) in the tokenizer of the default backbone "
            f"(`{tjh['tokenizer']}`, chat template applied){ratio}; see prompt_lengths.md.")
    lines += [
        "",
        "On the CPU default (2 cores, the 135M backbone) every LLM stage on TJH — the prompting baselines, Label SFT, "
        "EAG-RL's MCTS, SFT and RL, their robustness and cross-domain runs — would read prompts that long for every "
        "patient and generation step; the synthetic LLM stages alone already take well over an hour there (docs/"
        "profiles.md). LLM rows on TJH come from `make repro TJH=...` (every stage) on a machine sized for it, e.g. the "
        "paper-scale profile on a GPU.",
        "",
        "## Stages that ran",
        "",
        f"Targets: `{' '.join(info['targets'])}`. DVC ran these stages (the scratch copy's dvc.lock: the targets "
        f"and their upstream):",
        "",
        ", ".join(f"`{s}`" for s in info["ran"]),
        "",
        "Wall time and peak memory each stage logged:",
        "",
        markdown_table(info["stage_times"], floatfmt=".1f") if info["stage_times"] else "(no stage logs)",
        "",
    ]
    return "\n".join(lines)


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
    staging = workdir / "results" / DATASET
    _say(f"writing the tables restricted to {DATASET} into {staging}", log)
    write_tables(workdir, staging, config.source, DATASET)
    params = workdir / "params.yaml"
    models = list(section(load_params(params), "experts.models", str(params)))
    _say(f"measuring {config.style} prompt lengths with the tokenizer of {run.backbone}", log)
    tokenizer = load_tokenizer_from(run.backbone)
    cohorts = [Cohort.load(workdir / "data" / "cohorts" / name) for name in (DATASET, config.source)]
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


def tokenizer_label(folder: Path) -> str:
    """A short name of the tokenizer's model for the tables: from the backbone manifest (GGUF file or Hugging
    Face location), else the folder's name."""
    manifest = folder / BACKBONE_MANIFEST
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        return str(data.get("gguf_file") or data.get("location") or data.get("source") or folder.name)
    return folder.name


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl tjh-tables``."""
    parser = subparsers.add_parser("tjh-tables", help="Real-data (TJH) DL tables into results/tjh/ (make tjh-tables TJH=PATH).",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="options:\n" + describe(TJHTablesConfig))
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
