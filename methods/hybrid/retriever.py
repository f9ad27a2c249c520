"""Hybrid (b) ``hybrid_retriever``: the frozen LLM as a knowledge retriever for a feature-attention expert.

A deliberate **simplification of EMERGE / GraphCare**-style methods, which retrieve medical knowledge
with an LLM (EMERGE: LLM-written summaries and knowledge-graph entities; GraphCare: LLM-built
patient knowledge graphs + a GNN) and let a DL model predict with it. Here the "knowledge" is one short
LLM-written description per feature and task (:mod:`methods.hybrid.descriptions`), generated once at
training time, embedded by the same frozen backbone (:mod:`methods.hybrid.embedding`) and stored in the
checkpoint; prediction never runs the LLM. No knowledge graph, no retrieval over a corpus.

Architecture (``d`` features, width ``h``)
  1. Knowledge vectors — the ``d`` description embeddings, centred over the features (the part all
     descriptions share says nothing about any one feature) and scaled to unit overall std; a shared
     ``Linear(E → h)`` maps them to ``k_j``. The embeddings are frozen, the projection learns.
  2. Feature tokens — per visit ``t`` and feature ``j``: ``u_tj = LayerNorm(x_tj · w_j + b_j + k_j)``, a
     per-feature value embedding (ConCare-style channel-wise, ``w_j ~ N(0, I)``) plus the feature's
     knowledge vector. The LayerNorm and the unit-scale ``w_j`` matter: without them the heavy-tailed ward
     labs (z-scores up to ~35) left training on a plateau at the label prior for 15-80 epochs, and early
     stopping sometimes ended it there (synthetic_ward test AUROC 0.57).
  3. Feature attention — ``a_tj = softmax_j(v · tanh(W u_tj))`` over the features of each visit; the
     visit vector is ``c_t = Σ_j a_tj u_tj``.
  4. Time — a GRU over ``c_1 … c_T``, read at the last real visit, ⊕ static inputs → ``Linear`` → logit.
  Trained with the experts' loop (:mod:`methods.experts.trainer`).

Importance — the **feature attention** ``a_tj`` averaged over the patient's real visits (a distribution
over the ``d`` features by construction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.config import option
from benchmark.data.cohort import Cohort
from methods.experts.base import ExpertError
from methods.experts.trainer import TorchExpert, TrainConfig, last_visit
from methods.hybrid.descriptions import DescriptionConfig, generate_descriptions, knowledge_text
from methods.hybrid.embedding import EmbeddingConfig, embedder_for
from methods.llm.config import BackboneConfig


@dataclass
class RetrieverConfig:
    """Architecture of ``hybrid_retriever`` (``hybrid.hybrid_retriever`` in params.yaml)."""

    hidden: int = option(32, minimum=1, help="Width of the feature tokens, the knowledge projection and the GRU.")
    dropout: float = option(0.1, minimum=0.0, maximum=1.0, help="Dropout on the tokens and the last GRU state.")
    descriptions: DescriptionConfig = field(default_factory=DescriptionConfig, metadata={"help": "Per-feature LLM descriptions (hybrid.descriptions)."})
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig, metadata={"help": "Frozen-LLM embedding (hybrid.embedding)."})
    backbone: BackboneConfig = field(default_factory=BackboneConfig, metadata={"help": "The frozen LLM (llm.backbone)."})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (experts.train + hybrid.train)."})


def standardise_knowledge(knowledge: torch.Tensor) -> torch.Tensor:
    """(d, E) description embeddings centred over the features and scaled to unit overall std."""
    centred = knowledge - knowledge.mean(dim=0, keepdim=True)
    scale = centred.std() if centred.numel() > 1 else torch.tensor(1.0)
    return centred / (scale if torch.isfinite(scale) and scale > 0 else 1.0)


class RetrieverNetwork(nn.Module):
    """Knowledge-injected feature tokens → attention over features → GRU over visits → logit."""

    def __init__(self, n_features: int, n_static: int, knowledge: torch.Tensor, config: RetrieverConfig) -> None:
        super().__init__()
        if knowledge.shape[0] != n_features:
            raise ExpertError(f"hybrid_retriever: {knowledge.shape[0]} knowledge vectors for {n_features} features")
        h = config.hidden
        self.register_buffer("knowledge", standardise_knowledge(knowledge.float()))
        self.know = nn.Linear(knowledge.shape[1], h)
        self.value_weight = nn.Parameter(torch.randn(n_features, h))
        self.value_bias = nn.Parameter(torch.zeros(n_features, h))
        self.norm = nn.LayerNorm(h)
        self.key = nn.Linear(h, h)
        self.score = nn.Linear(h, 1, bias=False)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(h, h, batch_first=True)
        self.head = nn.Linear(h + n_static, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        values = batch["values"]  # (b, T, d)
        knowledge = self.know(self.knowledge)  # (d, h)
        tokens = values.unsqueeze(-1) * self.value_weight + self.value_bias + knowledge  # (b, T, d, h)
        tokens = self.dropout(self.norm(tokens))
        attention = torch.softmax(self.score(torch.tanh(self.key(tokens))).squeeze(-1), dim=-1)  # (b, T, d)
        visits = (attention.unsqueeze(-1) * tokens).sum(dim=2)  # (b, T, h)
        states, _ = self.gru(visits)
        summary = self.dropout(last_visit(states, batch["n_visits"]))
        visit_mask = batch["visit_mask"].unsqueeze(-1)
        importance = (attention * visit_mask).sum(dim=1) / visit_mask.sum(dim=1).clamp(min=1.0)
        return {"logit": self.head(torch.cat([summary, batch["static"]], dim=-1)).squeeze(-1),
                "importance": importance}


class HybridRetrieverExpert(TorchExpert):
    """Hybrid (b): LLM feature descriptions as knowledge vectors of a feature-attention GRU."""

    name = "hybrid_retriever"
    config_class = RetrieverConfig
    importance_source = "network"

    def __init__(self, task: str, config: Any) -> None:
        super().__init__(task, config)
        self.descriptions: list[str] | None = None
        self.knowledge: np.ndarray | None = None  # (d, E) embeddings of the knowledge texts

    def retrieve(self, cohort: Cohort) -> None:
        """Generate the descriptions of ``cohort``'s features for this task and embed them (once)."""
        self.descriptions = generate_descriptions(cohort, self.task, self.config.backbone, self.config.descriptions)
        texts = [knowledge_text(spec, text) for spec, text in zip(cohort.features, self.descriptions, strict=True)]
        self.knowledge = embedder_for(self.config.backbone, self.config.embedding).embed(
            texts, desc=f"{self.name}: embed descriptions")

    def _fit(self, train: Cohort, val: Cohort | None) -> None:
        self.retrieve(train)
        super()._fit(train, val)

    def build_network(self, n_features: int, n_static: int) -> nn.Module:
        if self.knowledge is None:
            raise ExpertError(f"{self.name}: no knowledge vectors (fit the model or load a checkpoint)")
        return RetrieverNetwork(n_features, n_static, torch.as_tensor(self.knowledge), self.config)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "descriptions": list(self.descriptions or []),
                "knowledge": torch.as_tensor(self.knowledge)}

    def _restore(self, state: dict[str, Any]) -> None:
        self.descriptions = list(state["descriptions"])
        self.knowledge = state["knowledge"].numpy()
        super()._restore(state)
