"""RETAIN expert (Choi et al., NeurIPS 2016): reverse-time attention over visits and over variables.

Architecture: each visit is embedded linearly, ``v_t = W_emb x_t`` (no bias, so contributions are
exact). Two GRUs read the embedded visits in *reverse* time order (last real visit first): one gives the
visit-level attention ``α_t = softmax_t(w_α · g_t)`` over the real visits, the other the variable-level
gates ``β_t = tanh(W_β h_t)``. The context ``c = Σ_t α_t (β_t ⊙ v_t)`` and the static inputs
(standardised age, sex) give the logit ``w · c + w_s · s + b``.

Importance — **α × β contributions** (RETAIN's own interpretation): the logit decomposes exactly into
per-(visit, feature) terms ``ω_tj = α_t · w · (β_t ⊙ W_emb[:, j]) · x_tj``; a feature's importance is
``|Σ_t ω_tj|`` (its net push on the logit over the stay), normalised over the features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from benchmark.config import option
from methods.experts.trainer import TorchExpert, TrainConfig


@dataclass
class RETAINConfig:
    """Architecture of the RETAIN expert (``experts.retain`` in params.yaml)."""

    embedding: int = option(64, minimum=1, help="Visit embedding size m (W_emb is m × d).")
    hidden: int = option(64, minimum=1, help="Hidden size of the α and β GRUs.")
    dropout: float = option(0.5, minimum=0.0, maximum=1.0, help="Dropout on the embeddings fed to the GRUs and on the context.")
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (experts.train)."})


def reverse_index(n_visits: torch.Tensor, steps: int) -> torch.Tensor:
    """(b, T) index that reverses each patient's real visits and leaves padding in place (an involution)."""
    t = torch.arange(steps, device=n_visits.device).unsqueeze(0)
    n = n_visits.unsqueeze(1)
    return torch.where(t < n, n - 1 - t, t)


def gather_time(sequence: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``sequence`` (b, T, h) reordered along time by ``index`` (b, T)."""
    return sequence.gather(1, index.unsqueeze(-1).expand(-1, -1, sequence.size(-1)))


class RETAINNetwork(nn.Module):
    """RETAIN with a static term; ``importance`` is |Σ_t ω_tj| (exact contributions in eval mode)."""

    def __init__(self, n_features: int, n_static: int, config: RETAINConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, config.embedding, bias=False)
        self.dropout = nn.Dropout(config.dropout)
        self.gru_alpha = nn.GRU(config.embedding, config.hidden, batch_first=True)
        self.gru_beta = nn.GRU(config.embedding, config.hidden, batch_first=True)
        self.alpha = nn.Linear(config.hidden, 1)
        self.beta = nn.Linear(config.hidden, config.embedding)
        self.output = nn.Linear(config.embedding, 1)
        self.static = nn.Linear(n_static, 1, bias=False) if n_static else None

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, visits = batch["values"], batch["visit_mask"]
        v = self.embed(x)  # (b, T, m)
        order = reverse_index(batch["n_visits"], x.size(1))
        reversed_v = self.dropout(gather_time(v, order))
        g, _ = self.gru_alpha(reversed_v)
        h, _ = self.gru_beta(reversed_v)
        g, h = gather_time(g, order), gather_time(h, order)  # back to chronological order
        scores = self.alpha(g).squeeze(-1).masked_fill(visits == 0, float("-inf"))
        alpha = torch.softmax(scores, dim=1)  # (b, T)
        beta = torch.tanh(self.beta(h))  # (b, T, m)
        context = (alpha.unsqueeze(-1) * beta * v).sum(1)
        logit = self.output(self.dropout(context)).squeeze(-1)
        if self.static is not None:
            logit = logit + self.static(batch["static"]).squeeze(-1)
        # ω_tj = α_t · (w ⊙ β_t) · W_emb[:, j] · x_tj, summed over visits.
        weighted = alpha.unsqueeze(-1) * beta * self.output.weight.view(1, 1, -1)  # (b, T, m)
        omega = (weighted @ self.embed.weight) * x * visits.unsqueeze(-1)  # (b, T, d)
        return {"logit": logit, "importance": omega.sum(1).abs(), "alpha": alpha}


class RETAINExpert(TorchExpert):
    """The RETAIN expert (importance: α × β contributions)."""

    name, config_class, network_class = "retain", RETAINConfig, RETAINNetwork
    importance_source = "network"
