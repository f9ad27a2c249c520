"""One page and one small metrics file for the whole run: ``results/SUMMARY.md`` and ``results/metrics.json``.

The other report stages each write one table; a reviewer who runs ``dvc repro`` first wants the answer. This
stage reads what they wrote and puts it on one page:

* the paper's claims as verdicts (``results/claims.json``);
* EAG-RL against its RL baselines on the reference cell (``results/rl_comparison.json``), pooled over
  training seeds with the paired test, its interval and the minimum detectable effect;
* the RL runs themselves (``results/rl_training.json``): steps, patients, R_att at the start and the end,
  how often R_att varied within a group, the final parse-failure rate, as the mean over seeds;
* every method on the reference cell (``results/main.json``);
* the plots under ``results/plots/``.

The reference cell is the first (data set, task) pair of ``eag_rl.rl.pairs``: the one every RL variant trains
on. ``results/metrics.json`` holds the handful of numbers ``dvc metrics show`` and ``dvc metrics diff`` print
(``auroc``: EAG-RL, GRPO, w/o R_att, the stage-1 policy and the best DL expert; ``ratt``: R_att over the last
10 % of training, mean over seeds; ``claims``: how many claims hold, fail, are undecided or untestable), short enough to read in one terminal line per file. Nothing is
computed here that the other stages did not compute: this is a view.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import ParamsSource, load_params
from benchmark.method_catalog import STAGE1_METHOD as STAGE1
from benchmark.paths import RESULTS
from benchmark.runtime import LOGGER, atomic_write_text
from benchmark.stage_cli import stage_parser
from benchmark.tables import markdown_table

HEADLINE_VARIANTS = ("eag_rl", "grpo", "wo_ratt")   # the mechanism's comparison (EAG-RL, outcome-only GRPO, w/o R_att)


def reference_cell(params: dict[str, Any]) -> tuple[str, str] | None:
    """(data set, task) of the first RL pair, or None when the profile trains no RL."""
    pairs = (((params.get("eag_rl") or {}).get("rl") or {}).get("pairs")) or []
    return (pairs[0]["dataset"], pairs[0]["task"]) if pairs else None


def verdict_key(status: str) -> str:
    """A claim's status as a short metrics key: holds, fails, undecided (inconclusive) or untestable (whatever the
    reason), so that `dvc metrics show` stays one readable line."""
    if status.startswith("not testable"):
        return "untestable"
    return {"inconclusive": "undecided"}.get(status, status.replace(" ", "_"))


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def by_method(rows: dict[str, Any]) -> dict[str, Any]:
    """main.json's rows of one cell keyed by method name alone (it keys LLM rows "<method> (<backbone>)");
    the first row wins where a method ran on two backbones."""
    out: dict[str, Any] = {}
    for key, row in rows.items():
        out.setdefault(key.split(" (")[0], row)
    return out


def method_auroc(row: dict[str, Any]) -> float | None:
    """A method's AUROC: the mean over training seeds where there are several, else its bootstrap mean."""
    value = row.get("auroc_seeds_mean")
    value = row.get("auroc_mean") if value is None else value
    return None if value is None or not np.isfinite(value) else float(value)


def mean_over_seeds(rows: list[dict[str, Any]], variant: str, key: str) -> float | None:
    """Mean of ``key`` over the seeds of ``variant`` in the RL-training rows (None when absent or all NaN)."""
    values = [r[key] for r in rows if r.get("variant") == variant and r.get(key) is not None]
    values = [float(v) for v in values if np.isfinite(float(v))]
    return float(np.mean(values)) if values else None


def headline_metrics(params: dict[str, Any], results: Path = RESULTS) -> dict[str, Any]:
    """The numbers of ``results/metrics.json`` (see the module docstring); missing inputs leave keys out."""
    cell = reference_cell(params)
    claims = _read(results / "claims.json") or {}
    metrics: dict[str, Any] = {"claims": dict(sorted(Counter(verdict_key(c.get("status", "")) for c in claims.values()).items()))}
    if cell is None:
        return metrics
    methods = by_method(((_read(results / "main.json") or {}).get(cell[0]) or {}).get(cell[1]) or {})
    auroc = {name: method_auroc(methods[name]) for name in (*HEADLINE_VARIANTS, STAGE1) if name in methods}
    experts = [method_auroc(methods[m]) for m in (params.get("experts") or {}).get("models", []) if m in methods]
    experts = [a for a in experts if a is not None]
    if experts:
        auroc["expert"] = max(experts)  # the best DL expert
    metrics["auroc"] = {("stage1" if k == STAGE1 else k): round(v, 4) for k, v in auroc.items() if v is not None}
    training = [r for r in (_read(results / "rl_training.json") or [])
                if (r.get("dataset"), r.get("task")) == cell]
    ratt = {v: mean_over_seeds(training, v, "ratt_last") for v in HEADLINE_VARIANTS}
    metrics["ratt"] = {k: round(v, 4) for k, v in ratt.items() if v is not None}
    return metrics


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def claims_section(claims: dict[str, Any]) -> str:
    """The verdict table: claim, verdict, the reason the verdict stage gave."""
    rows = [{"claim": name, "verdict": c.get("status", "?"), "why": c.get("reason", "")} for name, c in claims.items()]
    return markdown_table(rows) if rows else "No claims were judged (the verify stage wrote none)."


