"""Stage ``train_expert``: train one expert on every task of one data set (``eagrl train-expert DATASET MODEL``).

For each task of ``data/cohorts/<DATASET>`` it fits the expert on the train split (early stopping on the
validation split) and writes, under ``models/experts/<DATASET>/<MODEL>/<task>/``:

* ``model.pt`` — the checkpoint (:meth:`methods.experts.base.Expert.save`);
* ``predictions_test.csv`` / ``predictions_val.csv`` — the predictions files of
  :mod:`benchmark.evaluate` (``id,label,probability,parsed``);
* ``metrics.json`` — :func:`benchmark.evaluate.evaluate` on the test predictions (bootstrap mean, std
  and CI of AUROC, AUPRC, ...) plus the training summary (epochs, best epoch, best validation AUPRC,
  parameters) and the per-epoch history;
* ``importance_train.jsonl`` / ``importance_val.jsonl`` / ``importance_test.jsonl`` — every patient's
  ranked features and top-k (format: :mod:`methods.experts.importance`), what EAG-RL reads.

The model's folder is written atomically: an interrupted run leaves the previous outputs untouched.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.config import ConfigError, Params, ParamsSource, load_params, section, to_mapping
from benchmark.data.cohort import SPLITS, Cohort
from benchmark.descriptor import attach_descriptor
from benchmark.evaluate import evaluate, metrics_config, read_predictions, write_predictions
from benchmark.paths import COHORTS, EXPERTS, cohort_dir, expert_dir
from benchmark.runtime import LOGGER, atomic_directory, atomic_write_json, start_stage
from benchmark.stage_cli import add_cohorts, add_dataset, params_epilog, stage_parser
from methods.experts import Expert, build_expert
from methods.experts.config import describe_experts, load_experts_config
from methods.experts.importance import importance_records, write_importance


def train_expert(dataset: str, model: str, params: ParamsSource = "params.yaml",
                 cohorts: str | Path = COHORTS, out: str | Path = EXPERTS) -> Path:
    """Train ``model`` on every task of ``dataset`` and write the outputs listed in the module docstring."""
    params = load_params(params)
    check_dataset(params, dataset)
    config = load_experts_config(params, params)
    model_config = config.model(model)
    seed = model_config.train.seed if hasattr(model_config, "train") else model_config.seed
    start_stage(f"train_expert@{dataset}-{model}", int(seed),
                {"dataset": dataset, "model": model, "top_k": config.top_k, "config": to_mapping(model_config)},
                threads=config.threads)
    return train_and_write(dataset, model, lambda task: build_expert(model, task, model_config), config.top_k,
                           params, cohorts, out)


def check_dataset(params: Params, dataset: str) -> None:
    """Raise :class:`ConfigError` unless ``dataset`` is a key of the params file's ``datasets``."""
    datasets = section(params, "datasets", params)
    if dataset not in datasets:
        raise ConfigError(f"{params}: data set '{dataset}' is not under 'datasets' (known: {sorted(datasets)})")


def train_and_write(dataset: str, model: str, build: Callable[[str], Expert], top_k: int,
                    params: ParamsSource = "params.yaml", cohorts: str | Path = COHORTS,
                    out: str | Path = EXPERTS, descriptor: dict[str, Any] | None = None,
                    stage: str = "train_expert") -> Path:
    """Fit ``build(task)`` on every task of ``dataset``; write ``<out>/<dataset>/<model>/<task>/`` atomically.

    The body of every stage with the expert file layout (the module docstring): ``train_expert`` and
    ``train_hybrid`` (:mod:`methods.hybrid.stage`) differ only in how the model is built. ``descriptor``
    (fields of :class:`benchmark.descriptor.MethodDescriptor` besides dataset/task/method) is attached to
    each ``metrics.json`` when given, e.g. the family and backbone of a hybrid.
    """
    cohort = Cohort.load(cohort_dir(dataset, cohorts))
    parts = {split: cohort.subset(split) for split in SPLITS}
    scoring = metrics_config(params)
    with atomic_directory(expert_dir(dataset, model, root=out)) as folder:
        for task in cohort.tasks:
            target = folder / task
            expert = build(task).fit(parts["train"], parts["val"])
            expert.save(target / "model.pt")
            for split in SPLITS:
                part = parts[split]
                probabilities = expert.predict_proba(part)
                if split != "train":
                    write_predictions(target / f"predictions_{split}.csv", part.ids, part.label(task), probabilities)
                records = importance_records(part, task, probabilities, expert.feature_importance(part), top_k)
                write_importance(target / f"importance_{split}.jsonl", records)
            metrics = evaluate(read_predictions(target / "predictions_test.csv"), scoring)
            validation = evaluate(read_predictions(target / "predictions_val.csv"), scoring)
            atomic_write_json(target / "metrics.json", {
                "dataset": dataset, "model": model, "task": task, "split": "test", **metrics,
                "val": {m: validation[m] for m in ("auroc", "auprc")},
                "training": expert.summary, "history": expert.history,
            })
            if descriptor is not None:
                attach_descriptor(target / "metrics.json", {"dataset": dataset, "task": task, "method": model,
                                                            **descriptor})
            LOGGER.info("%s@%s-%s %s: test AUROC %.3f±%.3f AUPRC %.3f±%.3f (best epoch %s, trained in %.1f s)",
                        stage, dataset, model, task, metrics["auroc"]["mean"], metrics["auroc"]["std"],
                        metrics["auprc"]["mean"], metrics["auprc"]["std"], expert.summary.get("best_epoch"),
                        expert.train_seconds or 0.0)
    return expert_dir(dataset, model, root=out)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl train-expert``."""
    parser = stage_parser(subparsers, "train-expert",
                          "Train one expert on every task of a data set (DVC stage train_expert@<ds>-<model>).",
                          __doc__, params_epilog("experts", describe_experts()))
    add_dataset(parser)
    parser.add_argument("model", help="Expert: logistic, gru, transformer, retain, adacare or concare.")
    add_cohorts(parser, help="Folder of the cohorts (data/cohorts).")
    parser.add_argument("--out", default=str(EXPERTS), help="Folder that receives <dataset>/<model>/<task>/.")
    parser.set_defaults(handler=lambda args: train_expert(args.dataset, args.model, args.params, args.cohorts, args.out))
