"""Building blocks: row normalisation, sparsemax, RETAIN's exact decomposition, DeCov, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.experts.adacare import sparsemax
from methods.experts.base import normalise_rows, static_matrix
from methods.experts.concare import ConCareConfig, ConCareNetwork, decov_loss
from methods.experts.retain import RETAINConfig, RETAINNetwork, reverse_index
from methods.experts.trainer import batches, cohort_tensors, last_visit


def test_normalise_rows_makes_distributions_and_uniform_for_empty_rows():
    out = normalise_rows(np.array([[1.0, -3.0, 0.0], [0.0, 0.0, 0.0], [np.nan, 2.0, 2.0]]))
    np.testing.assert_allclose(out, [[0.25, 0.75, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.5, 0.5]])


def test_sparsemax_is_a_sparse_distribution():
    z = torch.tensor([[3.0, 1.0, 0.2, -1.0], [0.1, 0.1, 0.1, 0.1]])
    p = sparsemax(z)
    np.testing.assert_allclose(p.sum(-1).numpy(), 1.0, atol=1e-6)
    assert (p >= 0).all() and p[0, 0] == 1.0 and (p[0, 1:] == 0).all()
    np.testing.assert_allclose(p[1].numpy(), 0.25, atol=1e-6)


def test_static_inputs_standardise_age_only(small_icu):
    static = static_matrix(small_icu, age_mean=60.0, age_std=10.0)
    np.testing.assert_allclose(static[:, 0], (small_icu.static[:, 0] - 60.0) / 10.0, rtol=1e-5)
    np.testing.assert_array_equal(static[:, 1], small_icu.static[:, 1])


def test_retain_contributions_add_up_to_the_logit(small_icu):
    torch.manual_seed(0)
    network = RETAINNetwork(len(small_icu.features), 2, RETAINConfig(embedding=8, hidden=8)).eval()
    batch = cohort_tensors(small_icu.select(np.arange(20)), 65.0, 15.0)
    with torch.no_grad():
        out = network(batch)
        x, visits = batch["values"], batch["visit_mask"]
        omega = (out["alpha"].unsqueeze(-1) * _beta(network, batch) * network.output.weight.view(1, 1, -1)
                 ) @ network.embed.weight * x * visits.unsqueeze(-1)
        rest = network.output.bias + network.static(batch["static"]).squeeze(-1)
    np.testing.assert_allclose((omega.sum((1, 2)) + rest).numpy(), out["logit"].numpy(), atol=1e-5)
    np.testing.assert_allclose(omega.sum(1).abs().numpy(), out["importance"].numpy(), atol=1e-6)


def _beta(network: RETAINNetwork, batch: dict) -> torch.Tensor:
    from methods.experts.retain import gather_time

    v = network.embed(batch["values"])
    order = reverse_index(batch["n_visits"], v.size(1))
    h, _ = network.gru_beta(gather_time(v, order))
    return torch.tanh(network.beta(gather_time(h, order)))


def test_reverse_index_reverses_real_visits_only():
    index = reverse_index(torch.tensor([3, 1, 4]), 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]


def test_decov_is_zero_for_uncorrelated_dimensions_and_positive_otherwise():
    independent = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]).unsqueeze(1)
    assert float(decov_loss(independent)) == pytest.approx(0.0, abs=1e-7)
    correlated = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [2.0, 2.0], [-2.0, -2.0]]).unsqueeze(1)
    assert float(decov_loss(correlated)) > 1.0


def test_padding_visits_do_not_change_concare(small_icu):
    """Values written into padding visits must not move the output (attention masks them, GRUs are causal)."""
    torch.manual_seed(0)
    network = ConCareNetwork(len(small_icu.features), 2, ConCareConfig(hidden=8, heads=2, feedforward=8)).eval()
    part = small_icu.select(np.flatnonzero(small_icu.n_visits < small_icu.values.shape[1])[:10])
    batch = cohort_tensors(part, 65.0, 15.0)
    noisy = dict(batch, values=batch["values"] + 5.0 * (1 - batch["visit_mask"]).unsqueeze(-1))
    with torch.no_grad():
        a, b = network(batch), network(noisy)
    torch.testing.assert_close(a["logit"], b["logit"])
    torch.testing.assert_close(a["importance"], b["importance"])


def test_last_visit_picks_each_patients_last_real_visit():
    sequence = torch.arange(2 * 3 * 1, dtype=torch.float32).view(2, 3, 1)
    assert last_visit(sequence, torch.tensor([2, 3])).squeeze(-1).tolist() == [1.0, 5.0]


def test_batches_never_leave_a_single_patient():
    parts = batches(65, 32, torch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [32, 33]
    assert sorted(torch.cat(parts).tolist()) == list(range(65))
