"""Both hybrids: a few training steps, probabilities, importance, checkpoints, the LLM views."""

from __future__ import annotations

import numpy as np
import pytest

from eagrl.registry import load_model, model_class
from methods.hybrid import HYBRIDS
from methods.hybrid.embedding import _EMBEDDERS
from tests.methods.hybrid.conftest import tiny_config

MODELS = sorted(HYBRIDS)


@pytest.fixture(scope="module")
def trained(small_icu, tiny_backbone, tmp_path_factory):
    """Each hybrid trained for 2 epochs on the small ICU cohort (mortality), saved once."""
    train, val = small_icu.subset("train"), small_icu.subset("val")
    out = {}
    for name in MODELS:
        model = HYBRIDS[name]("mortality", tiny_config(name, tiny_backbone)).fit(train, val)
        out[name] = (model, model.save(tmp_path_factory.mktemp(name) / "model.pt"))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_trains_and_predicts_probabilities(trained, small_icu, name):
    model, _ = trained[name]
    test = small_icu.subset("test")
    p = model.predict_proba(test)
    assert p.shape == (len(test),) and np.all((p >= 0) & (p <= 1)) and np.isfinite(p).all()
    assert p.std() > 0  # not a constant
    assert model.summary["epochs_run"] == 2 and len(model.history) == 2


@pytest.mark.parametrize("name", MODELS)
def test_importance_rows_are_distributions(trained, small_icu, name):
    model, _ = trained[name]
    test = small_icu.subset("test")
    w = model.feature_importance(test)
    assert w.shape == (len(test), len(small_icu.features)) and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    assert not np.allclose(w, 1.0 / w.shape[1])  # not the uniform fallback


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip_through_the_registry(trained, small_icu, name):
    model, path = trained[name]
    assert model_class(name) is HYBRIDS[name]
    loaded = load_model(path)
    assert type(loaded) is HYBRIDS[name] and loaded.task == "mortality"
    test = small_icu.subset("test")
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    np.testing.assert_array_equal(loaded.feature_importance(test), model.feature_importance(test))


def test_retriever_keeps_its_knowledge_and_predicts_without_the_llm(trained, small_icu, fresh_embedders):
    model, path = trained["hybrid_retriever"]
    assert len(model.descriptions) == len(small_icu.features) and all(isinstance(t, str) for t in model.descriptions)
    assert model.knowledge.shape == (len(small_icu.features), 32)
    loaded = load_model(path)
    assert loaded.descriptions == model.descriptions
    np.testing.assert_array_equal(loaded.knowledge, model.knowledge)
    loaded.predict_proba(small_icu.subset("test"))
    assert not _EMBEDDERS  # prediction never loaded the backbone


def test_retriever_knowledge_reaches_the_prediction(trained, small_icu):
    model, _ = trained["hybrid_retriever"]
    test = small_icu.subset("test")
    before = model.predict_proba(test)
    model.network.knowledge.mul_(-1.0)
    try:
        assert not np.allclose(model.predict_proba(test), before)
    finally:
        model.network.knowledge.mul_(-1.0)


def test_fusion_reads_the_text_of_the_cohort_it_is_given(trained, small_icu):
    model, _ = trained["hybrid_fusion"]
    test = small_icu.subset("test")
    before = model.predict_proba(test)
    model.serialize_options = {"shuffle_fraction": 1.0, "seed": 3}
    try:
        shuffled = model.predict_proba(test)
    finally:
        model.serialize_options = {}
    assert not np.allclose(shuffled, before)  # the text view changed, the arrays did not
    np.testing.assert_array_equal(model.predict_proba(test), before)
