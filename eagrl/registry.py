"""Method name -> what the experiments need: the one place that knows every family of ``methods/``.

:data:`METHODS` implements :class:`benchmark.protocol.Methods` for the harness (robustness, cross-domain, the
method catalogue, the ablation table, the cohort signal check), and :func:`model_class` / :func:`load_model`
find a DL-side model by name among the experts *and* the hybrids (the experts' package does not know the
hybrids, which build on it). Each member imports its family on first use: ``eagrl <stage>`` stays cheap to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.config import ParamsSource
from benchmark.data.cohort import Cohort
from benchmark.protocol import LLMMethod, Methods, Model, RLPlan, RLVariant


def model_class(name: str) -> type:
    """The expert or hybrid class registered as ``name``; an unknown name lists both registries."""
    from methods.experts import EXPERTS, ExpertError
    from methods.hybrid import HYBRIDS

    found = EXPERTS.get(name) or HYBRIDS.get(name)
    if found is None:
        raise ExpertError(f"unknown expert '{name}'; known experts: {sorted(EXPERTS)}, hybrids: {sorted(HYBRIDS)}")
    return found


def load_model(path: str | Path) -> Model:
    """Load any expert or hybrid checkpoint, dispatching on the model name it records."""
    from methods.experts.base import read_checkpoint

    return model_class(read_checkpoint(path)["model"]).load(path)


class Registry(Methods):
    """:class:`benchmark.protocol.Methods` built from ``methods/`` (see there for each member)."""

    def load_model(self, checkpoint: Path) -> Model:
        return load_model(checkpoint)

    def fit_floor(self, train: Cohort, task: str, seed: int) -> Model:
        from methods.experts.logistic import LogisticConfig, LogisticExpert

        return LogisticExpert(task, LogisticConfig(seed=seed)).fit(train, None)

    def rl_plan(self, params: dict[str, Any], source: str | Path) -> RLPlan:
        from methods.eag_rl.config import load_rl_section
        from methods.eag_rl.variants import resolve_variant

        rl = load_rl_section(params, source)
        variants = {}
        for name in rl.variants:
            config = resolve_variant(rl, name, source)
            variants[name] = RLVariant(config.family, config.expert)
        return RLPlan(variants, [(pair["dataset"], pair["task"]) for pair in rl.pairs])

    def llm_method(self, key: str) -> LLMMethod | None:
        from methods.llm.prompting import METHODS

        return METHODS.get(key)

    def policy_method(self, key: str, name: str, family: str) -> LLMMethod:
        from methods.llm.prompting import Method

        return Method(key, name, "qd", "qd", family=family, trained=True)

    def llm_config(self, params: ParamsSource, finetuned: bool) -> Any:
        from methods.llm.config import load_llm_config

        return load_llm_config(params, finetuned=finetuned)

    def generator(self, llm: Any, adapter: Path | None) -> Any:
        from methods.llm.generation import generator_for

        return generator_for(llm, adapter)

    def evaluate_llm(self, cohort: Cohort, task: str, method: LLMMethod, llm: Any, generator: Any, out: Path,
                     params: ParamsSource, adapter: Path | None, **kwargs: Any) -> dict[str, Any]:
        from methods.llm.evaluation import evaluate_task

        return evaluate_task(cohort, task, method, llm, generator, out, params, adapter, **kwargs)

    def evaluation_subset(self, cohort: Cohort, task: str, llm: Any) -> Cohort:
        from methods.llm.prompting import evaluation_subset

        return evaluation_subset(cohort, task, llm.evaluation)


METHODS = Registry()
