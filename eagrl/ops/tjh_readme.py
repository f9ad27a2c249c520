"""README.md of the TJH tables: provenance, what ran, the key numbers, and why LLM rows are absent.

Every number is read from the tables written beside it (nothing typed in by hand).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.reports.paper.external import display_value, rows_json
from benchmark.tables import markdown_table
from eagrl.ops.tjh_config import DATASET, TITLE


def _rows(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else []


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


def _tables(folder: Path) -> tuple[list, list, list, list, list, dict[str, dict[str, Any]]]:
    """The tables the README quotes, read from ``folder`` (empty where one was not written)."""
    counts = _rows(folder / "counts.json")
    experts = [r for r in _rows(folder / "experts.json") if r["dataset"] == DATASET]
    cross = _rows(folder / "cross_domain.json")
    robustness = (json.loads((folder / "robustness.json").read_text()).get("degradation", [])
                  if (folder / "robustness.json").exists() else [])
    lengths = {r["dataset"]: r for r in _rows(folder / "prompt_lengths.json")}
    external = [r for r in (rows_json(folder / "external_reference.json") if (folder / "external_reference.json").exists()
                            else []) if r["comparator"] == "expert"]
    return counts, experts, external, robustness, cross, lengths


def _why_no_llm_rows(tjh: dict[str, Any] | None, other: dict[str, Any] | None) -> list[str]:
    """The section "Why there are no LLM rows": TJH's prompt length (beside the source's) and the CPU cost it implies."""
    lines = ["## Why there are no LLM rows", ""]
    if tjh:
        ratio = f", {tjh['tokens_median'] / other['tokens_median']:.1f} times the {other['dataset']} median of " \
                f"{other['tokens_median']:.0f} ({other['features']} features)" if other else ""
        lines.append(
            f"A TJH prompt lists every lab as one line of values over the visits: the median {tjh['style'].upper()} "
            f"prompt of the {tjh['patients']} TJH test patients is **{tjh['tokens_median']:.0f} tokens** "
            f"(min {tjh['tokens_min']}, max {tjh['tokens_max']}) in the tokenizer of the default backbone "
            f"(`{tjh['tokenizer']}`, chat template applied){ratio}; see prompt_lengths.md.")
    return lines + [
        "",
        "On the CPU default (2 cores, the 135M backbone) every LLM stage on TJH — the prompting baselines, Label SFT, "
        "EAG-RL's MCTS, SFT and RL, their robustness and cross-domain runs — would read prompts that long for every "
        "patient and generation step; the synthetic LLM stages alone already take well over an hour there (docs/"
        "profiles.md). LLM rows on TJH come from `make repro TJH=...` (every stage) on a machine sized for it, e.g. the "
        "paper-scale profile on a GPU.",
        "",
    ]


def _stages_ran(info: dict[str, Any]) -> list[str]:
    """The section "Stages that ran": the DVC targets, the stages DVC ran and each stage's logged wall time and memory."""
    return [
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


def _provenance(info: dict[str, Any]) -> list[str]:
    """The title and the provenance list: how the tables were produced, from which commit, workbook and date."""
    models = ", ".join(info["models"])
    return [
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
    ]


def readme_text(info: dict[str, Any], folder: Path) -> str:
    """README.md of the TJH tables: provenance, what ran, the key numbers, and why LLM rows are absent."""
    counts, experts, external, robustness, cross, lengths = _tables(folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "README.md")
    lines = [
        *_provenance(info),
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
        *_why_no_llm_rows(lengths.get(DATASET), lengths.get(info["source"])),
        *_stages_ran(info),
    ]
    return "\n".join(lines)
