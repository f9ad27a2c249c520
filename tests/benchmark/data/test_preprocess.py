import numpy as np

from benchmark.data.preprocess import fit_normalisation, normalise_and_impute, stratified_split


def test_split_sizes_and_stratification():
    labels = np.array([1] * 100 + [0] * 300)
    split = stratified_split(labels, 200, 0.125, seed=42)
    assert (split == "test").sum() == 200
    assert (split == "val").sum() == 25
    assert abs(labels[split == "test"].mean() - 0.25) < 0.01
    assert np.array_equal(split, stratified_split(labels, 200, 0.125, seed=42))


def test_normalisation_uses_train_only():
    raw = np.array([[[1.0]], [[2.0]], [[3.0]], [[1000.0]]])
    train = np.array([True, True, True, False])
    stats = fit_normalisation(raw, train, trim=(0.0, 1.0))
    assert stats.mean == [2.0]
    assert stats.median == [2.0]


def test_locf_then_median_and_zero_padding():
    raw = np.array([[[np.nan], [5.0], [np.nan]], [[np.nan], [np.nan], [np.nan]]])
    stats = fit_normalisation(np.array([[[1.0]], [[3.0]], [[5.0]]]), np.ones(3, bool), trim=(0.0, 1.0))
    out = normalise_and_impute(raw, np.array([3, 2]), stats)
    z5 = (5.0 - stats.mean[0]) / stats.std[0]
    fill = (stats.median[0] - stats.mean[0]) / stats.std[0]
    np.testing.assert_allclose(out[0, :, 0], [fill, z5, z5], rtol=1e-6)
    np.testing.assert_allclose(out[1, :, 0], [fill, fill, 0.0], rtol=1e-6)
