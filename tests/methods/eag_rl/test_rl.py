"""The stage's seeds block: each seed's means aggregated, and where each seed's predictions are."""

from __future__ import annotations

import pytest


def test_seed_block_aggregates_and_points_at_every_seeds_predictions():
    from methods.eag_rl.rl import seed_block

    results = {seed: {"auroc": {"mean": a}, "auprc": {"mean": b}, "parse_failure_rate": f}
               for seed, a, b, f in [(42, 0.6, 0.3, 0.0), (43, 0.7, 0.4, 0.1), (44, 0.8, 0.2, 0.05)]}
    block = seed_block(results, [42, 43, 44])
    assert block["n_seeds"] == 3
    auroc, auprc = block["metrics"]["auroc"], block["metrics"]["auprc"]
    assert auroc["mean"] == pytest.approx(0.7) and auroc["std"] == pytest.approx(0.1)
    assert auprc["mean"] == pytest.approx(0.3) and auprc["std"] == pytest.approx(0.1)
    assert auroc["per_seed"] == {42: 0.6, 43: 0.7, 44: 0.8}
    assert block["predictions"] == {"42": "predictions.csv", "43": "seed43/predictions.csv",
                                    "44": "seed44/predictions.csv"}
