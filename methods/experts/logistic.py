"""The floor: logistic regression on the last observed values (+ age, sex).

A sequence model that reads the whole stay should beat a linear model of the last values; this is the
yardstick in every expert table, and the same model gives the ``floor_auroc`` of the cohort signal check
(:func:`benchmark.data.signal.signal_check` fits this class, passed in by ``eagrl.registry``, so there is one
implementation).

Design matrix: :func:`last_value_design` — the normalised, imputed value of every
feature at the last real visit, age standardised as (age − 65) / 15, and sex. Fitted by scikit-learn's
L2-regularised ``LogisticRegression`` (lbfgs); the validation split is not used (nothing is tuned).

Importance — **linear contributions**: ``|w_j · x_ij|`` for the ``d`` dynamic features (age and sex are
left out), normalised over the features. The inputs are z-scores, so a feature at the train mean
contributes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from benchmark.config import from_mapping, option
from benchmark.data.cohort import Cohort
from methods.experts.base import Expert, ExpertError


@dataclass
class LogisticConfig:
    """Settings of the logistic-regression floor (``experts.logistic`` in params.yaml)."""

    C: float = option(1.0, help="Inverse L2 regularisation strength (scikit-learn's C).")
    max_iter: int = option(2000, minimum=1, help="Most lbfgs iterations.")
    seed: int = option(42, help="random_state of the solver (lbfgs is deterministic; kept for other solvers).")


def last_value_design(cohort: Cohort) -> np.ndarray:
    """(n, d + 2) matrix: last normalised value of each feature, standardised age, sex."""
    age = (cohort.static[:, :1] - 65.0) / 15.0
    return np.hstack([cohort.last_observed(normalised=True), age, cohort.static[:, 1:2]])


class LogisticExpert(Expert):
    """Logistic regression on last observed values (importance: |coefficient × value|)."""

    name = "logistic"

    def __init__(self, task: str, config: LogisticConfig | None = None) -> None:
        super().__init__(task, config or LogisticConfig())
        self.coef: np.ndarray | None = None
        self.intercept: float = 0.0

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> LogisticConfig:
        return from_mapping(LogisticConfig, data, "logistic checkpoint config")

    def _fit(self, train: Cohort, val: Cohort | None) -> None:
        model = LogisticRegression(C=self.config.C, max_iter=self.config.max_iter, random_state=self.config.seed)
        model.fit(last_value_design(train), train.label(self.task))
        self.coef = model.coef_.ravel().astype(np.float64)
        self.intercept = float(model.intercept_[0])
        self.summary = {"epochs_run": 0, "best_epoch": 0, "best_val_auprc": None, "parameters": int(self.coef.size + 1)}

    def _check_fitted(self) -> np.ndarray:
        if self.coef is None:
            raise ExpertError("logistic: the expert has not been fitted")
        return self.coef

    def _predict(self, cohort: Cohort) -> np.ndarray:
        return expit(last_value_design(cohort) @ self._check_fitted() + self.intercept)

    def _importance(self, cohort: Cohort) -> np.ndarray:
        d = len(cohort.features)
        return np.abs(last_value_design(cohort)[:, :d] * self._check_fitted()[:d])

    def _state(self) -> dict[str, Any]:
        return {"coef": self._check_fitted().tolist(), "intercept": self.intercept}

    def _restore(self, state: dict[str, Any]) -> None:
        self.coef = np.asarray(state["coef"], dtype=np.float64)
        self.intercept = float(state["intercept"])
