"""From MCTS trajectories to the stage-1 SFT set: a quality filter and class-balanced patient sampling.

* **Quality filter** — a kept trajectory enters the SFT set only if it parsed, its final answer is on the
  correct side of 0.5 with confidence ``|ŷ − 0.5| ≥ min_confidence``, and its feature alignment
  ``R_att ≥ min_alignment``. Patients with no trajectory passing are dropped.
* **Class balance** — mortality and readmission are rare, so sampling every surviving patient would teach
  the policy to answer "low risk". At most ``target_positives`` positive patients are taken and
  ``negatives_per_positive`` negatives per positive taken (seeded); each patient contributes up to
  ``trajectories_per_patient`` trajectories.

The settings are ``eag_rl.distill`` (:class:`methods.eag_rl.config.DistillConfig`).
"""

from __future__ import annotations

import numpy as np

from methods.eag_rl.config import DistillConfig


def passes_filter(trajectory: dict, label: int, config: DistillConfig) -> bool:
    """The quality filter of the module docstring for one trajectory."""
    probability = trajectory.get("probability")
    if not trajectory.get("parsed") or probability is None:
        return False
    correct = probability > 0.5 if label == 1 else probability < 0.5
    return (correct and abs(probability - 0.5) >= config.min_confidence
            and trajectory.get("attention", 0.0) >= config.min_alignment)


def build_sft_records(records: list[dict], config: DistillConfig) -> tuple[list[dict], dict]:
    """Filter and balance MCTS records; returns (rows of {id, label, steps...}, summary counts)."""
    passing = {}
    for record in records:
        good = [t for t in record["trajectories"] if passes_filter(t, record["label"], config)]
        if good:
            passing[record["id"]] = (record, good[: config.trajectories_per_patient])
    rng = np.random.default_rng(config.seed)
    positives = sorted(i for i, (r, _) in passing.items() if r["label"] == 1)
    negatives = sorted(i for i, (r, _) in passing.items() if r["label"] == 0)
    take_pos = list(rng.permutation(positives)[: config.target_positives])
    n_neg = int(round(len(take_pos) * config.negatives_per_positive)) if take_pos else min(len(negatives), config.target_positives)
    take_neg = list(rng.permutation(negatives)[:n_neg])
    rows = []
    for patient in sorted(take_pos + take_neg):
        record, trajectories = passing[patient]
        rows += [{"id": patient, "label": record["label"], **t} for t in trajectories]
    summary = {
        "patients_searched": len(records),
        "patients_passing_filter": len(passing),
        "positives_passing": len(positives), "negatives_passing": len(negatives),
        "positives_taken": len(take_pos), "negatives_taken": len(take_neg),
        "sft_examples": len(rows),
        "mean_reward_kept": float(np.mean([t["reward"] for r in records for t in r["trajectories"]])) if records else float("nan"),
        "mean_reward_sft": float(np.mean([row["reward"] for row in rows])) if rows else float("nan"),
    }
    return rows, summary
