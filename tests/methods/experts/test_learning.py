"""The experts learn: well above chance on a small synthetic cohort within 20 epochs of tiny models."""

from __future__ import annotations

import pytest

from benchmark.data.synthetic import SyntheticConfig, generate
from benchmark.metrics import auroc
from methods.experts import build_expert
from tests.methods.experts.conftest import tiny_config


@pytest.fixture(scope="module")
def cohort():
    """500 ICU patients with 6 features: enough signal for a clear margin over chance."""
    config = SyntheticConfig(domain="icu", n_patients=500, n_test=150, seed=11,
                             features=["Heart Rate", "Respiratory rate", "Systolic blood pressure",
                                       "Oxygen saturation", "Temperature", "Glascow coma scale total"])
    return generate(config, name="learn_icu")


@pytest.mark.parametrize("model", ["logistic", "gru", "transformer", "retain", "adacare", "concare"])
def test_test_auroc_is_well_above_chance(cohort, model):
    train, val, test = (cohort.subset(s) for s in ("train", "val", "test"))
    expert = build_expert(model, "mortality", tiny_config(model, epochs=20, learning_rate=0.01, patience=20))
    expert.fit(train, val)
    assert auroc(test.label("mortality"), expert.predict_proba(test)) > 0.7


def test_training_improves_the_loss_and_keeps_the_best_epoch(cohort):
    train, val, _ = (cohort.subset(s) for s in ("train", "val", "test"))
    expert = build_expert("gru", "mortality", tiny_config("gru", epochs=20, learning_rate=0.01, patience=20))
    expert.fit(train, val)
    losses = [h["train_loss"] for h in expert.history]
    assert losses[-1] < losses[0]
    best = max(h["val_auprc"] for h in expert.history)
    assert expert.summary["best_val_auprc"] == pytest.approx(best)
    # The restored weights are the best epoch's: scoring val again reproduces the best AUPRC.
    from benchmark.metrics import auprc

    assert auprc(val.label("mortality"), expert.predict_proba(val)) == pytest.approx(best, abs=1e-6)
