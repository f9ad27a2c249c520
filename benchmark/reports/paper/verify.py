"""Stage ``verify`` (``eagrl verify``): the paper's claims and numbers checked against this profile's results.

Writes

* ``results/claims.md`` (and ``claims.json``): a verdict for each claim C1–C5 of ``claims.yaml`` —
  holds / fails / inconclusive / not testable with this profile — with the reason and the evidence (means,
  CIs, paired-bootstrap p-values, the minimum detectable effect at 80 % power), and, under a claim, the
  comparisons reported beside it but not part of its verdict (C1: experts and hybrids); see
  :mod:`benchmark.reports.paper.claims`;
* ``results/paper_comparison.{md,csv,json}``: every cell of the transcribed Tables 1–3 (``tables.yaml``)
  that has a paper or a reproduced number: paper, reproduced, Δ and a verdict; see
  :mod:`benchmark.reports.paper.compare`;
* ``results/external_reference.{md,csv,json}``: a peer benchmark's published numbers on the same test splits
  (ClinicRealm, ``external/``) beside ours, with a z-score and a verdict per row; the same table is appended
  to ``paper_comparison.md`` under "External reference (ClinicRealm)"; see :mod:`benchmark.reports.paper.external`.

The evaluations are found exactly as for the main table (``report.sources``, :mod:`benchmark.reports.main`),
so both stages see the same files. Where R_att varied in RL training is read from the run folders beside
the RL metrics files, else from ``rl_training.json`` in the output folder when ``eagrl report-rl-training``
wrote it (:mod:`benchmark.reports.paper.gates`).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import ParamsSource, describe, from_mapping, load_params, option
from benchmark.evaluate import metrics_config
from benchmark.paths import RESULTS
from benchmark.reports.collect import ReportConfig, collect
from benchmark.reports.index import profile_name
from benchmark.reports.paper.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_TESTABLE,
    ClaimsConfig,
    Context,
    Verdict,
    load_claims,
    verify_claims,
)
from benchmark.reports.paper.compare import (
    VERDICTS,
    ComparisonConfig,
    compare_paper,
    filled_cells,
    load_template,
)
from benchmark.reports.paper.external import compare_external, load_reference, section_text, write_external
from benchmark.reports.paper.gates import RL_TRAINING_FILE, load_training_rows
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.stage_cli import params_epilog, stage_parser
from benchmark.tables import markdown_table, write_table


@dataclass
class PaperConfig:
    """The ``paper`` section of params.yaml: tolerances of the number comparison and claim-test choices."""

    epsilon: dict[str, float] = option({"auroc": 0.01, "auprc": 0.01}, help="Per metric: |reproduced - paper| <= epsilon is 'fully reproduced'.")
    acceptable: dict[str, float] = option({"auroc": 0.03, "auprc": 0.05}, help="Per metric: epsilon < |Δ| <= this is 'acceptable', beyond 'unacceptable'.")
    claims: ClaimsConfig = field(default_factory=ClaimsConfig, metadata={"help": "How the claims C1-C5 are tested."})

    def comparison(self) -> ComparisonConfig:
        """The tolerances as a :class:`ComparisonConfig`."""
        return ComparisonConfig(epsilon=self.epsilon, acceptable=self.acceptable)


def _rule_text(config: ClaimsConfig) -> str:
    """How the verdicts were reached, for the head of claims.md."""
    if config.decision == "mean":
        return ("Each comparison is read from the sign of its bootstrap means, as the paper's tables compare "
                "(`paper.claims.decision: mean`): a claim holds or fails, never inconclusive; paired-bootstrap "
                "p-values are shown as evidence.")
    return (f"Each comparison is a paired bootstrap ({config.resamples} resamples of the same patients, every "
            f"training seed of a method pooled; `benchmark/reports/paper/evidence.py`). It supports the claim at "
            f"p < {config.alpha} and contradicts it at p < {config.alpha} / m (m comparisons, Bonferroni). A claim "
            "**holds** when every comparison supports it, **fails** when one contradicts it, and is "
            "**inconclusive** otherwise: these data cannot decide it.")


def _claims_markdown(verdicts: list[Verdict], profile: str, inventory: str, config: ClaimsConfig) -> str:
    summary = [{"claim": v.id, "statement": v.statement, "verdict": f"**{v.status}**"} for v in verdicts]
    lines = [
        "# The paper's claims, checked",
        "",
        f"Profile `{profile}`; {inventory}. Written by `eagrl verify` from the collected metrics files "
        f"(`report.sources` in params.yaml) and `benchmark/reports/paper/claims.yaml`. " + _rule_text(config)
        + f" Metrics: {', '.join(m.upper() for m in config.metrics)}.",
        "",
        markdown_table(summary),
        "",
    ]
    for v in verdicts:
        lines += [f"## {v.id}: {v.statement}", "", f"Source: {v.source}." if v.source else "", "",
                  f"Verdict: **{v.status}** — {v.reason}.", ""]
        if v.evidence:
            lines += [markdown_table(v.evidence), ""]
        if v.beside:
            lines += [f"Reported beside, not part of the verdict ({len(v.beside)} comparison(s); outcomes judged "
                      "among themselves):", "", markdown_table(v.beside), ""]
    return "\n".join(lines) + "\n"


def _comparison_intro(rows: list[dict[str, Any]], filled: int, config: ComparisonConfig) -> str:
    counts = {name: sum(r["verdict"] == name for r in rows) for name in VERDICTS}
    eps = ", ".join(f"{m.upper()} ε={config.epsilon[m]}, acceptable ≤{config.acceptable[m]}" for m in config.epsilon)
    text = (f"Every cell of the transcription template `benchmark/reports/paper/tables.yaml` (paper Tables 1–3) that holds a "
            f"paper number ({filled} filled) or a reproduced number, with Δ = reproduced − paper and a verdict ({eps}). "
            "Verdict counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
    if filled == 0:
        text += (" No paper number has been transcribed yet (see the template's header), so every reproduced cell "
                 "reads 'no paper number'.")
    return text


def verify(params: ParamsSource = "params.yaml", root: str | Path = ".", out: str | Path = RESULTS,
           template: str | Path | None = None, claims_file: str | Path | None = None) -> list[Verdict]:
    """Run every claim test and the paper comparison; write the results files (the ``verify`` stage)."""
    configure_logging()
    params = load_params(params)
    report = from_mapping(ReportConfig, params.get("report"), f"{params}: report")
    paper = from_mapping(PaperConfig, params.get("paper"), f"{params}: paper")
    collection = collect(report, root)
    out = Path(out)
    claims = load_claims(claims_file) if claims_file else load_claims()
    verdicts = verify_claims(collection.records, paper.claims, metrics_config(params), claims,
                             load_training_rows(out / RL_TRAINING_FILE))
    inventory = Context(collection.records, paper.claims).inventory()
    atomic_write_text(out / "claims.md", _claims_markdown(verdicts, profile_name(params), inventory, paper.claims))
    atomic_write_json(out / "claims.json", {v.id: {"status": v.status, "reason": v.reason, **v.numbers} for v in verdicts})

    loaded = load_template(template) if template else load_template()
    rows = compare_paper(collection.records, paper.comparison(), loaded)
    columns = ["table", "row", "backbone", "dataset", "task", "metric", "paper", "paper_std", "reproduced",
               "reproduced_std", "delta", "verdict", "read_from", "metrics_file"]
    write_table(rows, out / "paper_comparison", "Paper vs reproduced",
                _comparison_intro(rows, filled_cells(loaded), paper.comparison()), columns=columns, floatfmt=".4f")
    reference = load_reference()
    external = compare_external(collection.records, reference, params.get("datasets") or {})
    write_external(external, out / "external_reference", reference)
    md = out / "paper_comparison.md"
    atomic_write_text(md, md.read_text() + section_text(external, reference))
    for v in verdicts:
        LOGGER.info("verify %s: %s — %s", v.id, v.status, v.reason)
    counts = {status: sum(v.status == status for v in verdicts) for status in (HOLDS, FAILS, INCONCLUSIVE, NOT_TESTABLE)}
    LOGGER.info("verify: %d claim(s): %s; %d paper cell(s) and %d external reference row(s) compared -> %s",
                len(verdicts), ", ".join(f"{n} {status}" for status, n in counts.items()), len(rows), len(external),
                out / "claims.md")
    return verdicts


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl verify``."""
    parser = stage_parser(
        subparsers, "verify",
        "Check the paper's claims C1-C5 and numbers: results/claims.md, results/paper_comparison.*, "
        "results/external_reference.* (DVC stage verify).",
        __doc__, params_epilog("paper", PaperConfig) + "\n\npaper.claims:\n" + describe(ClaimsConfig))
    parser.add_argument("--root", default=".", help="Folder the report.sources patterns are relative to.")
    parser.add_argument("--out", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: verify(args.params, args.root, args.out))


def verdicts_as_dicts(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """Plain mappings of the verdicts (for tests and tools)."""
    return [asdict(v) for v in verdicts]
