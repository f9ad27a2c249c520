"""GRU expert: a gated recurrent network over the visits, read at the last real visit.

Architecture: the visit vectors ``x_t`` (normalised, imputed values of the ``d`` features) go through a
``layers``-layer GRU; the hidden state at the patient's last real visit, concatenated with the static
inputs (standardised age, sex), feeds a linear layer that gives the logit. Padding visits come after the
last real one, so they never reach the state that is read.

Importance — **gradient × input**: for every patient, |∂logit/∂x_tj · x_tj| summed over the real visits
``t`` and normalised over the features ``j`` (see :func:`methods.experts.trainer.gradient_x_input`). The
values are z-scores, so a feature at the train mean gets no credit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from benchmark.config import option
from methods.experts.trainer import TorchExpert, TrainConfig, last_visit


@dataclass
class GRUConfig:
    """Architecture of the GRU expert (``experts.gru`` in params.yaml)."""

    hidden: int = option(64, minimum=1, help="GRU hidden size.")
    layers: int = option(1, minimum=1, help="Stacked GRU layers.")
    dropout: float = option(0.1, minimum=0.0, maximum=1.0, help="Dropout on the last hidden state (and between GRU layers).")
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (experts.train)."})


class GRUNetwork(nn.Module):
    """GRU over visits + static inputs → logit."""

    def __init__(self, n_features: int, n_static: int, config: GRUConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, config.hidden, num_layers=config.layers, batch_first=True,
                          dropout=config.dropout if config.layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden + n_static, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        states, _ = self.gru(batch["values"])
        summary = self.dropout(last_visit(states, batch["n_visits"]))
        return {"logit": self.head(torch.cat([summary, batch["static"]], dim=-1)).squeeze(-1)}


class GRUExpert(TorchExpert):
    """The GRU expert (importance: gradient × input)."""

    name, config_class, network_class = "gru", GRUConfig, GRUNetwork
    importance_source = "grad_x_input"
