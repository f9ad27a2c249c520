"""The ``hybrid`` section of params.yaml as a typed config (``eagrl train-hybrid --help`` lists it).

Layout::

    hybrid:
      models: [hybrid_fusion, hybrid_retriever]   # the dvc matrix
      threads: 1                 # torch threads of the stage (LLM embedding + tiny DL model)
      train: {}                  # overrides of experts.train for every hybrid
      embedding: {layers: 10, ...}      # shared by both models (methods/hybrid/embedding.py)
      descriptions: {prompt: ..., ...}  # hybrid_retriever's knowledge texts (methods/hybrid/descriptions.py)
      hybrid_fusion: {hidden: 64, ...}  # one block per model; may hold its own partial `train:`
      hybrid_retriever: {hidden: 32, ...}

Each model's config is assembled from its block, the shared ``embedding`` / ``descriptions`` blocks, the
backbone of ``llm.backbone`` and the optimisation ``experts.train`` ← ``hybrid.train`` ← the model's own
``train`` (later keys win), so by default the hybrids train exactly like the experts.
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
from methods.experts.config import check_models, with_train
from methods.experts.trainer import TrainConfig
from methods.hybrid.descriptions import DescriptionConfig
from methods.hybrid.embedding import EmbeddingConfig
from methods.hybrid.fusion import FusionConfig
from methods.hybrid.retriever import RetrieverConfig
from methods.llm.config import BackboneConfig

MODELS = ("hybrid_fusion", "hybrid_retriever")
SHARED = {"hybrid_fusion": ("embedding",), "hybrid_retriever": ("embedding", "descriptions")}


@dataclass
class HybridConfig:
    """Every hybrid baseline's settings (``hybrid`` in params.yaml, plus ``llm.backbone``)."""

    models: list[str] = option(list(MODELS), help="Hybrid baselines trained by `dvc repro` and reported.")
    threads: int = option(2, minimum=1, help="torch CPU threads of train_hybrid stages (as llm.threads: `dvc repro` runs one stage at a time).")
    train: dict[str, Any] = option({}, help="Keys of experts.train overridden for every hybrid ({} = train as the experts).")
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig, metadata={"help": "Frozen-LLM text embeddings."})
    descriptions: DescriptionConfig = field(default_factory=DescriptionConfig, metadata={"help": "Per-feature LLM descriptions."})
    hybrid_fusion: FusionConfig = field(default_factory=FusionConfig, metadata={"help": "Hybrid (a): LLM record embedding ⊕ GRU."})
    hybrid_retriever: RetrieverConfig = field(default_factory=RetrieverConfig, metadata={"help": "Hybrid (b): LLM knowledge vectors → feature attention."})

    def model(self, name: str) -> Any:
        """The config object of model ``name``."""
        if name not in MODELS:
            raise ConfigError(f"unknown hybrid '{name}'; known: {list(MODELS)}")
        return getattr(self, name)


def load_hybrid_config(params: Mapping[str, Any] | ParamsSource = "params.yaml", source: str | Path = "params.yaml"
                       ) -> HybridConfig:
    """Build :class:`HybridConfig` from a params mapping (or file), assembling each model's config."""
    if isinstance(params, (Params, str, Path)):
        params = load_params(params)
        source = params.source
    raw = dict(params.get("hybrid") or {})
    experts_train = (params.get("experts") or {}).get("train") or {}
    hybrid_train = raw.get("train") or {}
    backbone = (params.get("llm") or {}).get("backbone") or {}
    for name, where in ((experts_train, "experts.train"), (hybrid_train, "hybrid.train"), (backbone, "llm.backbone")):
        if not isinstance(name, dict):
            raise ConfigError(f"{source}: {where} must be a mapping")
    shared_train = overlaid(experts_train, hybrid_train)
    from_mapping(TrainConfig, shared_train, f"{source}: experts.train + hybrid.train")
    from_mapping(BackboneConfig, backbone, f"{source}: llm.backbone")
    for name in MODELS:
        block = dict(raw.get(name) or {})
        for key in ("embedding", "descriptions", "backbone"):
            if key in block:
                raise ConfigError(f"{source}: hybrid.{name}.{key} is not set per model; use hybrid.{key}"
                                  f"{' (llm.backbone for the backbone)' if key == 'backbone' else ''}")
        block = with_train(block, shared_train, f"hybrid.{name}", source)
        block["backbone"] = backbone
        for key in SHARED[name]:
            block[key] = raw.get(key) or {}
        raw[name] = block
    config = from_mapping(HybridConfig, raw, f"{source}: hybrid")
    check_models(config.models, list(MODELS), "hybrid", source)
    return config


def describe_hybrid() -> str:
    """The ``--help`` text of the ``hybrid`` section: top-level keys, then each block's keys."""
    blocks = ["hybrid:\n" + "\n".join(f"  {f.name} = {f.default_factory() if f.default is dataclasses.MISSING else f.default!r}"
                                      f"\n      {f.metadata.get('help', '')}"
                                      for f in dataclasses.fields(HybridConfig)
                                      if f.name in ("models", "threads", "train")),
              "hybrid.embedding:\n" + describe(EmbeddingConfig),
              "hybrid.descriptions:\n" + describe(DescriptionConfig)]
    for name, cls in (("hybrid_fusion", FusionConfig), ("hybrid_retriever", RetrieverConfig)):
        lines = [f"  {g.name} = {g.default!r}\n      {g.metadata.get('help', '')}"
                 for g in dataclasses.fields(cls) if g.default is not dataclasses.MISSING]
        blocks.append(f"hybrid.{name}:\n" + "\n".join(lines))
    return "\n\n".join(blocks)
