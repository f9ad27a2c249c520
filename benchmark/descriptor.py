"""The method descriptor: what a metrics file is *of*, so that result tables can be built from any subset.

Every metrics JSON written by ``eagrl evaluate`` / :func:`benchmark.evaluate.evaluate_file` says how well
something scored; the descriptor says what that something was. The collectors (:mod:`benchmark.reports.collect`,
``eagrl verify``) read it to place the numbers in the main table and to test the paper's claims.

The convention
--------------
A metrics JSON carries a top-level key ``"descriptor"``::

    {"n": 200, "auroc": {...}, ..., "descriptor": {
        "dataset": "synthetic_icu",      # the cohort the predictions were made on (the test data set)
        "task": "mortality",             # a task of that cohort
        "method": "concare",             # method name as used in params.yaml / dvc.yaml
        "family": "expert",              # one of FAMILIES (below)
        "backbone": null,                # LLM the method starts from (null for experts);
                                         # e.g. "smollm2" or "Qwen/Qwen2.5-7B-Instruct"
        "condition": "standard",         # "standard" = unperturbed test set; robustness conditions are
                                         # "shuffle:<fraction>", "noise:<level>", "mask:<level>" and "none"
                                         # (their unperturbed level 0, on the robustness stages' patients)
        "train_dataset": null}}          # the data set it was trained on when it differs from ``dataset``
                                         # (cross-domain); null = same as ``dataset``

Write it with :func:`attach_descriptor` right after ``evaluate_file`` (it rewrites the JSON atomically), or
put the same mapping in a sidecar file ``descriptor.json`` in the same folder. Where neither exists, the
collector can still derive the fields from the file's path, with the path patterns and per-method
families of the ``report`` section of params.yaml (see :mod:`benchmark.reports.main`); fields found in the
file win over fields derived from the path, and a contradiction between the two is an error.

Families
--------
``expert`` (EHR deep-learning models and the logistic floor), ``prompting`` (Vanilla, Think & Answer,
QD on a frozen backbone — ``vanilla`` is the "base model" of the paper's comparisons), ``finetune``
(label SFT, stage-1 SFT policy used as a baseline), ``rl`` (outcome-only GRPO / DAPO), ``eag_rl`` (the
full method), ``ablation`` (EAG-RL variants: w/o stage 1, w/o stage 2, w/o R_att, w/o ε(τ), other
experts as guides), ``hybrid`` (frozen LLM + DL model).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.config import option
from benchmark.runtime import atomic_write_json

FAMILIES = ("expert", "prompting", "finetune", "rl", "eag_rl", "ablation", "hybrid")
STANDARD = "standard"
DESCRIPTOR_KEY = "descriptor"
SIDECAR = "descriptor.json"
REQUIRED = ("dataset", "task", "method", "family")


class DescriptorError(ValueError):
    """A descriptor is missing a field, has an unknown family, or contradicts the file's path."""


@dataclass(frozen=True)
class MethodDescriptor:
    """What one metrics file measures: (data set, task, method, family, backbone, condition)."""

    dataset: str = option(help="Data set the predictions were made on (a key of params.yaml 'datasets').")
    task: str = option(help="Prediction task, e.g. 'mortality' or 'readmission'.")
    method: str = option(help="Method name as in params.yaml / dvc.yaml, e.g. 'concare', 'vanilla', 'eag_rl'.")
    family: str = option(help=f"One of {FAMILIES}.")
    backbone: str | None = option(None, help="LLM the method starts from; None for experts.")
    condition: str = option(STANDARD, help="'standard', or a perturbation such as 'shuffle:0.6'.")
    train_dataset: str | None = option(None, help="Training data set when it differs from 'dataset' (cross-domain).")

    def __post_init__(self) -> None:
        for name in REQUIRED:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise DescriptorError(f"descriptor field '{name}' must be a non-empty string, got {value!r}")
        if self.family not in FAMILIES:
            raise DescriptorError(f"descriptor field 'family' is {self.family!r}; use one of {FAMILIES}")
        if not isinstance(self.condition, str) or not self.condition:
            raise DescriptorError(f"descriptor field 'condition' must be a non-empty string, got {self.condition!r}")

    @property
    def source_dataset(self) -> str:
        """The data set the method was trained on (``train_dataset`` or, by default, ``dataset``)."""
        return self.train_dataset or self.dataset

    @property
    def cross_domain(self) -> bool:
        """True when the method was trained on another data set than it is tested on."""
        return self.source_dataset != self.dataset

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (the JSON form)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "descriptor") -> MethodDescriptor:
        """Build from a mapping; unknown or missing fields are reported with ``where``."""
        if not isinstance(data, dict):
            raise DescriptorError(f"{where}: a descriptor must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DescriptorError(f"{where}: unknown descriptor field(s) {unknown}; known fields are {sorted(known)}")
        missing = [name for name in REQUIRED if data.get(name) in (None, "")]
        if missing:
            raise DescriptorError(f"{where}: descriptor lacks required field(s) {missing} (required: {list(REQUIRED)})")
        values = {k: v for k, v in data.items() if v is not None or k in ("backbone", "train_dataset")}
        try:
            return cls(**values)
        except DescriptorError as error:
            raise DescriptorError(f"{where}: {error}") from None


def attach_descriptor(metrics_path: str | Path, descriptor: MethodDescriptor | dict[str, Any]) -> Path:
    """Add (or replace) the ``descriptor`` key of a metrics JSON, atomically; returns the path.

    Called by a method's stage right after :func:`benchmark.evaluate.evaluate_file`, so that the
    collectors know which row and column the numbers belong to.
    """
    path = Path(metrics_path)
    if not isinstance(descriptor, MethodDescriptor):
        descriptor = MethodDescriptor.from_dict(descriptor, f"descriptor for {path}")
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise DescriptorError(f"{path}: a metrics file must be a JSON object")
    data[DESCRIPTOR_KEY] = descriptor.to_dict()
    return atomic_write_json(path, data)


def embedded_descriptor(metrics_path: str | Path, data: dict[str, Any]) -> dict[str, Any]:
    """The descriptor fields stored with a metrics file (inside it, else its sidecar), or ``{}``."""
    if DESCRIPTOR_KEY in data:
        inside = data[DESCRIPTOR_KEY]
        if not isinstance(inside, dict):
            raise DescriptorError(f"{metrics_path}: key '{DESCRIPTOR_KEY}' must be a JSON object")
        return dict(inside)
    sidecar = Path(metrics_path).with_name(SIDECAR)
    if sidecar.exists():
        try:
            loaded = json.loads(sidecar.read_text())
        except json.JSONDecodeError as error:
            raise DescriptorError(f"{sidecar}: not valid JSON ({error})") from None
        if not isinstance(loaded, dict):
            raise DescriptorError(f"{sidecar}: must be a JSON object of descriptor fields")
        return loaded
    return {}
