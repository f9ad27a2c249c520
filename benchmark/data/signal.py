"""How learnable a cohort's labels are: the ceiling and the floor every model is judged between.

* **Ceiling** — AUROC of the ground-truth risk (synthetic cohorts only, where it is known).
* **Floor** — AUROC of a logistic regression on the last observed (normalised, imputed) value of every
  feature plus age and sex (:class:`methods.experts.logistic.LogisticExpert`, the floor of the expert tables). A sequence model that reads the whole stay should beat it.
Both on the test split.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from benchmark.data.cohort import Cohort


def last_value_design(cohort: Cohort) -> np.ndarray:
    """(n, d + 2) matrix: last normalised value of each feature, standardised age, sex."""
    age = (cohort.static[:, :1] - 65.0) / 15.0
    return np.hstack([cohort.last_observed(normalised=True), age, cohort.static[:, 1:2]])


def signal_check(cohort: Cohort, task: str, seed: int = 42) -> dict[str, float]:
    """Ceiling (true risk) and floor (last-value logistic regression) AUROC on the test split."""
    train, test = cohort.subset("train"), cohort.subset("test")
    y_train, y_test = train.label(task), test.label(task)
    out: dict[str, float] = {"ceiling_auroc": float("nan"), "floor_auroc": float("nan")}
    if len(np.unique(y_test)) < 2 or len(np.unique(y_train)) < 2:
        return out
    if test.true_risk is not None:
        out["ceiling_auroc"] = float(roc_auc_score(y_test, test.true_risk[:, cohort.tasks.index(task)]))
    # The floor is the logistic-regression expert (one implementation for this check and the expert tables).
    from methods.experts.logistic import LogisticConfig, LogisticExpert

    floor = LogisticExpert(task, LogisticConfig(seed=seed)).fit(train, None)
    out["floor_auroc"] = float(roc_auc_score(y_test, floor.predict_proba(test)))
    return out
