"""Stage ``prepare``: build one data set's cohort from its ``datasets.<name>`` entry in params.yaml.

Writes ``data/cohorts/<name>/`` (arrays.npz + meta.json, see :mod:`benchmark.data.cohort`) atomically.
Raw inputs (the TJH workbook, the MIMIC-IV tables) are *not* DVC dependencies — hashing tens of GB of
MIMIC-IV on every ``dvc status`` would make a no-change run slow; their paths are params, so pointing at
another copy re-runs the stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.config import ConfigError, ParamsSource, load_params, section, to_mapping
from benchmark.data.sources import build_cohort
from benchmark.paths import COHORTS, cohort_dir
from benchmark.runtime import LOGGER, start_stage
from benchmark.stage_cli import add_dataset, stage_parser


def prepare(name: str, params: ParamsSource = "params.yaml", root: str | Path = COHORTS) -> Path:
    """Build and save the cohort of data set ``name``; returns its folder."""
    params = load_params(params)
    datasets = section(params, "datasets", params)
    if name not in datasets:
        raise ConfigError(f"{params}: data set '{name}' is not under 'datasets' (known: {sorted(datasets)})")
    where = f"{params}: datasets.{name}"
    runtime = params.get("runtime", {})
    start_stage(f"prepare@{name}", int(datasets[name].get("seed", params.get("seed", 42))),
                {"dataset": name, **datasets[name]}, threads=runtime.get("threads"))
    cohort, config = build_cohort(name, datasets[name], where)
    cohort.provenance = {**cohort.provenance, "config": to_mapping(config)}
    folder = cohort.save(cohort_dir(name, root))
    LOGGER.info("prepare@%s: %d patients, %d features, tasks %s -> %s", name, len(cohort),
                len(cohort.features), cohort.tasks, folder)
    return folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = stage_parser(subparsers, "prepare", "Build one data set's cohort (DVC stage prepare@<name>).", __doc__)
    add_dataset(parser)
    parser.add_argument("--out", default=str(COHORTS), help="Folder that receives data/cohorts/<name>.")
    parser.set_defaults(handler=lambda args: prepare(args.dataset, args.params, args.out))
