"""Hybrid (a) ``hybrid_fusion``: a frozen LLM's embedding of the serialized record fused with a GRU.

The "frozen LLM as a prior" family of hybrid baselines: the LLM reads the record as text but does not
predict; a deep-learning model does, with the LLM's view as one more input.

Architecture
  * Sequence branch — the GRU expert's encoder (:mod:`methods.experts.gru`): a GRU over the visit vectors
    (normalised, imputed values of the ``d`` features), read at the patient's last real visit.
  * LLM branch — the record text of :func:`methods.hybrid.embedding.record_text` (the Vanilla prompt's
    record: visit times, sex, age, one line per feature with unit, reference range and values), embedded
    by the frozen backbone (:mod:`methods.hybrid.embedding`: mean-pooled hidden states), standardised per
    dimension with train-split statistics, then ``Linear → GELU → Dropout`` to ``projection`` units.
  * Head — ``[GRU state, projected LLM embedding, static inputs] → Linear → logit``.
  Trained with the experts' loop (:mod:`methods.experts.trainer`: AdamW, early stopping on validation
  AUPRC); only the GRU, the projection and the head learn — the backbone stays frozen.

``predict_proba(cohort)`` serializes and embeds the cohort it is given, so a perturbation of the cohort
(noise, masking, ...) reaches both views. ``serialize_options`` (e.g. ``{"shuffle_fraction": 0.5,
"seed": 1}``, passed to :func:`benchmark.serialize.serialize_patient`) perturbs the text view alone,
as the LLM baselines' feature-order shuffle does; it is empty by default and not saved.

Importance — **gradient × input of the sequence branch** (as the GRU expert,
:func:`methods.experts.trainer.gradient_x_input`): the LLM embedding is a per-patient constant context
in that derivative, so the distribution over features comes from the DL model alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.config import option
from benchmark.data.cohort import Cohort
from methods.experts.trainer import TorchExpert, TrainConfig, last_visit
from methods.hybrid.embedding import EmbeddingConfig, embedder_for, record_texts
from methods.llm.config import BackboneConfig


@dataclass
class FusionConfig:
    """Architecture of ``hybrid_fusion`` (``hybrid.hybrid_fusion`` in params.yaml)."""

    hidden: int = option(64, minimum=1, help="GRU hidden size (as experts.gru).")
    layers: int = option(1, minimum=1, help="Stacked GRU layers.")
    projection: int = option(8, minimum=1, help="Width of the projected LLM record embedding.")
    dropout: float = option(0.1, minimum=0.0, maximum=1.0, help="Dropout on the GRU state and the projected embedding.")
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig, metadata={"help": "Frozen-LLM embedding (hybrid.embedding)."})
    backbone: BackboneConfig = field(default_factory=BackboneConfig, metadata={"help": "The frozen LLM (llm.backbone)."})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (experts.train + hybrid.train)."})


class FusionNetwork(nn.Module):
    """GRU over visits ⊕ projected frozen-LLM record embedding ⊕ static inputs → logit."""

    def __init__(self, n_features: int, n_static: int, llm_dim: int, config: FusionConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, config.hidden, num_layers=config.layers, batch_first=True,
                          dropout=config.dropout if config.layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("llm_mean", torch.zeros(llm_dim))
        self.register_buffer("llm_std", torch.ones(llm_dim))
        self.project = nn.Sequential(nn.Linear(llm_dim, config.projection), nn.GELU(), nn.Dropout(config.dropout))
        self.head = nn.Linear(config.hidden + config.projection + n_static, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        states, _ = self.gru(batch["values"])
        summary = self.dropout(last_visit(states, batch["n_visits"]))
        llm = self.project((batch["llm"] - self.llm_mean) / self.llm_std)
        return {"logit": self.head(torch.cat([summary, llm, batch["static"]], dim=-1)).squeeze(-1)}


class HybridFusionExpert(TorchExpert):
    """Hybrid (a): frozen-LLM record embedding fused with a GRU (importance: gradient × input)."""

    name = "hybrid_fusion"
    config_class = FusionConfig
    importance_source = "grad_x_input"

    def __init__(self, task: str, config: Any) -> None:
        super().__init__(task, config)
        self.llm_dim: int | None = None
        self.llm_stats: tuple[np.ndarray, np.ndarray] | None = None
        self.serialize_options: dict[str, Any] = {}

    def embed(self, cohort: Cohort) -> np.ndarray:
        """(n, hidden) frozen-LLM embeddings of the cohort's record texts (cached per text)."""
        embedding = self.config.embedding
        texts = record_texts(cohort, embedding.decimals, **self.serialize_options)
        return embedder_for(self.config.backbone, embedding).embed(texts, desc=f"{self.name}: embed {cohort.name}")

    def tensors(self, cohort: Cohort) -> dict[str, torch.Tensor]:
        data = super().tensors(cohort)
        data["llm"] = torch.as_tensor(self.embed(cohort))
        return data

    def _fit(self, train: Cohort, val: Cohort | None) -> None:
        vectors = self.embed(train)
        self.llm_dim = int(vectors.shape[1])
        self.llm_stats = (vectors.mean(axis=0), vectors.std(axis=0) + 1e-6)
        super()._fit(train, val)

    def build_network(self, n_features: int, n_static: int) -> nn.Module:
        network = FusionNetwork(n_features, n_static, int(self.llm_dim), self.config)
        if self.llm_stats is not None:  # at training time; a checkpoint restores the buffers with the weights
            network.llm_mean.copy_(torch.as_tensor(self.llm_stats[0]))
            network.llm_std.copy_(torch.as_tensor(self.llm_stats[1]))
        return network

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "llm_dim": self.llm_dim}

    def _restore(self, state: dict[str, Any]) -> None:
        self.llm_dim = int(state["llm_dim"])
        super()._restore(state)
