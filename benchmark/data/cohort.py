"""The on-disk cohort format every source produces and every method reads (DESIGN §3).

A cohort is a set of patients, each with static features (age, sex), a time-ordered list of visits (days
for TJH and MIMIC-IV, encounters for the synthetic data), per-visit feature values, one binary label per
task, a split and the domain it came from. Arrays are padded to the longest stay: visit ``t`` of patient
``i`` is real iff ``t < n_visits[i]``.

Two views of the same values are kept side by side:

* ``raw`` — the values as measured, ``NaN`` where missing. LLM prompts are serialized from this view.
* ``values`` — z-scored with train-split statistics, last observation carried forward, remaining gaps
  filled with the train median; what the DL experts read. ``mask`` is 1 where ``raw`` was observed.

On disk a cohort is a folder with ``arrays.npz`` (the arrays) and ``meta.json`` (names, features with
unit / reference range / kind, tasks, normalisation statistics, provenance). :meth:`Cohort.validate`
checks every invariant and raises :class:`CohortError` naming the file, the field and what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmark.runtime import atomic_directory, sha256_file

FORMAT_VERSION = 1
COHORT_ROOT = Path("data/cohorts")  # where stage prepare writes the cohorts: <root>/<data set>/
SPLITS = ("train", "val", "test")
FEATURE_KINDS = ("lab", "vital", "static", "categorical")
ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"


class CohortError(ValueError):
    """A cohort violates the format; the message names the file, the field and the problem."""


def check_source(provenance: dict[str, Any], meta_path: Path) -> None:
    """A cohort built from a raw file (``provenance.workbook`` + ``sha256``: TJH) must still match that file.

    The raw paths are params, not DVC deps (hashing MIMIC-IV's tables would take minutes), so replacing the
    workbook at the same path does not make ``dvc repro`` rebuild the cohort: every stage that reads it stops
    here instead, naming the fix. A workbook that is no longer there is not checked (the cohort stands alone).
    """
    workbook, recorded = provenance.get("workbook"), provenance.get("sha256")
    if not workbook or not recorded or not Path(workbook).is_file():
        return
    digest = sha256_file(workbook)
    if digest != recorded:
        raise CohortError(f"{meta_path}: provenance.sha256: the cohort was built from {workbook} "
                          f"(sha256 {recorded[:12]}), which has changed since (now {digest[:12]}); rebuild it with "
                          f"`dvc repro --force prepare@{meta_path.parent.name}` and re-run the pipeline")


@dataclass(frozen=True)
class FeatureSpec:
    """Metadata of one feature: what a clinician needs to read its value."""

    name: str
    unit: str
    reference_range: str
    kind: Literal["lab", "vital", "static", "categorical"]

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class NormalisationStats:
    """Train-split statistics used to build ``values`` from ``raw`` (one entry per dynamic feature)."""

    mean: list[float]
    std: list[float]
    median: list[float]
    trim_quantiles: tuple[float, float] = (0.05, 0.95)


@dataclass
class Cohort:
    """A cohort in memory. ``n`` patients, ``T`` visits (padded), ``d`` dynamic features, ``k`` tasks."""

    name: str
    domain: str
    features: list[FeatureSpec]
    static_features: list[FeatureSpec]
    tasks: list[str]
    ids: np.ndarray  # (n,) str
    n_visits: np.ndarray  # (n,) int
    times: np.ndarray  # (n, T) float: days since admission; NaN on padding
    raw: np.ndarray  # (n, T, d) float: measured values, NaN where missing (and on padding)
    values: np.ndarray  # (n, T, d) float: normalised + imputed; 0 on padding
    mask: np.ndarray  # (n, T, d) bool: observed in raw
    static: np.ndarray  # (n, s) float: raw static values (age in years, sex 1 = male / 0 = female)
    labels: np.ndarray  # (n, k) int8
    split: np.ndarray  # (n,) str in SPLITS
    normalisation: NormalisationStats
    salient: np.ndarray | None = None  # (n, d) bool: ground-truth drivers of risk (synthetic only)
    true_risk: np.ndarray | None = None  # (n, k) float: ground-truth probability (synthetic only)
    provenance: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ accessors
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def static_names(self) -> list[str]:
        return [f.name for f in self.static_features]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def label(self, task: str) -> np.ndarray:
        """Binary labels of one task, shape (n,)."""
        if task not in self.tasks:
            raise KeyError(f"cohort '{self.name}' has no task '{task}'; its tasks are {self.tasks}")
        return self.labels[:, self.tasks.index(task)].astype(np.int64)

    def select(self, index: np.ndarray) -> Cohort:
        """The cohort restricted to the patients at ``index`` (boolean mask or integer positions)."""
        take = np.asarray(index)
        per_patient = {
            name: getattr(self, name)[take]
            for name in ("ids", "n_visits", "times", "raw", "values", "mask", "static", "labels", "split")
        }
        optional = {
            name: (getattr(self, name)[take] if getattr(self, name) is not None else None)
            for name in ("salient", "true_risk")
        }
        return dataclasses.replace(self, **per_patient, **optional)

    def subset(self, split: str) -> Cohort:
        """Patients of one split ('train', 'val' or 'test')."""
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}'; expected one of {SPLITS}")
        return self.select(self.split == split)

    def last_observed(self, normalised: bool = False) -> np.ndarray:
        """(n, d) last observed raw value of each feature (NaN if never observed), or the imputed view."""
        if normalised:
            last = np.clip(self.n_visits - 1, 0, None)
            return self.values[np.arange(len(self)), last]
        out = np.full((len(self), len(self.features)), np.nan)
        for t in range(self.raw.shape[1]):
            observed = ~np.isnan(self.raw[:, t])
            out[observed] = self.raw[:, t][observed]
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write ``arrays.npz`` + ``meta.json`` into ``folder`` atomically (validates first)."""
        folder = Path(folder)
        self.validate(source=str(folder))
        arrays = {
            "ids": self.ids.astype(str),
            "n_visits": self.n_visits.astype(np.int32),
            "times": self.times.astype(np.float32),
            "raw": self.raw.astype(np.float32),
            "values": self.values.astype(np.float32),
            "mask": self.mask.astype(bool),
            "static": self.static.astype(np.float32),
            "labels": self.labels.astype(np.int8),
            "split": self.split.astype(str),
        }
        if self.salient is not None:
            arrays["salient"] = self.salient.astype(bool)
        if self.true_risk is not None:
            arrays["true_risk"] = self.true_risk.astype(np.float32)
        meta = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "domain": self.domain,
            "tasks": self.tasks,
            "features": [f.to_dict() for f in self.features],
            "static_features": [f.to_dict() for f in self.static_features],
            "normalisation": dataclasses.asdict(self.normalisation),
            "provenance": self.provenance,
        }
        with atomic_directory(folder) as tmp:
            np.savez_compressed(tmp / ARRAYS_FILE, **arrays)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, validate: bool = True) -> Cohort:
        """Read a cohort folder written by :meth:`save`; errors name the missing file or field."""
        folder = Path(folder)
        meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
        for path in (meta_path, arrays_path):
            if not path.exists():
                raise CohortError(f"{path}: file not found (run `eagrl prepare` / `dvc repro` to build the cohort)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as error:
            raise CohortError(f"{meta_path}: not valid JSON ({error}); rebuild the cohort") from error
        if meta.get("format_version") != FORMAT_VERSION:
            raise CohortError(
                f"{meta_path}: field 'format_version' is {meta.get('format_version')!r}, this code reads "
                f"{FORMAT_VERSION}; rebuild the cohort with `dvc repro`"
            )
        for key in ("name", "domain", "tasks", "features", "static_features", "normalisation"):
            if key not in meta:
                raise CohortError(f"{meta_path}: missing field '{key}'; rebuild the cohort")
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        required = ("ids", "n_visits", "times", "raw", "values", "mask", "static", "labels", "split")
        for key in required:
            if key not in arrays:
                raise CohortError(f"{arrays_path}: missing array '{key}'; rebuild the cohort")
        norm = meta["normalisation"]
        cohort = cls(
            name=meta["name"],
            domain=meta["domain"],
            features=[FeatureSpec(**f) for f in meta["features"]],
            static_features=[FeatureSpec(**f) for f in meta["static_features"]],
            tasks=list(meta["tasks"]),
            ids=arrays["ids"],
            n_visits=arrays["n_visits"].astype(np.int64),
            times=arrays["times"].astype(np.float64),
            raw=arrays["raw"].astype(np.float64),
            values=arrays["values"].astype(np.float32),
            mask=arrays["mask"].astype(bool),
            static=arrays["static"].astype(np.float64),
            labels=arrays["labels"].astype(np.int8),
            split=arrays["split"].astype(str),
            normalisation=NormalisationStats(
                mean=norm["mean"], std=norm["std"], median=norm["median"],
                trim_quantiles=tuple(norm.get("trim_quantiles", (0.05, 0.95))),
            ),
            salient=arrays.get("salient"),
            true_risk=arrays.get("true_risk"),
            provenance=meta.get("provenance", {}),
        )
        check_source(cohort.provenance, meta_path)
        if validate:
            cohort.validate(source=str(folder))
        return cohort

    # ------------------------------------------------------------------ validation
    def validate(self, source: str = "<memory>") -> None:
        """Check every invariant of the format; raise :class:`CohortError` on the first violation."""

        def fail(where: str, what: str) -> None:
            raise CohortError(f"{source}: field '{where}': {what}")

        n = len(self.ids)
        d = len(self.features)
        if n == 0:
            fail("ids", "the cohort has no patients")
        if len(set(self.ids.tolist())) != n:
            dup = sorted({x for x in self.ids.tolist() if self.ids.tolist().count(x) > 1})[:5]
            fail("ids", f"patient ids must be unique, duplicated: {dup}")
        names = self.feature_names
        if len(set(names)) != d:
            fail("features", "feature names must be unique")
        for spec in [*self.features, *self.static_features]:
            if spec.kind not in FEATURE_KINDS:
                fail("features", f"feature '{spec.name}' has kind '{spec.kind}', expected one of {FEATURE_KINDS}")
        if self.raw.ndim != 3:
            fail("raw", f"expected shape (patients, visits, features), got {self.raw.shape}")
        T = self.raw.shape[1]
        shapes = {
            "n_visits": (n,), "times": (n, T), "raw": (n, T, d), "values": (n, T, d), "mask": (n, T, d),
            "static": (n, len(self.static_features)), "labels": (n, len(self.tasks)), "split": (n,),
        }
        for key, shape in shapes.items():
            if getattr(self, key).shape != shape:
                fail(key, f"expected shape {shape}, got {getattr(self, key).shape}")
        if self.salient is not None and self.salient.shape != (n, d):
            fail("salient", f"expected shape {(n, d)}, got {self.salient.shape}")
        if self.true_risk is not None and self.true_risk.shape != (n, len(self.tasks)):
            fail("true_risk", f"expected shape {(n, len(self.tasks))}, got {self.true_risk.shape}")
        if (self.n_visits < 1).any() or (self.n_visits > T).any():
            fail("n_visits", f"every patient needs between 1 and {T} visits")
        bad_split = sorted(set(self.split.tolist()) - set(SPLITS))
        if bad_split:
            fail("split", f"unknown split value(s) {bad_split}; expected {SPLITS}")
        if not np.isin(self.labels, (0, 1)).all():
            fail("labels", "labels must be 0 or 1 (missing labels are not allowed: drop the patient)")
        real = np.arange(T)[None, :] < self.n_visits[:, None]
        real_times = self.times[real]
        if np.isnan(real_times).any():
            fail("times", "every real visit needs a time (NaN found inside n_visits)")
        with np.errstate(invalid="ignore"):
            diffs = np.diff(np.where(real, self.times, np.inf), axis=1)
        if (diffs[real[:, 1:]] < 0).any():
            fail("times", "visits must be in time order within each patient")
        if not np.isnan(self.raw[~real]).all():
            fail("raw", "padding visits (t >= n_visits) must be NaN")
        if not np.array_equal(self.mask, ~np.isnan(self.raw)):
            fail("mask", "mask must be exactly the observed (non-NaN) entries of raw")
        if not np.isfinite(self.values).all():
            fail("values", "the normalised view must be finite everywhere (impute before saving)")
        if np.isinf(self.raw).any():
            fail("raw", "infinite values are not allowed; use NaN for missing")
        if len(self.normalisation.mean) != d or len(self.normalisation.std) != d:
            fail("normalisation", f"needs one mean and one std per feature ({d})")
        if any(s <= 0 for s in self.normalisation.std):
            fail("normalisation", "standard deviations must be positive")