def comparison_section(rows: list[dict[str, Any]], cell: tuple[str, str]) -> str:
    """EAG-RL against every other RL variant on AUROC and AUPRC (seed means, paired test, MDE, verdict)."""
    table = []
    for r in rows:
        if (r["dataset"], r["task"]) != cell or r["quantity"] not in ("auroc", "auprc"):
            continue
        table.append({
            "against": r["b"], "metric": r["quantity"],
            "EAG-RL": f"{_fmt(r['a_mean'])} ± {_fmt(r['a_std'])} ({r['a_seeds']})",
            "baseline": f"{_fmt(r['b_mean'])} ± {_fmt(r['b_std'])} ({r['b_seeds']})",
            "difference [95 % CI]": f"{r['difference']:+.3f} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
            "p": _fmt(r["p_value"]), "MDE": _fmt(r["min_detectable_effect"]), "verdict": r["verdict"]})
    return markdown_table(table) if table else "No RL comparison on this cell."


def training_section(rows: list[dict[str, Any]], cell: tuple[str, str]) -> str:
    """Per RL variant, means over its seeds of what its training did."""
    variants = list(dict.fromkeys(r["variant"] for r in rows if (r["dataset"], r["task"]) == cell))
    cell_rows = [r for r in rows if (r["dataset"], r["task"]) == cell]
    table = []
    for v in variants:
        seeds = [r for r in cell_rows if r["variant"] == v]
        table.append({
            "variant": v, "seeds": len(seeds), "R_att rewarded": bool(seeds[0].get("ratt_rewarded")),
            "steps": min(int(r["steps"]) for r in seeds), "patients": min(int(r["train_patients"]) for r in seeds),
            "R_att first 10 %": _fmt(mean_over_seeds(seeds, v, "ratt_first")),
            "R_att last 10 %": _fmt(mean_over_seeds(seeds, v, "ratt_last")),
            "groups where R_att varies": _fmt(mean_over_seeds(seeds, v, "ratt_varying_groups"), 2),
            "parse failures, last 10 %": _fmt(mean_over_seeds(seeds, v, "parse_failure_final"), 3)})
    return markdown_table(table) if table else "No RL run on this cell."


def methods_section(methods: dict[str, Any]) -> str:
    """Every method on the cell, best AUROC first."""
    table = [{"method": name, "n": row.get("n"), "seeds": row.get("n_seeds"), "AUROC": _fmt(method_auroc(row)),
              "AUPRC": _fmt(row.get("auprc_seeds_mean") if row.get("auprc_seeds_mean") is not None
                            else row.get("auprc_mean")),
              "parse failures": _fmt(row.get("parse_failure_rate")),
              "alignment (expert)": _fmt(row.get("alignment_expert"))}
             for name, row in methods.items()]
    table.sort(key=lambda r: -1.0 if r["AUROC"] == "–" else float(r["AUROC"]), reverse=True)
    return markdown_table(table) if table else "No method was evaluated on this cell."


def summary_page(params: dict[str, Any], results: Path = RESULTS) -> str:
    """The text of ``results/SUMMARY.md``."""
    claims = _read(results / "claims.json") or {}
    parts = ["# Summary of the run",
             "Written by `dvc repro` (stage `report_summary`, benchmark/reports/summary.py) from the other result tables; "
             "the git commit and params of the run are in [README.md](README.md). Means ± std are over training "
             "seeds (their count in brackets); differences are paired on the same test patients; a verdict is "
             "decided only where the 95 % interval excludes 0, and MDE is the difference this n detects with 80 % "
             "power.",
             "## The paper's claims", claims_section(claims)]
    cell = reference_cell(params)
    if cell is not None:
        name = f"{cell[0]} / {cell[1]}"
        comparison = _read(results / "rl_comparison.json") or []
        training = _read(results / "rl_training.json") or []
        methods = ((_read(results / "main.json") or {}).get(cell[0]) or {}).get(cell[1]) or {}
        parts += [f"## EAG-RL against its RL baselines ({name})", comparison_section(comparison, cell),
                  f"## What RL training did ({name}; R_att = Jaccard of the named features with the expert's top-k)",
                  training_section(training, cell),
                  f"## Every method on {name}", methods_section(methods)]
    plots = sorted(p.relative_to(results).as_posix() for p in (results / "plots").rglob("*.png"))
    if plots:
        parts += ["## Plots"] + [f"![{p}]({p})" for p in plots]
    return "\n\n".join(parts) + "\n"


def report_summary(params: ParamsSource = "params.yaml", results: str | Path = RESULTS) -> list[Path]:
    """Write ``results/SUMMARY.md`` and ``results/metrics.json``."""
    params, results = load_params(params), Path(results)
    paths = [atomic_write_text(results / "SUMMARY.md", summary_page(params, results)),
             atomic_write_text(results / "metrics.json",
                               json.dumps(headline_metrics(params, results), indent=2, sort_keys=True) + "\n")]
    LOGGER.info("report-summary -> %s, %s", *paths)
    return paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl report-summary``."""
    parser = stage_parser(subparsers, "report-summary", "One-page summary and headline metrics (DVC stage report_summary).",
                          __doc__)
    parser.add_argument("--results", default=str(RESULTS), help="Results folder (default: results).")
    parser.set_defaults(handler=lambda a: report_summary(a.params, a.results))
