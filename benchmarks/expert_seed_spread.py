"""How far does an expert's test score move with its training seed alone? (not in CI; minutes on a CPU)

ClinicRealm reports ConCare on the TJH test split at AUROC 0.910 ± 0.021 and our pipeline's one run reads
0.978 (``results/tjh/external_reference.md``). Their ± is a bootstrap over the 200 test patients of one
trained model; it says nothing of training. TJH's validation split holds 21 patients, so early stopping
picks the epoch on a handful of positives and the seed decides much of the result. This script trains the
experts of params.yaml on a prepared cohort (``data/cohorts/<dataset>``, from ``eagrl prepare``) once per
training seed, every other setting unchanged, and prints each run's test AUROC / AUPRC (bootstrap mean) and
best epoch, then the spread over seeds::

    .venv/bin/python benchmarks/expert_seed_spread.py --dataset tjh --models concare,adacare,gru --seeds 42,1,2,3,4,5,6,7
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import pandas as pd
import torch
from tabulate import tabulate

from benchmark.config import load_params
from benchmark.data.cohort import Cohort
from benchmark.evaluate import evaluate, metrics_config
from benchmark.prepare import cohort_dir
from methods.experts import build_expert
from methods.experts.config import load_experts_config


def main() -> None:
    """Train each expert once per seed and print the per-run scores and their spread."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="tjh", help="A prepared cohort under --cohorts.")
    parser.add_argument("--cohorts", default="data/cohorts", help="Folder of the prepared cohorts.")
    parser.add_argument("--task", default="mortality")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default="concare,adacare,gru", help="Comma-separated experts.")
    parser.add_argument("--seeds", default="42,1,2,3,4,5,6,7", help="Comma-separated training seeds (experts.train.seed).")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cohort = Cohort.load(cohort_dir(args.dataset, args.cohorts))
    experts = load_experts_config(load_params(args.params), args.params)
    scoring = metrics_config(args.params)
    train, val, test = (cohort.subset(s) for s in ("train", "val", "test"))
    labels = test.label(args.task)
    runs = []
    for name in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            config = experts.model(name)
            if not hasattr(config, "train"):
                raise SystemExit(f"--models: '{name}' has no training seed (experts.train); choose neural experts")
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed, progress=False))
            expert = build_expert(name, args.task, config).fit(train, val)
            frame = pd.DataFrame({"id": test.ids, "label": labels, "probability": expert.predict_proba(test),
                                  "parsed": True})
            result = evaluate(frame, scoring)
            runs.append({"model": name, "seed": seed, "auroc": round(result["auroc"]["mean"], 3),
                         "auroc bootstrap std": round(result["auroc"]["std"], 3),
                         "auprc": round(result["auprc"]["mean"], 3), "best epoch": expert.summary.get("best_epoch")})
            print(runs[-1], flush=True)
    print(f"\n{cohort.name}: {len(train)} train / {len(val)} val ({int(val.label(args.task).sum())} positive) / "
          f"{len(test)} test patients, task {args.task}\n")
    print(tabulate(runs, headers="keys", tablefmt="github"))
    spread = []
    for name in args.models.split(","):
        auroc = [r["auroc"] for r in runs if r["model"] == name]
        spread.append({"model": name, "seeds": len(auroc), "AUROC mean": round(statistics.mean(auroc), 3),
                       "AUROC std over seeds": round(statistics.stdev(auroc), 3) if len(auroc) > 1 else None,
                       "min": min(auroc), "max": max(auroc)})
    print()
    print(tabulate(spread, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
