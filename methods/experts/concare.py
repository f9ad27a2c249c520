"""ConCare expert (Ma et al., AAAI 2020): per-feature channels, feature-level self-attention, DeCov.

The expert the EAG-RL paper uses. Written from the paper's description (§ Methodology) and checked
against the structure of PyHealth's implementation (read for reference, not copied; the two are compared
by ``benchmarks/external/pyhealth_concare.py``):

1. **Channel-wise GRUs** — every dynamic feature ``j`` has its own GRU (input size 1, ``hidden``
   units) over the visits, so each biomarker gets its own trajectory embedding ``h^j_t``.
2. **Time-aware attention per channel** — the last real visit's state is the query. For visit ``t``:
   ``s_t = σ(q·k_t)`` with ``q = W_t h^j_last``, ``k_t = W_x h^j_t`` (``time_hidden`` wide) and the
   score ``e_t = ReLU( s_t / (σ(r_j) · log(e + (1 − s_t)) · Δt) )`` where ``Δt`` is the time from
   visit ``t`` to the last visit plus one (days; the paper's decay with elapsed time, with a learned
   rate ``r_j`` per channel). ``softmax_t(e)`` pools the channel into one vector per feature.
3. **Demographic embedding** — ``tanh(W_s s)`` of the static inputs (standardised age, sex) is appended
   as a ``(d+1)``-th token.
4. **Multi-head self-attention across features** (``heads`` heads, pre-norm residual block, then a
   position-wise feed-forward block) gives every feature a context-aware embedding. The **DeCov loss**
   (Cogswell et al., 2016) on the attention output — for every token, half the squared Frobenius norm of
   the off-diagonal batch covariance of its ``hidden`` dimensions — discourages redundant dimensions; it
   is added to the loss with weight ``decov_weight`` (10 in the paper group's training code).
5. **Final feature-level attention** — the demographic token's embedding is the query over all ``d+1``
   tokens (``e_i = (W_k c_i)·(W_q c_demo)``); the attention-weighted sum of ``W_v c_i`` feeds a
   two-layer output network.

One deliberate deviation, switchable: ``scaled_final_attention`` (default on) divides the step-5 scores
by ``sqrt(hidden)`` as in scaled dot-product attention. The authors' scores are unscaled; at
``hidden = 128`` they saturate the softmax (mean top weight 0.5-0.9, the other features ~0), so the
ranking beyond the first feature is noise. On 4 folds of synthetic_icu's train+val patients (mortality;
the test split untouched) scaling raised AUROC from 0.742 to 0.789 and the top-3 recall of the
ground-truth salient features from 0.46 to 0.64. Set it to false for the paper's exact form.

Importance — **ConCare's final attention**: the weights of step 5 on the ``d`` feature tokens,
renormalised to sum to 1 after dropping the demographic token (the paper reads this as "how much the
model relied on each feature for this patient"). Its share before renormalisation is not reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from benchmark.config import option
from methods.experts.trainer import TorchExpert, TrainConfig, last_visit


@dataclass
class ConCareConfig:
    """Architecture of the ConCare expert (``experts.concare`` in params.yaml)."""

    hidden: int = option(128, minimum=1, help="Width of every channel GRU and of the feature tokens (paper: 128).")
    heads: int = option(4, minimum=1, help="Heads of the self-attention across features (paper: 4); divides hidden.")
    feedforward: int = option(64, minimum=1, help="Inner width of the position-wise feed-forward block.")
    time_hidden: int = option(8, minimum=1, help="Width of the time-aware attention's query/key projections.")
    dropout: float = option(0.3, minimum=0.0, maximum=1.0, help="Dropout on the feature tokens, attention and residual branches.")
    decov_weight: float = option(10.0, minimum=0, help="Weight of the DeCov loss added to the cross-entropy.")
    scaled_final_attention: bool = option(True, help="Divide the final attention scores by sqrt(hidden) "
                                          "(not in the paper, whose dot-product scores saturate the softmax; "
                                          "false = the paper's exact form).")
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Optimisation (experts.train)."})


def decov_loss(tokens: torch.Tensor) -> torch.Tensor:
    """DeCov over a batch of token embeddings (b, n_tokens, h): Σ_tokens ½(‖C‖²_F − ‖diag C‖²)."""
    if tokens.size(0) < 2:
        return tokens.new_zeros(())
    centred = tokens - tokens.mean(0, keepdim=True)
    covariance = torch.einsum("bih,bik->ihk", centred, centred) / (tokens.size(0) - 1)
    diagonal = torch.diagonal(covariance, dim1=-2, dim2=-1)
    return 0.5 * (covariance.pow(2).sum() - diagonal.pow(2).sum())


class TimeAwareAttention(nn.Module):
    """Step 2: one time-aware attention per feature channel, all channels computed at once."""

    def __init__(self, n_features: int, hidden: int, width: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.empty(n_features, hidden, width))
        self.key = nn.Parameter(torch.empty(n_features, hidden, width))
        self.rate = nn.Parameter(torch.full((n_features,), 0.8))
        bound = 1.0 / math.sqrt(hidden)
        nn.init.uniform_(self.query, -bound, bound)
        nn.init.uniform_(self.key, -bound, bound)

    def forward(self, states: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``states`` (b, T, d, h) → pooled (b, d, h) and attention (b, T, d)."""
        last = last_visit(states.flatten(2), batch["n_visits"]).view(states.size(0), states.size(2), -1)
        q = torch.einsum("bdh,dha->bda", last, self.query)
        k = torch.einsum("btdh,dha->btda", states, self.key)
        similarity = torch.sigmoid(torch.einsum("bda,btda->btd", q, k))
        times = batch["times"]
        last_time = last_visit(times.unsqueeze(-1), batch["n_visits"])  # (b, 1)
        elapsed = (last_time - times).clamp(min=0) + 1.0  # (b, T): 1 at the last visit
        denominator = torch.sigmoid(self.rate).view(1, 1, -1) * torch.log(math.e + (1 - similarity)) * elapsed.unsqueeze(-1)
        scores = torch.relu(similarity / denominator)
        scores = scores.masked_fill(batch["visit_mask"].unsqueeze(-1) == 0, float("-inf"))
        attention = torch.softmax(scores, dim=1)
        return torch.einsum("btd,btdh->bdh", attention, states), attention


