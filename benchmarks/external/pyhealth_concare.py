"""External check (not in CI): our ConCare against PyHealth's ConCare on the same synthetic cohort.

Both models see the same patients, the same inputs (the cohort's normalised + imputed values, one row per
real visit; standardised age and sex as the static vector), the same budget (AdamW, learning rate,
weight decay, gradient clipping, batch size, at most ``epochs`` epochs with early stopping on validation
AUPRC and the same patience, best weights restored) and one torch thread each. Reported: test AUROC
and AUPRC (bootstrap mean ± std from :func:`benchmark.evaluate.evaluate`), the paired bootstrap
difference in AUROC, and wall-clock training time. ``--rnn`` adds our GRU against PyHealth's ``RNN``
(GRU cell).

PyHealth is not a dependency of the suite; install it into a throwaway environment (the pin on torch
makes pip take the CPU wheel here) and run the script from the repository root with that interpreter::

    python3.12 -m venv /tmp/pyhealth-venv
    /tmp/pyhealth-venv/bin/pip install torch==2.13.0 pyhealth==2.1.0 tabulate==0.10.0
    PYTHONPATH=. /tmp/pyhealth-venv/bin/python benchmarks/external/pyhealth_concare.py \
        --cohort data/cohorts/synthetic_icu --task mortality --rnn

Differences between the two ConCare implementations that remain by design (see
``methods/experts/concare.py``): PyHealth's time-aware attention decays with the visit *index*, ours with
elapsed days; PyHealth adds the DeCov loss with weight 1, ours with ``experts.concare.decov_weight`` (10);
PyHealth's final attention is unscaled, ours is scaled by default; PyHealth's output layer is one linear
layer on the pooled vector, ours two. PyHealth's ConCare returns no per-feature importance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tabulate import tabulate

from benchmark.config import load_params
from benchmark.data.cohort import Cohort
from benchmark.evaluate import compare, evaluate, metrics_config
from methods.experts import build_expert
from methods.experts.base import static_matrix
from methods.experts.config import load_experts_config


def pyhealth_samples(cohort: Cohort, task: str, age_mean: float, age_std: float) -> list[dict[str, Any]]:
    """One PyHealth sample per patient: real visits only (PyHealth pads), static vector, label."""
    static = static_matrix(cohort, age_mean, age_std)
    labels = cohort.label(task)
    return [{"patient_id": str(cohort.ids[i]),
             "biomarkers": cohort.values[i, : cohort.n_visits[i]].astype(np.float32).tolist(),
             "demographic": static[i].tolist(),
             "label": int(labels[i])} for i in range(len(cohort))]


def frame(cohort: Cohort, task: str, probabilities: np.ndarray) -> pd.DataFrame:
    """A predictions frame (the :mod:`benchmark.evaluate` format) for scoring."""
    return pd.DataFrame({"id": cohort.ids.astype(str), "label": cohort.label(task),
                         "probability": np.asarray(probabilities, dtype=np.float64), "parsed": True})


def train_pyhealth(kind: str, splits: dict[str, Cohort], task: str, config: Any, age: tuple[float, float]
                   ) -> tuple[np.ndarray, float, int]:
    """Train PyHealth's ConCare (``kind='concare'``) or RNN (``'rnn'``); test probabilities, seconds, epochs run."""
    from pyhealth.datasets import create_sample_dataset, get_dataloader
    from pyhealth.models import RNN, ConCare
    from pyhealth.trainer import Trainer

    schema = {"biomarkers": "tensor", "demographic": "tensor"}  # not "values": a ModuleDict attribute
    train_set = create_sample_dataset(pyhealth_samples(splits["train"], task, *age), schema, {"label": "binary"},
                                      dataset_name="eagrl")
    sets = {"train": train_set}
    for split in ("val", "test"):
        sets[split] = create_sample_dataset(pyhealth_samples(splits[split], task, *age), schema, {"label": "binary"},
                                            dataset_name="eagrl", input_processors=train_set.input_processors,
                                            output_processors=train_set.output_processors)
    train = config.train
    torch.manual_seed(train.seed)
    if kind == "concare":
        model = ConCare(dataset=train_set, static_key="demographic", hidden_dim=config.hidden, num_head=config.heads,
                        pe_hidden=config.feedforward, dropout=config.dropout)
    else:
        model = RNN(dataset=train_set, embedding_dim=config.hidden, hidden_dim=config.hidden, rnn_type="GRU",
                    dropout=config.dropout)
    loaders = {split: get_dataloader(data, batch_size=train.batch_size, shuffle=split == "train", seed=train.seed)
               for split, data in sets.items()}
    trainer = Trainer(model, metrics=["pr_auc", "roc_auc"], device="cpu", enable_logging=False)
    validations = []  # the trainer scores the validation split once per epoch: count the epochs it ran
    score_validation = trainer.evaluate
    trainer.evaluate = lambda loader: validations.append(1) or score_validation(loader)
    started = time.perf_counter()
    trainer.train(loaders["train"], loaders["val"], epochs=train.epochs, optimizer_class=torch.optim.AdamW,
                  optimizer_params={"lr": train.learning_rate}, weight_decay=train.weight_decay,
                  max_grad_norm=train.grad_clip or None, monitor="pr_auc", patience=train.patience)
    seconds = time.perf_counter() - started
    trainer.evaluate = score_validation
    y_true, y_prob, _ = trainer.inference(loaders["test"])
    order = {pid: i for i, pid in enumerate(splits["test"].ids.astype(str))}
    ids = [s["patient_id"] for s in sets["test"]]
    probabilities = np.empty(len(order))
    probabilities[[order[i] for i in ids]] = np.asarray(y_prob).reshape(-1)
    return probabilities, seconds, len(validations)


