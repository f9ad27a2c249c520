import json
from importlib import resources

import numpy as np
import pytest
import yaml

from benchmark.config import ConfigError
from benchmark.data.mapping import FeaturePair, feature_map, load_pairs, map_cohort, map_raw
from benchmark.data.mimic_iv import VARIABLES
from benchmark.data.synthetic import SyntheticConfig, generate, physiology

# The TJH feature names of the unit table (73 labs; punctuation as in the paper group's prompt tables).
TJH = list(json.loads(resources.files("benchmark.data").joinpath("resources/tjh_units.json").read_text("utf-8")))


def test_pairs_and_units():
    pairs = load_pairs()
    assert [(p.mimic_iv, p.tjh, p.mimic_iv_per_tjh) for p in pairs] == [("Glucose", "glucose", 18.016),
                                                                         ("pH", "PH value", 1.0)]
    assert [(p.mimic_iv_unit, p.tjh_unit) for p in pairs] == [("mg/dL", "mmol/L"), ("/", "/")]


def test_no_feature_is_mapped_twice():
    pairs = load_pairs()
    for side in ("mimic_iv", "tjh"):
        names = [getattr(p, side).lower() for p in pairs]
        assert len(names) == len(set(names))
    for source, target in ((VARIABLES, TJH), (TJH, VARIABLES), (VARIABLES, VARIABLES)):
        sources = [j for j, _ in feature_map(source, target) if j is not None]
        assert len(sources) == len(set(sources))


def test_most_features_have_no_counterpart():
    mapped = [target for target, (j, _) in zip(TJH, feature_map(VARIABLES, TJH), strict=True) if j is not None]
    assert len(TJH) == 73 and sorted(mapped) == ["PH value", "glucose"]
    back = [VARIABLES[k] for k, (j, _) in enumerate(feature_map(TJH, VARIABLES)) if j is not None]
    assert back == ["Glucose", "pH"]


def test_a_duplicate_pair_is_refused(tmp_path):
    rows = [{"mimic_iv": "Glucose", "tjh": "glucose", "mimic_iv_unit": "mg/dL", "tjh_unit": "mmol/L",
             "mimic_iv_per_tjh": 18.016},
            {"mimic_iv": "Glucose", "tjh": "PH value", "mimic_iv_unit": "mg/dL", "tjh_unit": "/",
             "mimic_iv_per_tjh": 1.0}]
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump({"pairs": rows}))
    with pytest.raises(ConfigError, match="already in another pair"):
        load_pairs(path)
    rows[1] = {**rows[0], "tjh_unit": "mg/dL"}
    path.write_text(yaml.safe_dump({"pairs": rows[1:]}))
    with pytest.raises(ConfigError, match="unit table says 'mmol/L'"):
        load_pairs(path)


def test_a_source_feeding_two_targets_is_refused():
    pairs = [FeaturePair("Glucose", "glucose", "mg/dL", "mmol/L", 18.016)]
    with pytest.raises(ConfigError, match="two target features"):
        feature_map(["Glucose"], ["glucose", "Glucose"], pairs)


def test_unit_conversion_both_ways():
    raw = np.array([[[180.16, 7.31, 90.0]]])
    out = map_raw(raw, ["Glucose", "pH", "Heart Rate"], ["glucose", "PH value", "albumin"])
    np.testing.assert_allclose(out[0, 0, :2], [10.0, 7.31])
    assert np.isnan(out[0, 0, 2])
    back = map_raw(out, ["glucose", "PH value", "albumin"], ["Glucose", "pH", "Heart Rate"])
    np.testing.assert_allclose(back[0, 0, :2], [180.16, 7.31])
    assert np.isnan(back[0, 0, 2])


def test_synthetic_icu_on_the_ward_feature_list():
    icu = generate(SyntheticConfig(domain="icu", n_patients=80, n_test=20, seed=5,
                                   features=["Heart Rate", "Glucose", "pH", "Temperature"]), name="icu")
    ward = generate(SyntheticConfig(domain="ward", n_patients=80, n_test=20, seed=6,
                                    features=["glucose", "albumin", "PH value", "Urea"]), name="ward")
    assert set(physiology("icu")) == set(VARIABLES)  # the synthetic icu domain uses MIMIC-IV's names
    mapped = map_cohort(icu, ward)
    mapped.validate()
    assert mapped.feature_names == ward.feature_names and np.array_equal(mapped.ids, icu.ids)
    np.testing.assert_allclose(mapped.raw[..., 0], icu.raw[..., 1] / 18.016, equal_nan=True)
    np.testing.assert_allclose(mapped.raw[..., 2], icu.raw[..., 2], equal_nan=True)
    assert np.isnan(mapped.raw[..., [1, 3]]).all()
    # DL view with the ward's statistics: unmapped columns hold the ward's imputed train median.
    real = np.arange(mapped.raw.shape[1])[None] < mapped.n_visits[:, None]
    fill = (ward.normalisation.median[1] - ward.normalisation.mean[1]) / ward.normalisation.std[1]
    np.testing.assert_allclose(mapped.values[..., 1][real], fill, rtol=1e-5)
    assert mapped.normalisation == ward.normalisation
    np.testing.assert_array_equal(mapped.salient[:, 0], icu.salient[:, 1])
    assert not mapped.salient[:, [1, 3]].any()
    columns = mapped.provenance["feature_mapping"]["columns"]
    assert [c["source"] for c in columns] == ["Glucose", None, "pH", None]
