"""What the harness needs from the methods, as a contract: the harness never imports :mod:`methods`.

The experiments (:mod:`benchmark.experiments.robustness`, :mod:`benchmark.experiments.cross_domain`), the method catalogue, the
ablation table and the cohort signal check drive methods they do not know. They receive a :class:`Methods`
object: the app builds it from ``methods/`` (:mod:`eagrl.registry`) and passes it in, and a test can pass a
fake. Everything a method returns is read through the small interfaces below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchmark.config import ParamsSource
from benchmark.data.cohort import Cohort


class Model(Protocol):
    """A DL-side model (an expert or a hybrid): one probability per patient of a cohort."""

    def predict_proba(self, cohort: Cohort) -> np.ndarray: ...


class LLMMethod(Protocol):
    """An LLM method as the catalogue reads it: its key, family, prompt style and how it is reported."""

    key: str
    family: str
    style: str
    base_policy: bool

    @property
    def reported_key(self) -> str: ...


@dataclass(frozen=True)
class RLVariant:
    """One variant of ``eag_rl.rl.variants``: its result-table family and its guiding expert ("" = default)."""

    family: str
    expert: str = ""


@dataclass(frozen=True)
class RLPlan:
    """``eag_rl.rl`` as the harness reads it: the variants by name and the (dataset, task) pairs trained."""

    variants: dict[str, RLVariant] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)


class Methods(Protocol):
    """The methods, as the experiments and reports use them (implemented by :class:`eagrl.registry.Registry`)."""

    def load_model(self, checkpoint: Path) -> Model:
        """The expert or hybrid saved at ``checkpoint``."""

    def fit_floor(self, train: Cohort, task: str, seed: int) -> Model:
        """The floor model of the signal check (a last-value logistic regression), fitted on ``train``."""

    def rl_plan(self, params: dict[str, Any], source: str | Path) -> RLPlan:
        """The RL variants and pairs of ``params`` (``eag_rl.rl``, code defaults where absent)."""

    def llm_method(self, key: str) -> LLMMethod | None:
        """The prompting / label-SFT method ``key`` (``methods.llm.prompting.METHODS``), or None."""

    def policy_method(self, key: str, name: str, family: str) -> LLMMethod:
        """A policy trained by EAG-RL's stages (stage 1, an RL variant): QD prompts, trained."""

    def llm_config(self, params: ParamsSource, finetuned: bool) -> Any:
        """The ``llm`` settings (on ``llm.finetuned``'s backbone when ``finetuned``)."""

    def generator(self, llm: Any, adapter: Path | None) -> Any:
        """A text generator for the settings ``llm``, with the LoRA ``adapter`` when given."""

    def evaluate_llm(self, cohort: Cohort, task: str, method: LLMMethod, llm: Any, generator: Any, out: Path,
                     params: ParamsSource, adapter: Path | None, **kwargs: Any) -> dict[str, Any]:
        """Run ``method`` on ``cohort`` for ``task``; write predictions and metrics into ``out``; the metrics."""

    def evaluation_subset(self, cohort: Cohort, task: str, llm: Any) -> Cohort:
        """The patients LLM methods are evaluated on for ``task`` (``llm.evaluation``)."""
