"""The ``experts`` section of params.yaml as a typed config (``eagrl train-expert --help`` lists it).

Layout::

    experts:
      models: [logistic, gru, transformer, retain, adacare, concare]   # the dvc matrix
      top_k: 3                  # features in each patient's "top_k" list
      train: {...}              # shared optimisation settings (TrainConfig)
      gru: {hidden: 64, ...}    # one block per model; may hold a partial `train:` override
      ...

Each neural model's block may carry its own ``train:`` mapping with only the keys it changes; they are
merged over ``experts.train`` (see :func:`load_experts_config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import (
    ConfigError,
    Params,
    ParamsSource,
    describe,
    from_mapping,
    load_params,
    option,
    overlaid,
)
from methods.experts.adacare import AdaCareConfig
from methods.experts.concare import ConCareConfig
from methods.experts.gru import GRUConfig
from methods.experts.logistic import LogisticConfig
from methods.experts.retain import RETAINConfig
from methods.experts.trainer import TrainConfig
from methods.experts.transformer import TransformerConfig

NEURAL = ("gru", "transformer", "retain", "adacare", "concare")


@dataclass
class ExpertsConfig:
    """Every expert's settings (``experts`` in params.yaml)."""

    models: list[str] = option(["logistic", *NEURAL], help="Experts trained by `dvc repro` and reported (logistic is the floor).")
    top_k: int = option(3, minimum=1, help="Length of each patient's top_k feature list in the importance files.")
    threads: int = option(1, minimum=1, help="torch CPU threads while training experts (overrides runtime.threads for these stages): "
                                  "the models are tiny, so intra-op threads only add contention.")
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation shared by the neural experts."})
    logistic: LogisticConfig = field(default_factory=LogisticConfig, metadata={"help": "Logistic-regression floor."})
    gru: GRUConfig = field(default_factory=GRUConfig, metadata={"help": "GRU expert."})
    transformer: TransformerConfig = field(default_factory=TransformerConfig, metadata={"help": "Transformer expert."})
    retain: RETAINConfig = field(default_factory=RETAINConfig, metadata={"help": "RETAIN expert."})
    adacare: AdaCareConfig = field(default_factory=AdaCareConfig, metadata={"help": "AdaCare expert."})
    concare: ConCareConfig = field(default_factory=ConCareConfig, metadata={"help": "ConCare expert (EAG-RL's)."})

    def model(self, name: str) -> Any:
        """The config object of model ``name``."""
        if name not in ("logistic", *NEURAL):
            raise ConfigError(f"unknown expert '{name}'; known: {['logistic', *NEURAL]}")
        return getattr(self, name)


def load_experts_config(params: Mapping[str, Any] | ParamsSource = "params.yaml", source: str | Path = "params.yaml"
                        ) -> ExpertsConfig:
    """Build :class:`ExpertsConfig` from a params mapping (or file), merging ``train`` overrides."""
    if isinstance(params, (Params, str, Path)):
        params = load_params(params)
        source = params.source
    raw = dict(params.get("experts") or {})
    shared = raw.get("train") or {}
    if not isinstance(shared, dict):
        raise ConfigError(f"{source}: experts.train must be a mapping of TrainConfig keys")
    for name in NEURAL:
        raw[name] = with_train(raw.get(name) or {}, shared, f"experts.{name}", source)
    config = from_mapping(ExpertsConfig, raw, f"{source}: experts")
    check_models(config.models, ["logistic", *NEURAL], "experts", source)
    return config


def with_train(block: dict[str, Any], shared: dict[str, Any], where: str, source: str | Path) -> dict[str, Any]:
    """A model's mapping with its ``train`` overrides merged over the ``shared`` training keys (the suite's one
    override rule, :func:`benchmark.config.merge_overlay`)."""
    override = block.get("train") or {}
    if not isinstance(override, dict):
        raise ConfigError(f"{source}: {where}.train must be a mapping (keys of experts.train to override)")
    return {**block, "train": overlaid(shared, override)}


def check_models(models: list[str], known: list[str], section: str, source: str | Path) -> None:
    """A ``<section>.models`` entry that names no known model is an error listing the known ones."""
    unknown = sorted(set(models) - set(known))
    if unknown:
        raise ConfigError(f"{source}: {section}.models lists unknown model(s) {unknown}; known: {known}")


def describe_experts() -> str:
    """The ``--help`` text of the ``experts`` section: top-level keys, ``train``, then each model's keys."""
    defaults = ExpertsConfig()
    blocks = ["experts:\n" + "\n".join(f"  {f.name} = {getattr(defaults, f.name)!r}\n      {f.metadata.get('help', '')}"
                                          for f in dataclasses.fields(ExpertsConfig) if f.name in ("models", "top_k", "threads")),
              "experts.train (a model's own `train:` block overrides single keys):\n" + describe(TrainConfig)]
    for f in dataclasses.fields(ExpertsConfig):
        if f.name in ("models", "top_k", "threads", "train"):
            continue
        model = getattr(defaults, f.name)
        lines = [f"  {g.name} = {getattr(model, g.name)!r}\n      {g.metadata.get('help', '')}"
                 for g in dataclasses.fields(model) if g.name != "train"]
        blocks.append(f"experts.{f.name} ({f.metadata.get('help', '')}):\n" + "\n".join(lines))
    return "\n\n".join(blocks)
