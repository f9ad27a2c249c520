"""Stage ``train_hybrid``: train one hybrid baseline on every task of one data set (``eagrl train-hybrid DATASET MODEL``).

Same work and same file layout as ``train_expert`` (:mod:`methods.experts.stage`, whose
:func:`~methods.experts.stage.train_and_write` this calls), under ``models/hybrid/<DATASET>/<MODEL>/<task>/``:
``model.pt``, ``predictions_{val,test}.csv``, ``metrics.json`` (with a descriptor: family ``hybrid``,
backbone ``llm.backbone.source``), ``importance_{train,val,test}.jsonl`` (top-k length ``experts.top_k``).

The frozen backbone is loaded once per stage and each distinct text is embedded once
(:mod:`methods.hybrid.embedding`), so the tasks of a data set share the record embeddings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.config import ParamsSource, load_params, to_mapping
from benchmark.paths import COHORTS, HYBRID
from benchmark.runtime import start_stage
from benchmark.stage_cli import add_cohorts, add_dataset, params_epilog, stage_parser
from methods.experts.config import load_experts_config
from methods.experts.stage import check_dataset, train_and_write
from methods.hybrid import HYBRIDS
from methods.hybrid.config import MODELS, describe_hybrid, load_hybrid_config


def train_hybrid(dataset: str, model: str, params: ParamsSource = "params.yaml",
                 cohorts: str | Path = COHORTS, out: str | Path = HYBRID) -> Path:
    """Train hybrid ``model`` on every task of ``dataset`` and write the expert stage's outputs under ``out``."""
    params = load_params(params)
    check_dataset(params, dataset)
    config = load_hybrid_config(params, params)
    model_config = config.model(model)
    top_k = load_experts_config(params, params).top_k
    start_stage(f"train_hybrid@{dataset}-{model}", int(model_config.train.seed),
                {"dataset": dataset, "model": model, "top_k": top_k, "config": to_mapping(model_config)},
                threads=config.threads)
    descriptor = {"family": "hybrid", "backbone": model_config.backbone.source}
    return train_and_write(dataset, model, lambda task: HYBRIDS[model](task, model_config), top_k, params,
                           cohorts, out, descriptor=descriptor, stage="train_hybrid")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl train-hybrid``."""
    parser = stage_parser(subparsers, "train-hybrid",
                          "Train one hybrid baseline on every task of a data set (DVC stage train_hybrid@<ds>-<model>).",
                          __doc__, params_epilog("hybrid", describe_hybrid(), " (the backbone is llm.backbone)"))
    add_dataset(parser)
    parser.add_argument("model", choices=MODELS, help="Hybrid baseline.")
    add_cohorts(parser, help="Folder of the cohorts (data/cohorts).")
    parser.add_argument("--out", default=str(HYBRID), help="Folder that receives <dataset>/<model>/<task>/.")
    parser.set_defaults(handler=lambda args: train_hybrid(args.dataset, args.model, args.params, args.cohorts, args.out))
