"""Generation-batch utilities of dynamic sampling: varying groups and merging batches of different widths."""

from __future__ import annotations

import pytest
import torch

from methods.eag_rl.batches import concat_batches, varying_groups


def test_varying_groups_flags_constant_groups():
    rewards = torch.tensor([0.1, 0.1, 0.1, 0.5, 0.2, 0.2, float("nan"), 0.2])
    assert varying_groups(rewards, 2).tolist() == [False, True, False, False]
    assert varying_groups(rewards, 4).tolist() == [True, False]


def test_concat_batches_repads_left_and_right():
    a = {"prompt_ids": torch.tensor([[5, 6]]), "prompt_mask": torch.tensor([[1, 1]]),
         "completion_ids": torch.tensor([[7]]), "completion_mask": torch.tensor([[1]]),
         "advantages": torch.tensor([1.0]), "num_items_in_batch": torch.tensor(1)}
    b = {"prompt_ids": torch.tensor([[4, 5, 6]]), "prompt_mask": torch.tensor([[1, 1, 1]]),
         "completion_ids": torch.tensor([[8, 9]]), "completion_mask": torch.tensor([[1, 1]]),
         "advantages": torch.tensor([-1.0]), "num_items_in_batch": torch.tensor(2)}
    merged = concat_batches([a, b], pad_token_id=0)
    assert merged["prompt_ids"].tolist() == [[0, 5, 6], [4, 5, 6]]
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[7, 0], [8, 9]]
    assert merged["completion_mask"].tolist() == [[1, 0], [1, 1]]
    assert int(merged["num_items_in_batch"]) == 3
    with pytest.raises(ValueError, match="pixel_values"):
        concat_batches([{**a, "pixel_values": torch.zeros(1, 3)}, {**b, "pixel_values": torch.zeros(1, 3)}], 0)
