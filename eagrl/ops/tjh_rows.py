"""The rows of the TJH tables: the pipeline's reports restricted to TJH, the counts from the workbook to the
splits, the prompt lengths in tokens, and the wall time each stage logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.cohort import SPLITS, Cohort
from benchmark.paths import COHORTS, CROSS_DOMAIN, EXPERTS, ROBUSTNESS, cohort_dir
from benchmark.reports.paper.external import write_reference_tables
from benchmark.tables import write_table
from eagrl.ops.tjh_config import BACKBONE_MANIFEST, DATASET, TASK


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
    from benchmark.reports.cohorts import report_cohorts
    from benchmark.reports.shift import report_cross_domain, report_robustness
    from eagrl.registry import METHODS
    from methods.experts.report import report_experts

    params = workdir / "params.yaml"
    cohorts = workdir / COHORTS
    only = [dataset]
    paths = report_cohorts(params, cohorts, folder, datasets=only, methods=METHODS)
    paths += report_experts(params, workdir / EXPERTS, cohorts, folder, datasets=only)
    paths += report_robustness(workdir / ROBUSTNESS, folder, params, datasets=only)
    paths += report_cross_domain(workdir / CROSS_DOMAIN, folder, params, workdir, datasets=only)
    if not json.loads((folder / "faithfulness.json").read_text()):
        for suffix in (".md", ".csv", ".json"):
            (folder / f"faithfulness{suffix}").unlink()
        paths = [p for p in paths if p.stem != "faithfulness"]
    cohort = Cohort.load(cohort_dir(dataset, cohorts))
    paths += write_table(count_rows(cohort), folder / "counts", f"{dataset}: patients from the workbook to the splits",
                         "Task mortality (in-hospital death). The workbook row counts every patient of the file; the "
                         "cohort is what `prepare@tjh` builds with the paper group's preprocessing (see README.md of "
                         "the repository, Data sets); the splits are drawn from it as in their code "
                         "(`datasets.tjh.n_test`, `seed`).")
    paths += write_reference_tables(params, workdir, folder / "external_reference", datasets=only)
    return paths


def stage_times(log_dir: Path) -> list[dict[str, Any]]:
    """Wall time and peak memory each stage logged (``logs/<stage>.json``, :func:`benchmark.runtime.start_stage`)."""
    rows = []
    for path in sorted(log_dir.glob("*.json")):
        record = json.loads(path.read_text())
        rows.append({"stage (log name)": record.get("stage", path.stem), "started": record.get("started", ""),
                     "wall s": record.get("wall_s"), "peak MB": record.get("peak_rss_mb")})
    return sorted(rows, key=lambda r: r["started"])


def tokenizer_label(folder: Path) -> str:
    """A short name of the tokenizer's model for the tables: from the backbone manifest (GGUF file or Hugging
    Face location), else the folder's name."""
    manifest = folder / BACKBONE_MANIFEST
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        return str(data.get("gguf_file") or data.get("location") or data.get("source") or folder.name)
    return folder.name
