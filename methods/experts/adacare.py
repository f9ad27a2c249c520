"""AdaCare expert (Ma et al., AAAI 2020): multi-scale dilated convolutions and feature recalibration.

Architecture (after the paper): three causal 1-D convolutions over time with kernel ``kernel`` and
dilations ``dilations`` (1, 3, 5: short- and long-term variation of every biomarker) extract multi-scale
features from the visit vectors. Two squeeze-and-excitation *recalibration* modules rescale
(a) the convolutional features (sigmoid gates) and (b) the raw input features (``sparsemax`` gates by
default, as in the paper: a sparse distribution over the biomarkers). Both squeezes are *time-aware*:
at visit ``t`` they read the mean of the visits up to ``t``. The recalibrated features feed a GRU whose
state at the last real visit, with the static inputs (standardised age, sex), gives the logit.

Importance — **recalibration scales**: the input recalibration gates ``z_tj`` (one per visit and
feature) averaged over the patient's real visits. With ``sparsemax`` each ``z_t`` is already a
distribution over features (rows sum to 1); with ``sigmoid`` the average is normalised over features.
Sparsemax gives exact zeros, so low-ranked features can tie (the ranking then keeps feature order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from benchmark.config import option
from methods.experts.trainer import TorchExpert, TrainConfig, last_visit


@dataclass
class AdaCareConfig:
    """Architecture of the AdaCare expert (``experts.adacare`` in params.yaml)."""

    hidden: int = option(64, minimum=1, help="GRU hidden size.")
    conv_channels: int = option(32, minimum=1, help="Output channels of each dilated convolution.")
    kernel: int = option(2, minimum=1, help="Convolution kernel size (over visits).")
    dilations: list[int] = option([1, 3, 5], help="Dilation of each convolution (one convolution per entry).")
    reduction: int = option(4, minimum=1, help="Squeeze-excitation reduction ratio of the convolutional recalibration.")
    input_reduction: int = option(1, minimum=1, help="Reduction ratio of the input recalibration (few features: keep 1).")
    input_gate: Literal["sparsemax", "sigmoid"] = option("sparsemax", help="Activation of the input recalibration.")
    dropout: float = option(0.3, minimum=0.0, maximum=1.0, help="Dropout on the GRU state before the output layer.")
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (experts.train)."})


def sparsemax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Sparsemax (Martins & Astudillo, 2016): the Euclidean projection of ``scores`` onto the simplex."""
    ordered, _ = torch.sort(scores, dim=dim, descending=True)
    rank = torch.arange(1, scores.size(dim) + 1, device=scores.device, dtype=scores.dtype)
    shape = [1] * scores.dim()
    shape[dim] = -1
    rank = rank.view(shape)
    cumulative = ordered.cumsum(dim) - 1
    support = (rank * ordered > cumulative).to(scores.dtype)
    k = support.sum(dim, keepdim=True).clamp(min=1)
    tau = cumulative.gather(dim, k.long() - 1) / k
    return torch.clamp(scores - tau, min=0)


class Recalibration(nn.Module):
    """Time-aware squeeze-and-excitation: gates from the running mean of the visits so far."""

    def __init__(self, channels: int, reduction: int, gate: str) -> None:
        super().__init__()
        inner = max(1, channels // max(1, reduction))
        self.squeeze = nn.Linear(channels, inner)
        self.excite = nn.Linear(inner, channels)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.arange(1, x.size(1) + 1, device=x.device, dtype=x.dtype).view(1, -1, 1)
        running_mean = x.cumsum(1) / steps
        scores = self.excite(torch.relu(self.squeeze(running_mean)))
        gates = sparsemax(scores) if self.gate == "sparsemax" else torch.sigmoid(scores)
        return x * gates, gates


class AdaCareNetwork(nn.Module):
    """Dilated causal convolutions + recalibration + GRU; ``importance`` = mean input recalibration gates."""

    def __init__(self, n_features: int, n_static: int, config: AdaCareConfig) -> None:
        super().__init__()
        self.kernel = config.kernel
        self.dilations = list(config.dilations)
        self.convs = nn.ModuleList(nn.Conv1d(n_features, config.conv_channels, config.kernel, dilation=d)
                                   for d in self.dilations)
        conv_width = config.conv_channels * len(self.dilations)
        self.conv_recalibration = Recalibration(conv_width, config.reduction, "sigmoid")
        self.input_recalibration = Recalibration(n_features, config.input_reduction, config.input_gate)
        self.gru = nn.GRU(conv_width + n_features, config.hidden, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden + n_static, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, visits = batch["values"], batch["visit_mask"]
        channels = x.transpose(1, 2)  # (b, d, T)
        multi_scale = [conv(nn.functional.pad(channels, ((self.kernel - 1) * d, 0)))  # causal: left padding
                       for conv, d in zip(self.convs, self.dilations, strict=True)]
        conv = torch.relu(torch.cat(multi_scale, dim=1)).transpose(1, 2)  # (b, T, channels)
        conv, _ = self.conv_recalibration(conv)
        inputs, gates = self.input_recalibration(x)
        states, _ = self.gru(torch.cat([conv, inputs], dim=-1))
        summary = self.dropout(last_visit(states, batch["n_visits"]))
        logit = self.head(torch.cat([summary, batch["static"]], dim=-1)).squeeze(-1)
        weights = visits.unsqueeze(-1)
        importance = (gates * weights).sum(1) / weights.sum(1).clamp(min=1)
        return {"logit": logit, "importance": importance}


class AdaCareExpert(TorchExpert):
    """The AdaCare expert (importance: input recalibration scales)."""

    name, config_class, network_class = "adacare", AdaCareConfig, AdaCareNetwork
    importance_source = "network"
