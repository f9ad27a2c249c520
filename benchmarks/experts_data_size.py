"""Do the sequence experts beat the logistic floor once there is more data? (not in CI; minutes on a CPU)

The default cohorts have 525 training and 75 validation patients; on them the neural experts trail the
last-value logistic regression (``results/experts.md``). This script regenerates a default data set with
more patients (same generator settings and seed, only ``n_patients`` / ``n_test`` scaled), trains every
expert with the hyperparameters of params.yaml and prints test AUROC / AUPRC (bootstrap mean ± std) and
top-k recall of the ground-truth salient features::

    .venv/bin/python benchmarks/experts_data_size.py --dataset synthetic_icu --patients 4000
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd
import torch
from tabulate import tabulate

from benchmark.config import from_mapping, load_params, section
from benchmark.data.synthetic import SyntheticConfig, generate
from benchmark.evaluate import evaluate, metrics_config
from methods.experts import build_expert
from methods.experts.config import load_experts_config
from methods.experts.report import overlap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic_icu", help="A synthetic data set of params.yaml.")
    parser.add_argument("--patients", type=int, default=4000, help="Patients generated (a quarter go to test).")
    parser.add_argument("--task", default="mortality")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default=None, help="Comma-separated experts (default: experts.models).")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params(args.params)
    entry = dict(section(params, f"datasets.{args.dataset}", args.params))
    entry.update(n_patients=args.patients, n_test=args.patients // 4)
    cohort = generate(from_mapping(SyntheticConfig, entry, f"{args.params}: datasets.{args.dataset}"),
                      name=f"{args.dataset}_{args.patients}")
    experts = load_experts_config(params, args.params)
    scoring = metrics_config(args.params)
    train, val, test = (cohort.subset(s) for s in ("train", "val", "test"))
    labels = test.label(args.task)
    rows = [{"model": "ceiling (true risk)", **_scores(test, labels, test.true_risk[:, cohort.tasks.index(args.task)],
                                                          scoring)}]
    for name in (args.models.split(",") if args.models else experts.models):
        config = experts.model(name)
        if hasattr(config, "train"):
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, progress=False))
        started = time.perf_counter()
        expert = build_expert(name, args.task, config).fit(train, val)
        seconds = time.perf_counter() - started
        weights = expert.feature_importance(test)
        top = np.zeros_like(test.salient, dtype=bool)
        np.put_along_axis(top, np.argsort(-weights, axis=1, kind="stable")[:, : experts.top_k], True, axis=1)
        _, recall = overlap(top, test.salient.astype(bool))
        rows.append({"model": name, **_scores(test, labels, expert.predict_proba(test), scoring),
                     f"recall@{experts.top_k}": round(float(recall.mean()), 3),
                     "best epoch": expert.summary.get("best_epoch"), "train s": round(seconds, 1)})
        print(rows[-1], flush=True)
    print(f"\n{cohort.name}: {len(train)} train / {len(val)} val / {len(test)} test patients, task {args.task}\n")
    print(tabulate(rows, headers="keys", tablefmt="github"))


def _scores(test, labels, probabilities, scoring) -> dict[str, str]:
    frame = pd.DataFrame({"id": test.ids, "label": labels, "probability": probabilities, "parsed": True})
    result = evaluate(frame, scoring)
    return {metric: f"{result[metric]['mean']:.3f} ± {result[metric]['std']:.3f}" for metric in ("auroc", "auprc")}


if __name__ == "__main__":
    main()
