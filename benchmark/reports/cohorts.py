"""Stage ``report_cohorts``: result tables of the cohorts the ``prepare`` stages built.

Nothing here computes a method's score: it reads what the stages wrote and lays it out as Markdown, CSV
and JSON under ``results/``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from benchmark.config import ParamsSource, load_params, section, select_datasets
from benchmark.data.cohort import SPLITS, Cohort
from benchmark.data.signal import signal_check
from benchmark.paths import COHORTS, RESULTS, cohort_dir
from benchmark.protocol import Methods
from benchmark.runtime import atomic_write_text
from benchmark.stage_cli import add_cohorts, stage_parser
from benchmark.tables import markdown_table, write_table


def cohort_rows(cohort: Cohort, source: str) -> list[dict]:
    """Counts per task and split: patients, positives, prevalence, visits."""
    rows = []
    for task in cohort.tasks:
        for split in (*SPLITS, "all"):
            part = cohort if split == "all" else cohort.subset(split)
            y = part.label(task)
            rows.append({
                "dataset": cohort.name, "source": source, "domain": cohort.domain, "task": task, "split": split,
                "patients": len(part), "positives": int(y.sum()), "prevalence": round(float(y.mean()), 3),
                "visits": int(part.n_visits.sum()), "visits_per_patient": round(float(part.n_visits.mean()), 2),
                "features": len(cohort.features),
                "observed": round(float(part.mask.sum() / max(1, part.n_visits.sum() * len(cohort.features))), 3),
            })
    return rows


def report_cohorts(params: ParamsSource = "params.yaml", root: str | Path = COHORTS,
                   out: str | Path = RESULTS, datasets: Sequence[str] | None = None, *,
                   methods: Methods) -> list[Path]:
    """``results/cohorts.{md,csv,json}``: counts per data set, task and split, and the signal check.

    ``datasets`` restricts the tables to those data sets of params.yaml (default: every one), e.g. for the
    TJH tables of ``eagrl tjh-tables``; ``methods`` fits the signal check's floor.
    """
    params = load_params(params)
    configured = section(params, "datasets", params)
    counts, signal = [], []
    for name in select_datasets(configured, datasets, params):
        settings = configured[name]
        cohort = Cohort.load(cohort_dir(name, root))
        counts += cohort_rows(cohort, settings["source"])
        for task in cohort.tasks:
            check = signal_check(cohort, task, methods, seed=int(params.get("seed", 42)))
            signal.append({"dataset": name, "task": task, **{k: round(v, 3) for k, v in check.items()}})
    paths = write_table(counts, Path(out) / "cohorts", "Cohorts",
                        "Patients, positives and visits per data set, task and split, as built by the `prepare` "
                        "stages. `observed` is the share of (visit, feature) cells with a measured value.")
    signal_text = (
        "\n## Signal check (test split)\n\n"
        "`ceiling_auroc`: AUROC of the ground-truth risk (synthetic data only; NaN for real cohorts). "
        "`floor_auroc`: logistic regression on last observed values + age + sex. Models are judged between the two.\n\n"
        + markdown_table(signal) + "\n"
    )
    md = paths[0]
    atomic_write_text(md, md.read_text() + signal_text)
    paths += write_table(signal, Path(out) / "cohort_signal", "Cohort signal check", "See results/cohorts.md.")
    return paths


def register(subparsers: argparse._SubParsersAction, methods: Methods) -> None:
    """Add ``eagrl report-cohorts`` (``methods`` fits the signal check's floor)."""
    parser = stage_parser(subparsers, "report-cohorts", "Write results/cohorts.{md,csv,json} (DVC stage report_cohorts).")
    add_cohorts(parser)
    parser.add_argument("--out", default=str(RESULTS))
    parser.set_defaults(handler=lambda args: report_cohorts(args.params, args.cohorts, args.out,
                                                                      methods=methods))