def run(cohort_path: str, task: str, params_path: str, rnn: bool) -> list[dict[str, Any]]:
    """Train each pair and return one result row per model."""
    torch.set_num_threads(1)
    params = load_params(params_path)
    experts = load_experts_config(params, params_path)
    scoring = metrics_config(params_path)
    cohort = Cohort.load(cohort_path)
    splits = {split: cohort.subset(split) for split in ("train", "val", "test")}
    age = splits["train"].static[:, 0]
    age_stats = (float(age.mean()), float(age.std()))
    pairs = [("concare", "concare")] + ([("gru", "rnn")] if rnn else [])
    rows = []
    for ours_name, theirs_name in pairs:
        config = experts.model(ours_name)
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, progress=False))
        torch.manual_seed(config.train.seed)
        started = time.perf_counter()
        ours = build_expert(ours_name, task, config).fit(splits["train"], splits["val"])
        ours_seconds = time.perf_counter() - started
        ours_frame = frame(splits["test"], task, ours.predict_proba(splits["test"]))
        theirs_p, theirs_seconds, theirs_epochs = train_pyhealth(theirs_name, splits, task, config, age_stats)
        theirs_frame = frame(splits["test"], task, theirs_p)
        paired = compare(ours_frame, theirs_frame, scoring, ("ours", "pyhealth"))
        for name, result, seconds, epochs in (
            (f"ours: {ours_name}", evaluate(ours_frame, scoring), ours_seconds, ours.summary["epochs_run"]),
            (f"pyhealth {theirs_name}", evaluate(theirs_frame, scoring), theirs_seconds, theirs_epochs),
        ):
            rows.append({"cohort": cohort.name, "task": task, "model": name,
                         "auroc": f"{result['auroc']['mean']:.3f} ± {result['auroc']['std']:.3f}",
                         "auprc": f"{result['auprc']['mean']:.3f} ± {result['auprc']['std']:.3f}",
                         "train_seconds": round(seconds, 1), "epochs": epochs,
                         "ours_minus_pyhealth_auroc": round(paired["auroc"]["difference"], 3),
                         "p_value": round(paired["auroc"]["p_value"], 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort", default="data/cohorts/synthetic_icu", help="Cohort folder (built by dvc repro).")
    parser.add_argument("--task", default="mortality")
    parser.add_argument("--params", default="params.yaml", help="Hyperparameters: the experts section.")
    parser.add_argument("--rnn", action="store_true", help="Also compare our GRU with PyHealth's RNN (GRU cell).")
    parser.add_argument("--out", help="Optional JSON file for the rows.")
    args = parser.parse_args()
    rows = run(args.cohort, args.task, args.params, args.rnn)
    print(tabulate(rows, headers="keys", tablefmt="github"))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
