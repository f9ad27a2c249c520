"""Transformer expert: self-attention across the visits of a stay.

Architecture: every visit vector ``x_t`` is projected to ``hidden`` dimensions and a sinusoidal encoding
of its visit time (days since admission, scaled by ``time_scale``) is added, so irregular gaps are seen.
``layers`` pre-norm Transformer encoder layers attend across the real visits (padding is masked out);
the outputs are mean-pooled over the real visits, concatenated with the static inputs (standardised age,
sex) and mapped to the logit.

Importance — **gradient × input**: |∂logit/∂x_tj · x_tj| summed over the real visits and normalised over
the features (see :func:`methods.experts.trainer.gradient_x_input`). Attention weights of a Transformer
are between visits, not features, so they cannot rank features; gradient × input can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from benchmark.config import option
from methods.experts.trainer import TorchExpert, TrainConfig


@dataclass
class TransformerConfig:
    """Architecture of the Transformer expert (``experts.transformer`` in params.yaml)."""

    hidden: int = option(64, minimum=1, help="Model width (d_model); must be divisible by heads.")
    heads: int = option(4, minimum=1, help="Attention heads per layer.")
    layers: int = option(2, minimum=1, help="Encoder layers.")
    feedforward: int = option(128, minimum=1, help="Width of each layer's feed-forward block.")
    dropout: float = option(0.1, minimum=0.0, maximum=1.0, help="Dropout inside the encoder and before the output layer.")
    time_scale: float = option(1.0, help="Multiplier on visit times (days) before the sinusoidal time encoding.")
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (experts.train)."})


def time_encoding(times: torch.Tensor, width: int) -> torch.Tensor:
    """(b, T, width) sinusoidal encoding of continuous times (b, T), as the Transformer's positions."""
    half = width // 2
    frequency = torch.exp(-math.log(10000.0) * torch.arange(half, device=times.device, dtype=times.dtype) / max(1, half))
    angle = times.unsqueeze(-1) * frequency
    encoding = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
    return nn.functional.pad(encoding, (0, width - encoding.size(-1)))


class TransformerNetwork(nn.Module):
    """Visit projection + time encoding → Transformer encoder → masked mean pool + static → logit."""

    def __init__(self, n_features: int, n_static: int, config: TransformerConfig) -> None:
        super().__init__()
        if config.hidden % config.heads:
            raise ValueError(f"experts.transformer.hidden ({config.hidden}) must be divisible by heads ({config.heads})")
        self.config = config
        self.project = nn.Linear(n_features, config.hidden)
        layer = nn.TransformerEncoderLayer(config.hidden, config.heads, config.feedforward, config.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden + n_static, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        visits = batch["visit_mask"]
        hidden = self.project(batch["values"]) + time_encoding(batch["times"] * self.config.time_scale, self.config.hidden)
        hidden = self.encoder(hidden, src_key_padding_mask=visits == 0)
        pooled = (hidden * visits.unsqueeze(-1)).sum(1) / visits.sum(1, keepdim=True).clamp(min=1)
        return {"logit": self.head(torch.cat([self.dropout(pooled), batch["static"]], dim=-1)).squeeze(-1)}


class TransformerExpert(TorchExpert):
    """The Transformer expert (importance: gradient × input)."""

    name, config_class, network_class = "transformer", TransformerConfig, TransformerNetwork
    importance_source = "grad_x_input"
