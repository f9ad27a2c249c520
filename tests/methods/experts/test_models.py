"""Every expert: output shapes, importance distributions, determinism, checkpoints, feature mismatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.experts import EXPERTS, ExpertError, build_expert, load_expert
from tests.methods.experts.conftest import MODELS, tiny_config


@pytest.fixture(scope="module")
def fitted(icu_splits):
    """Each model fitted once (2 epochs) on the small ICU cohort's mortality task."""
    train, val, _ = icu_splits
    return {m: build_expert(m, "mortality", tiny_config(m)).fit(train, val) for m in MODELS}


def test_registry_lists_the_six_models():
    assert sorted(EXPERTS) == sorted(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_probabilities_have_one_value_per_patient_in_unit_interval(fitted, icu_splits, model):
    test = icu_splits[2]
    p = fitted[model].predict_proba(test)
    assert p.shape == (len(test),)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert p.std() > 0, "a model that outputs one constant for everyone has not read its inputs"


@pytest.mark.parametrize("model", MODELS)
def test_importance_rows_are_distributions_over_features(fitted, icu_splits, model):
    test = icu_splits[2]
    w = fitted[model].feature_importance(test)
    assert w.shape == (len(test), len(test.features))
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    assert not np.allclose(w, w[0]), "importance should differ between patients"


@pytest.mark.parametrize("model", MODELS)
def test_same_seed_gives_identical_models(icu_splits, model):
    train, val, test = icu_splits
    a = build_expert(model, "mortality", tiny_config(model, seed=3)).fit(train, val)
    b = build_expert(model, "mortality", tiny_config(model, seed=3)).fit(train, val)
    np.testing.assert_array_equal(a.predict_proba(test), b.predict_proba(test))
    np.testing.assert_array_equal(a.feature_importance(test), b.feature_importance(test))


@pytest.mark.parametrize("model", MODELS[1:])
def test_different_seeds_give_different_weights(icu_splits, model):
    train, val, test = icu_splits
    a = build_expert(model, "mortality", tiny_config(model, seed=1)).fit(train, val)
    b = build_expert(model, "mortality", tiny_config(model, seed=2)).fit(train, val)
    assert not np.array_equal(a.predict_proba(test), b.predict_proba(test))


@pytest.mark.parametrize("model", MODELS)
def test_checkpoint_round_trip(fitted, icu_splits, model, tmp_path):
    test = icu_splits[2]
    expert = fitted[model]
    path = expert.save(tmp_path / "model.pt")
    loaded = load_expert(path)
    assert type(loaded) is type(expert) and loaded.task == "mortality" and loaded.features == expert.features
    np.testing.assert_allclose(loaded.predict_proba(test), expert.predict_proba(test), rtol=0, atol=1e-12)
    np.testing.assert_allclose(loaded.feature_importance(test), expert.feature_importance(test), rtol=0, atol=1e-12)
    assert loaded.summary == pytest.approx(expert.summary)


@pytest.mark.parametrize("model", MODELS)
def test_checkpoint_on_a_cohort_with_other_features_fails_clearly(fitted, small_ward, model, tmp_path):
    path = fitted[model].save(tmp_path / "model.pt")
    loaded = load_expert(path)
    with pytest.raises(ExpertError) as error:
        loaded.predict_proba(small_ward)
    message = str(error.value)
    assert str(path) in message and "6 features" in message and "14 features" in message
    assert "Heart Rate" in message and "retrain" in message
    with pytest.raises(ExpertError):
        loaded.feature_importance(small_ward)


def test_reordered_features_are_a_mismatch_too(fitted, icu_splits):
    import dataclasses

    test = icu_splits[2]
    swapped = dataclasses.replace(test, features=test.features[::-1], values=test.values[:, :, ::-1].copy())
    with pytest.raises(ExpertError, match="trained on 6 features"):
        fitted["gru"].predict_proba(swapped)


def test_unfitted_expert_refuses_to_predict_or_save(icu_splits, tmp_path):
    expert = build_expert("gru", "mortality", tiny_config("gru"))
    with pytest.raises(ExpertError, match="not been fitted"):
        expert.predict_proba(icu_splits[2])
    with pytest.raises(ExpertError, match="not been fitted"):
        expert.save(tmp_path / "x.pt")


def test_loading_a_foreign_file_names_it(tmp_path):
    bad = tmp_path / "not_a_checkpoint.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ExpertError, match="not_a_checkpoint.pt"):
        load_expert(bad)
    with pytest.raises(ExpertError, match="not found"):
        load_expert(tmp_path / "missing.pt")


def test_unknown_task_is_rejected(icu_splits):
    train, val, _ = icu_splits
    with pytest.raises(ExpertError, match="no task 'sepsis'"):
        build_expert("gru", "sepsis", tiny_config("gru")).fit(train, val)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(icu_splits):
    train, val, _ = icu_splits
    with pytest.raises(ExpertError, match="CUDA is not available"):
        build_expert("gru", "mortality", tiny_config("gru", device="cuda")).fit(train, val)
