"""The regress section of params.yaml as committed."""

from __future__ import annotations

from eagrl.ops.regress_compare import compare
from eagrl.ops.regress_config import regress_config


def test_the_default_config_ignores_timings_but_not_scores():
    """Wall-clock columns of result rows differ on every run; a score beside them must still be compared."""
    config = regress_config("params.yaml")
    committed = {"llm.json": [{"method": "Vanilla", "auroc": 0.5, "seconds": 2.73}],
                 "experts.json": [{"model": "gru", "auroc": 0.6, "train_seconds": 0.1}]}
    fresh = {"llm.json": [{"method": "Vanilla", "auroc": 0.5, "seconds": 2.85}],
             "experts.json": [{"model": "gru", "auroc": 0.6, "train_seconds": 0.0}]}
    assert {d.status for d in compare(committed, fresh, config)} == {"ok"}
    fresh["llm.json"][0]["auroc"] = 0.51
    assert [d.key for d in compare(committed, fresh, config) if d.status == "changed"] == ["llm.json:Vanilla/auroc"]
