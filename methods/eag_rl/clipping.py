"""The trajectory-specific upper clip bound ε(τ) of EAG-RL's stage 2.

For each sampled trajectory τ, ``H(τ)`` is the mean token entropy of the policy over the tokens of its
``<Important Features>`` span. Entropies are min–max normalised and mapped linearly into
``[ε_min, ε_max]`` (0.2 and 0.4 in the paper):

    ε(τ) = ε_min + (ε_max − ε_min) · (H(τ) − min H) / (max H − min H)

so uncertain trajectories (high entropy over the features they name) may move further, over-confident
ones are held back. The lower bound of the ratio stays ``1 − 0.2``.

Normalisation scope (``scope``): ``group`` (default) takes min and max over the trajectories sampled for
the same patient — the same set GRPO's advantages are relative to; ``batch`` takes them over the whole
generation batch. When all entropies of a scope are equal (or a scope has a single trajectory) the
normalised value is undefined; every trajectory then gets the midpoint ``(ε_min + ε_max) / 2``.
A trajectory without an ``<Important Features>`` span (unparsable) has no entropy and gets ``ε_min``,
the most conservative bound.
"""

from __future__ import annotations

from typing import Literal

import torch


def span_mean_entropy(entropies: torch.Tensor, span_mask: torch.Tensor) -> torch.Tensor:
    """(B,) mean entropy over each row's span tokens; NaN where a row has no span token."""
    span = span_mask.to(entropies.dtype)
    count = span.sum(-1)
    total = (entropies * span).sum(-1)
    return torch.where(count > 0, total / count.clamp(min=1.0), torch.full_like(total, float("nan")))


def adaptive_epsilon(entropies: torch.Tensor, span_mask: torch.Tensor, group_size: int,
                     eps_min: float = 0.2, eps_max: float = 0.4,
                     scope: Literal["group", "batch"] = "group") -> torch.Tensor:
    """(B,) upper clip bounds ε(τ); rows ``[g·group_size, (g+1)·group_size)`` form group g."""
    h = span_mean_entropy(entropies.detach().float(), span_mask)
    if scope == "group":
        if h.numel() % group_size:
            raise ValueError(f"batch of {h.numel()} trajectories is not a multiple of the group size {group_size}")
        groups = h.view(-1, group_size)
    elif scope == "batch":
        groups = h.view(1, -1)
    else:
        raise ValueError(f"scope must be 'group' or 'batch', got {scope!r}")
    valid = ~torch.isnan(groups)
    low = torch.where(valid, groups, torch.full_like(groups, float("inf"))).min(-1, keepdim=True).values
    high = torch.where(valid, groups, torch.full_like(groups, float("-inf"))).max(-1, keepdim=True).values
    spread = high - low
    flat = ~(spread > 1e-8)  # constant scope, single valid value, or no valid value
    normalised = torch.where(flat, torch.full_like(groups, 0.5), (groups - low) / spread.clamp(min=1e-8))
    eps = eps_min + (eps_max - eps_min) * normalised
    eps = torch.where(valid, eps, torch.full_like(eps, eps_min))
    return eps.reshape(-1)
