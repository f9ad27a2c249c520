"""The interface every expert EHR model implements, and the pieces they share.

An *expert* is a task-specific model trained on one cohort. It gives two things per patient:

* ``predict_proba(cohort) -> (n,)`` — the probability of the positive label of its task;
* ``feature_importance(cohort) -> (n, d)`` — a distribution over the cohort's ``d`` dynamic features
  (non-negative, rows summing to 1). How it is read is the model's own business and is documented in
  each model's module (attention weights, recalibration scales, contributions, gradient × input).

EAG-RL ranks the features of every patient by this distribution and hands the top-k to the LLM as the
expert's salient features (see :mod:`methods.experts.importance` for the file it writes).

Checkpoints are single ``.pt`` files written with ``torch.save`` and read with ``weights_only=True``
(plain dicts, lists, numbers, strings and tensors: no pickled code). Every checkpoint records the
feature names it was trained on; using it on a cohort with other features raises :class:`ExpertError`
that names the checkpoint, both feature lists and the fix.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from benchmark.data.cohort import Cohort

CHECKPOINT_FORMAT = 1
AGE_MEAN, AGE_STD = 65.0, 15.0  # fallback standardisation of age when no train statistics exist


class ExpertError(ValueError):
    """An expert cannot be used as asked (feature mismatch, unfitted model, bad checkpoint)."""


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    """Turn non-negative scores (n, d) into distributions; a row with no mass becomes uniform.

    Negative inputs are taken in absolute value first, NaN counts as 0. Why uniform: a patient whose
    record gives the model nothing to attend to should not get an arbitrary "most important" feature.
    """
    scores = np.nan_to_num(np.abs(np.asarray(scores, dtype=np.float64)), nan=0.0, posinf=0.0)
    if scores.ndim != 2:
        raise ValueError(f"importance scores must be (patients, features), got shape {scores.shape}")
    total = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / max(1, scores.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, scores / np.where(total > 0, total, 1.0), uniform)
    return out


def static_matrix(cohort: Cohort, age_mean: float = AGE_MEAN, age_std: float = AGE_STD) -> np.ndarray:
    """(n, s) static inputs for the neural experts: age standardised with the given statistics, sex as is.

    Static columns other than age (position 0) are passed through unchanged (sex is already 0/1).
    """
    static = np.asarray(cohort.static, dtype=np.float64).copy()
    if static.shape[1] == 0:
        return static.astype(np.float32)
    static[:, 0] = (static[:, 0] - age_mean) / (age_std if age_std > 0 else 1.0)
    return np.nan_to_num(static, nan=0.0).astype(np.float32)


class Expert(abc.ABC):
    """Base class of every expert: one task, one cohort's features, one checkpoint format.

    Subclasses set ``name`` and implement :meth:`_fit`, :meth:`_predict` and :meth:`_importance` (the
    public methods check the cohort first), plus :meth:`_state` / :meth:`_restore` for checkpoints.
    """

    name: ClassVar[str] = "expert"

    def __init__(self, task: str, config: Any) -> None:
        self.task = task
        self.config = config
        self.features: list[str] | None = None  # set by fit / load
        self.static_features: list[str] | None = None
        self.checkpoint_path: Path | None = None
        self.history: list[dict[str, float]] = []  # per-epoch training log (empty for closed-form models)
        self.summary: dict[str, Any] = {}  # epochs run, best epoch, best validation AUPRC, parameters
        # Wall-clock seconds of the last fit: for the log only, never saved (an output with a timing would
        # change its hash on every run and make DVC re-run everything downstream).
        self.train_seconds: float | None = None

    # ------------------------------------------------------------------ public interface
    def fit(self, train: Cohort, val: Cohort | None) -> Expert:
        """Train on ``train`` (model selection on ``val`` where the model uses it); returns ``self``."""
        if self.task not in train.tasks:
            raise ExpertError(f"cohort '{train.name}' has no task '{self.task}' (its tasks: {train.tasks})")
        if val is not None and val.feature_names != train.feature_names:
            raise ExpertError(f"train and validation cohorts have different features: {train.feature_names} "
                              f"vs {val.feature_names}")
        for part, label in ((train, "train"), (val, "validation")):
            if part is not None and len(np.unique(part.label(self.task))) < 2:
                raise ExpertError(f"the {label} split of '{part.name}' has a single class for task "
                                  f"'{self.task}'; an expert needs both classes to train and select")
        self.features = list(train.feature_names)
        self.static_features = list(train.static_names)
        started = time.perf_counter()
        self._fit(train, val)
        self.train_seconds = time.perf_counter() - started
        return self

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        """(n,) probability of the positive label for every patient of ``cohort``."""
        self.check_cohort(cohort)
        return np.asarray(self._predict(cohort), dtype=np.float64).reshape(len(cohort))

    def feature_importance(self, cohort: Cohort) -> np.ndarray:
        """(n, d) per-patient distribution over the cohort's dynamic features (rows sum to 1)."""
        self.check_cohort(cohort)
        return normalise_rows(self._importance(cohort))

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint (one ``.pt`` file) to ``path``; returns the path."""
        if self.features is None:
            raise ExpertError(f"{self.name}: nothing to save, the expert has not been fitted")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": self.name,
            "task": self.task,
            "features": list(self.features),
            "static_features": list(self.static_features or []),
            "config": _plain(self.config),
            "history": self.history,
            "summary": _plain(self.summary),
            "state": self._state(),
        }
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Expert:
        """Read a checkpoint written by :meth:`save` (of this class; any model: ``eagrl.registry.load_model``)."""
        payload = read_checkpoint(path)
        if payload["model"] != cls.name:
            raise ExpertError(f"{path}: checkpoint holds a '{payload['model']}' expert, not '{cls.name}'; "
                              f"load it with eagrl.registry.load_model(path)")
        expert = cls(payload["task"], cls.config_from_dict(payload["config"]))
        expert.features = list(payload["features"])
        expert.static_features = list(payload["static_features"])
        expert.history = list(payload.get("history", []))
        expert.summary = dict(payload.get("summary", {}))
        expert._restore(payload["state"])
        expert.checkpoint_path = Path(path)
        return expert

    def check_cohort(self, cohort: Cohort) -> None:
        """Raise :class:`ExpertError` unless ``cohort`` has exactly the features this expert was trained on."""
        if self.features is None:
            raise ExpertError(f"{self.name}: the expert has not been fitted (call fit or load a checkpoint)")
        if list(cohort.feature_names) != self.features:
            origin = f"checkpoint {self.checkpoint_path}" if self.checkpoint_path else f"this {self.name} expert"
            raise ExpertError(
                f"{origin} was trained on {len(self.features)} features {self.features}, but cohort "
                f"'{cohort.name}' has {len(cohort.feature_names)} features {list(cohort.feature_names)}; "
                f"use the cohort the expert was trained on, or retrain it on this one "
                f"(`eagrl train-expert {cohort.name} {self.name}`)"
            )
        if self.static_features is not None and list(cohort.static_names) != self.static_features:
            raise ExpertError(f"{self.name}: trained with static features {self.static_features}, cohort "
                              f"'{cohort.name}' has {list(cohort.static_names)}; retrain on this cohort")

    # ------------------------------------------------------------------ to implement
    @classmethod
    @abc.abstractmethod
    def config_from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild the model's config object from the plain dict stored in a checkpoint."""

    @abc.abstractmethod
    def _fit(self, train: Cohort, val: Cohort | None) -> None: ...

    @abc.abstractmethod
    def _predict(self, cohort: Cohort) -> np.ndarray: ...

    @abc.abstractmethod
    def _importance(self, cohort: Cohort) -> np.ndarray: ...

    @abc.abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _restore(self, state: dict[str, Any]) -> None: ...


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint's payload safely (``weights_only=True``), with errors naming the file."""
    path = Path(path)
    if not path.exists():
        raise ExpertError(f"{path}: checkpoint not found (train it with `eagrl train-expert` / `dvc repro`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise ExpertError(f"{path}: not a readable expert checkpoint ({error}); retrain the expert") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ExpertError(f"{path}: field 'format' is {payload.get('format') if isinstance(payload, dict) else None!r}, "
                          f"this code reads {CHECKPOINT_FORMAT}; retrain the expert")
    for key in ("model", "task", "features", "static_features", "config", "state"):
        if key not in payload:
            raise ExpertError(f"{path}: checkpoint lacks field '{key}'; retrain the expert")
    return payload


def _plain(value: Any) -> Any:
    """A dataclass / numpy-containing value as plain Python (what ``weights_only`` loading accepts)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
