import pytest
import torch

from methods.eag_rl.clipping import adaptive_epsilon, span_mean_entropy


def test_span_mean_uses_only_span_tokens():
    entropies = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    span = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]])
    h = span_mean_entropy(entropies, span)
    assert h[0].item() == pytest.approx(2.5)
    assert torch.isnan(h[1])


def test_bounds_and_linear_map_within_group():
    # Group of 3: span entropies 1, 2, 3 -> 0.2, 0.3, 0.4
    entropies = torch.tensor([[1.0], [2.0], [3.0]])
    span = torch.ones(3, 1)
    eps = adaptive_epsilon(entropies, span, group_size=3)
    assert torch.allclose(eps, torch.tensor([0.2, 0.3, 0.4]))


def test_constant_group_gets_midpoint_and_unparsable_gets_min():
    entropies = torch.tensor([[1.0], [1.0], [7.0], [9.0]])
    span = torch.tensor([[1], [1], [1], [0]])
    eps = adaptive_epsilon(entropies, span, group_size=2)
    assert torch.allclose(eps, torch.tensor([0.3, 0.3, 0.3, 0.2]))


def test_normalisation_scope_group_vs_batch():
    entropies = torch.tensor([[1.0], [2.0], [10.0], [11.0]])
    span = torch.ones(4, 1)
    by_group = adaptive_epsilon(entropies, span, group_size=2, scope="group")
    by_batch = adaptive_epsilon(entropies, span, group_size=2, scope="batch")
    assert torch.allclose(by_group, torch.tensor([0.2, 0.4, 0.2, 0.4]))
    assert torch.allclose(by_batch, torch.tensor([0.2, 0.2 + 0.2 / 10, 0.2 + 0.2 * 9 / 10, 0.4]))
    assert by_batch.min() >= 0.2 and by_batch.max() <= 0.4


def test_group_size_must_divide_batch():
    with pytest.raises(ValueError, match="multiple of the group size"):
        adaptive_epsilon(torch.ones(3, 2), torch.ones(3, 2), group_size=2)
