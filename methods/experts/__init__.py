"""Expert EHR models: probabilities and per-patient feature importance through one interface.

``EXPERTS`` maps a model name (as used in params.yaml ``experts.models`` and on the command line) to its
class. Every class implements :class:`methods.experts.base.Expert`::

    expert = build_expert("concare", "mortality", params)      # config from params.yaml
    expert.fit(cohort.subset("train"), cohort.subset("val"))
    p = expert.predict_proba(cohort.subset("test"))            # (n,)
    w = expert.feature_importance(cohort.subset("test"))       # (n, d), rows sum to 1
    expert.save("model.pt"); expert = load_expert("model.pt")

Modules: ``base`` (interface, checkpoints), ``trainer`` (shared training loop), one module per model,
``importance`` (the ranked-feature JSONL files), ``stage`` (``eagrl train-expert``), ``report``
(``eagrl report-experts``). The hybrid baselines of :mod:`methods.hybrid` implement the same interface and
build on this package, which therefore does not know them: ``eagrl.registry.load_model`` /
``model_class`` find experts and hybrids alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.experts.adacare import AdaCareExpert
from methods.experts.base import Expert, ExpertError, read_checkpoint
from methods.experts.concare import ConCareExpert
from methods.experts.gru import GRUExpert
from methods.experts.logistic import LogisticExpert
from methods.experts.retain import RETAINExpert
from methods.experts.transformer import TransformerExpert

EXPERTS: dict[str, type[Expert]] = {
    cls.name: cls
    for cls in (LogisticExpert, GRUExpert, TransformerExpert, RETAINExpert, AdaCareExpert, ConCareExpert)
}


def expert_class(name: str) -> type[Expert]:
    """The expert class registered as ``name``; an unknown name lists the known ones."""
    if name not in EXPERTS:
        raise ExpertError(f"unknown expert '{name}'; known experts: {sorted(EXPERTS)} (a hybrid loads with "
                          f"eagrl.registry.load_model)")
    return EXPERTS[name]


def load_expert(path: str | Path) -> Expert:
    """Load an expert checkpoint, dispatching on the model name it records (hybrids: ``eagrl.registry``)."""
    return expert_class(read_checkpoint(path)["model"]).load(path)


def build_expert(name: str, task: str, config: Any) -> Expert:
    """An unfitted expert ``name`` for ``task`` with an already-built config object."""
    return expert_class(name)(task, config)


__all__ = ["EXPERTS", "Expert", "ExpertError", "build_expert", "expert_class", "load_expert"]
