"""How learnable a cohort's labels are: the ceiling and the floor every model is judged between.

* **Ceiling** — AUROC of the ground-truth risk (synthetic cohorts only, where it is known).
* **Floor** — AUROC of a logistic regression on the last observed (normalised, imputed) value of every
  feature plus age and sex: the floor of the expert tables (``methods.experts.logistic``), which
  :meth:`benchmark.protocol.Methods.fit_floor` fits, so that one implementation serves both. A sequence
  model that reads the whole stay should beat it.
Both on the test split.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from benchmark.data.cohort import Cohort
from benchmark.protocol import Methods


def signal_check(cohort: Cohort, task: str, methods: Methods, seed: int = 42) -> dict[str, float]:
    """Ceiling (true risk) and floor (last-value logistic regression) AUROC on the test split."""
    train, test = cohort.subset("train"), cohort.subset("test")
    y_train, y_test = train.label(task), test.label(task)
    out: dict[str, float] = {"ceiling_auroc": float("nan"), "floor_auroc": float("nan")}
    if len(np.unique(y_test)) < 2 or len(np.unique(y_train)) < 2:
        return out
    if test.true_risk is not None:
        out["ceiling_auroc"] = float(roc_auc_score(y_test, test.true_risk[:, cohort.tasks.index(task)]))
    floor = methods.fit_floor(train, task, seed)  # the logistic-regression expert of the expert tables
    out["floor_auroc"] = float(roc_auc_score(y_test, floor.predict_proba(test)))
    return out
