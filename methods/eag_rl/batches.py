"""Generation-batch utilities of dynamic sampling: which groups' rewards vary, row selection, merging batches.

Batches of different generation rounds have different widths: :func:`concat_batches` re-pads prompt-aligned
tensors on the left and completion-aligned ones on the right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

_LEFT_PADDED = {"prompt_ids": "pad", "prompt_mask": 0}
_RIGHT_PADDED = {"completion_ids": "pad", "completion_mask": 0, "old_per_token_logps": 0.0,
                 "ref_per_token_logps": 0.0, "sampling_per_token_logps": 0.0, "tool_mask": 1,
                 "importance_sampling_ratio": 1.0}
_PER_ROW = ("advantages", "epsilon_high")


def varying_groups(rewards: torch.Tensor, group_size: int, tolerance: float = 1e-6) -> torch.Tensor:
    """``(n_groups,)`` bool: the group's rewards vary (``max − min > tolerance``; NaN rows ignored)."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards are not a multiple of the group size {group_size}")
    groups = rewards.detach().float().view(-1, group_size)
    valid = ~torch.isnan(groups)
    high = torch.where(valid, groups, torch.full_like(groups, -math.inf)).max(-1).values
    low = torch.where(valid, groups, torch.full_like(groups, math.inf)).min(-1).values
    return (valid.sum(-1) >= 2) & ((high - low) > tolerance)


def select_rows(batch: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """The rows ``rows`` of a generation batch (tensors with ndim ≥ 1 are indexed; scalars kept)."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim >= 1:
            out[key] = value[rows.to(value.device)]
        else:
            out[key] = value
    return out


def _pad_to(tensor: torch.Tensor, width: int, value, side: str) -> torch.Tensor:
    missing = width - tensor.size(1)
    if missing <= 0:
        return tensor
    filler = torch.full((tensor.size(0), missing), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([filler, tensor] if side == "left" else [tensor, filler], dim=1)


def concat_batches(batches: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Stack generation batches of different widths: prompt tensors re-padded left, completion ones right.

    ``num_items_in_batch`` (the token count of DAPO's normaliser) is recomputed from the merged masks.
    Keys this function does not know (e.g. multimodal inputs) are refused rather than merged wrongly.
    """
    if len(batches) == 1:
        return dict(batches[0])
    keys = list(batches[0])
    out: dict[str, Any] = {}
    for key in keys:
        values = [b[key] for b in batches]
        if key == "num_items_in_batch":
            continue
        if key in _LEFT_PADDED or key in _RIGHT_PADDED:
            side = "left" if key in _LEFT_PADDED else "right"
            fill = (_LEFT_PADDED | _RIGHT_PADDED)[key]
            fill = pad_token_id if fill == "pad" else fill
            if values[0].ndim == 2 and values[0].size(1) == 1 and key == "importance_sampling_ratio":
                out[key] = torch.cat(values)  # sequence-level ratios, (B, 1)
                continue
            width = max(v.size(1) for v in values)
            out[key] = torch.cat([_pad_to(v, width, fill, side) for v in values])
        elif key in _PER_ROW:
            out[key] = torch.cat(values)
        else:
            raise ValueError(f"dynamic sampling cannot merge the generation-batch key '{key}' "
                             f"(multimodal or tool inputs are not supported with dynamic_sampling)")
    mask = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
    out["num_items_in_batch"] = mask.sum()
    return out