class FeatureSelfAttention(nn.Module):
    """Step 4's multi-head attention across feature tokens; also returns the DeCov loss of its output."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"experts.concare.hidden ({hidden}) must be divisible by heads ({heads})")
        self.heads, self.width = heads, hidden // heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.output = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, h = tokens.shape
        split = lambda x: x.view(b, n, self.heads, self.width).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(tokens)), split(self.key(tokens)), split(self.value(tokens))
        weights = self.dropout(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.width), dim=-1))
        mixed = (weights @ v).transpose(1, 2).reshape(b, n, h)
        return self.output(mixed), decov_loss(mixed)


class ConCareNetwork(nn.Module):
    """ConCare (steps 1-5 of the module docstring); ``importance`` is the final attention on features."""

    def __init__(self, n_features: int, n_static: int, config: ConCareConfig) -> None:
        super().__init__()
        self.config = config
        self.channels = nn.ModuleList(nn.GRU(1, config.hidden, batch_first=True) for _ in range(n_features))
        self.time_attention = TimeAwareAttention(n_features, config.hidden, config.time_hidden)
        self.demographics = nn.Linear(n_static, config.hidden) if n_static else None
        self.token_dropout = nn.Dropout(config.dropout)
        self.norm_attention = nn.LayerNorm(config.hidden)
        self.self_attention = FeatureSelfAttention(config.hidden, config.heads, config.dropout)
        self.norm_feedforward = nn.LayerNorm(config.hidden)
        self.feedforward = nn.Sequential(nn.Linear(config.hidden, config.feedforward), nn.ReLU(),
                                         nn.Dropout(config.dropout), nn.Linear(config.feedforward, config.hidden))
        self.residual_dropout = nn.Dropout(config.dropout)
        self.final_query = nn.Linear(config.hidden, config.hidden)
        self.final_key = nn.Linear(config.hidden, config.hidden)
        self.final_value = nn.Linear(config.hidden, config.hidden)
        self.attention_dropout = nn.Dropout(config.dropout)
        self.output = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.hidden, config.hidden), nn.ReLU(),
                                    nn.Linear(config.hidden, 1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["values"]
        d = x.size(-1)
        states = torch.stack([gru(x[:, :, j : j + 1])[0] for j, gru in enumerate(self.channels)], dim=2)  # (b, T, d, h)
        tokens, _ = self.time_attention(states, batch)  # (b, d, h)
        if self.demographics is not None:
            demo = torch.tanh(self.demographics(batch["static"])).unsqueeze(1)
        else:  # no static inputs: a constant query token keeps the final attention defined
            demo = tokens.new_zeros(tokens.size(0), 1, tokens.size(-1))
        tokens = self.token_dropout(torch.cat([tokens, demo], dim=1))  # (b, d+1, h)
        attended, decov = self.self_attention(self.norm_attention(tokens))
        contexts = tokens + self.residual_dropout(attended)
        contexts = contexts + self.residual_dropout(self.feedforward(self.norm_feedforward(contexts)))
        query = self.final_query(contexts[:, -1])  # the demographic token asks which features matter
        scores = torch.einsum("bnh,bh->bn", self.final_key(contexts), query)
        if self.config.scaled_final_attention:
            scores = scores / math.sqrt(contexts.size(-1))
        attention = torch.softmax(scores, dim=-1)  # (b, d+1)
        pooled = torch.einsum("bn,bnh->bh", self.attention_dropout(attention), self.final_value(contexts))
        logit = self.output(pooled).squeeze(-1)
        return {"logit": logit, "aux_loss": self.config.decov_weight * decov, "importance": attention[:, :d]}


class ConCareExpert(TorchExpert):
    """The ConCare expert (importance: final feature-level attention)."""

    name, config_class, network_class = "concare", ConCareConfig, ConCareNetwork
    importance_source = "network"
