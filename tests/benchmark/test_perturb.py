"""Perturbations: identity at level 0, shuffles keep the multiset, noise and masking seeded and bounded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from benchmark.config import ConfigError
from benchmark.data.preprocess import normalise_and_impute
from benchmark.perturb import (
    NOISE_CLIP,
    Perturbation,
    add_noise,
    column_orders,
    mask_values,
    parse_levels,
    perturb_for_dl,
    perturb_values,
    serializer_kwargs,
    shuffle_columns,
)
from benchmark.serialize import serialize_patient


def _lines(prompt) -> list[str]:
    return [line for line in prompt.user.splitlines() if line.startswith("- ") and "(Unit:" in line
            and not line.startswith(("- Sex", "- Age"))]


def test_parse_and_condition_names():
    assert Perturbation.parse("shuffle:0.4") == Perturbation("shuffle", 0.4)
    assert Perturbation.parse("noise:0.10").condition == "noise:0.1"
    assert Perturbation.parse("mask:0.5").slug == "mask_0.5"
    for text in ("none", "shuffle:0", "noise:0.0", "mask:0"):
        assert Perturbation.parse(text).is_identity and Perturbation.parse(text).condition == "none"
    assert parse_levels(["none", "shuffle:0", "shuffle:0.2", "shuffle:0.2"]) == [Perturbation(),
                                                                                Perturbation("shuffle", 0.2)]
    for bad in ("shuffle", "blur:0.2", "mask:1.5", "noise:-1", "shuffle:x"):
        with pytest.raises(ConfigError):
            Perturbation.parse(bad)


@pytest.mark.parametrize("condition", ["none", "shuffle:0", "noise:0", "mask:0"])
def test_level_zero_is_the_identity(small_icu, condition):
    out = perturb_for_dl(small_icu, condition, seed=3)
    for name in ("raw", "values", "mask"):
        np.testing.assert_array_equal(getattr(out, name), getattr(small_icu, name))
    assert perturb_values(small_icu, condition, seed=3) is small_icu
    assert serialize_patient(small_icu, 0, "mortality", instructions="I", **serializer_kwargs(condition, 3)).text == \
        serialize_patient(small_icu, 0, "mortality", instructions="I").text


def test_llm_shuffle_keeps_the_multiset_of_lines(small_icu):
    moved = 0
    for i in range(10):
        plain = serialize_patient(small_icu, i, "mortality", instructions="I")
        shuffled = serialize_patient(small_icu, i, "mortality", instructions="I", **serializer_kwargs("shuffle:1.0", 5))
        assert Counter(_lines(plain)) == Counter(_lines(shuffled))
        moved += sum(a != b for a, b in zip(_lines(plain), _lines(shuffled), strict=True))
        again = serialize_patient(small_icu, i, "mortality", instructions="I", **serializer_kwargs("shuffle:1.0", 5))
        assert again.text == shuffled.text  # seeded
    assert moved == 10 * len(small_icu.features)  # at 100 % every line changes place


def test_dl_column_shuffle_keeps_each_visits_values(small_icu):
    out = shuffle_columns(small_icu, 1.0, seed=5)
    out.validate()
    orders = column_orders(small_icu, 1.0, seed=5)
    assert (orders != np.arange(len(small_icu.features))).all()  # every column moved
    for i in range(20):
        assert sorted(orders[i]) == list(range(len(small_icu.features)))
        for t in range(int(small_icu.n_visits[i])):
            a, b = small_icu.values[i, t], out.values[i, t]
            assert Counter(np.round(a, 6)) == Counter(np.round(b, 6))
            np.testing.assert_array_equal(out.raw[i, t], small_icu.raw[i, t, orders[i]])
    # 40 %: round(0.4 * 6) = 2 columns move per patient, the others stay
    partial = column_orders(small_icu, 0.4, seed=5)
    assert ((partial != np.arange(6)).sum(axis=1) == 2).all()
    # the DL shuffle moves the same features as the prompt shuffle of that patient
    prompt = serialize_patient(small_icu, 0, "mortality", instructions="I", **serializer_kwargs("shuffle:0.4", 5))
    assert prompt.feature_order == [small_icu.feature_names[j] for j in partial[0]]


def test_noise_is_seeded_bounded_and_rebuilds_the_dl_view(small_icu):
    sigma = 0.3
    a, b, c = add_noise(small_icu, sigma, 1), add_noise(small_icu, sigma, 1), add_noise(small_icu, sigma, 2)
    np.testing.assert_array_equal(a.raw, b.raw)
    assert not np.array_equal(a.raw, c.raw, equal_nan=True)
    observed = small_icu.mask
    np.testing.assert_array_equal(a.mask, observed)  # noise never creates or removes a value
    ratio = a.raw[observed] / small_icu.raw[observed]
    finite = np.isfinite(ratio)
    assert ratio[finite].min() >= max(0.0, 1 - NOISE_CLIP * sigma) - 1e-9
    assert ratio[finite].max() <= 1 + NOISE_CLIP * sigma + 1e-9
    assert 0.2 < np.std(ratio[finite]) < 0.4
    np.testing.assert_allclose(a.values, normalise_and_impute(a.raw, a.n_visits, small_icu.normalisation))
    assert a.normalisation == small_icu.normalisation  # stored train statistics, no refit
    big = add_noise(small_icu, 2.0, 1)
    assert (big.raw[observed] * np.sign(small_icu.raw[observed]) >= 0).all()  # never flips a sign
    a.validate()


def test_noise_of_a_patient_does_not_depend_on_the_subset(small_icu):
    whole = add_noise(small_icu, 0.2, 9)
    part = add_noise(small_icu.select(np.arange(30, 40)), 0.2, 9)
    np.testing.assert_array_equal(part.raw, whole.raw[30:40])


def test_masking_removes_the_requested_share_of_observed_values(small_icu):
    out = mask_values(small_icu, 0.5, seed=4)
    out.validate()
    assert not (out.mask & ~small_icu.mask).any()  # only observed values disappear
    np.testing.assert_array_equal(out.raw[out.mask], small_icu.raw[out.mask])  # the rest are untouched
    before = small_icu.mask.reshape(len(small_icu), -1).sum(axis=1)
    after = out.mask.reshape(len(small_icu), -1).sum(axis=1)
    np.testing.assert_array_equal(before - after, np.round(0.5 * before).astype(int))
    np.testing.assert_array_equal(mask_values(small_icu, 0.5, seed=4).raw, out.raw)  # seeded
    np.testing.assert_allclose(out.values, normalise_and_impute(out.raw, out.n_visits, small_icu.normalisation))
    everything = mask_values(small_icu, 1.0, seed=4)
    assert not everything.mask.any() and np.isfinite(everything.values).all()
