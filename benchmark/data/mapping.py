"""Cross-domain feature mapping for the DL experts: MIMIC-IV (and synthetic icu) <-> TJH (and synthetic ward).

A DL expert reads fixed feature columns, so a model trained on one domain can only be tested on another
after the other domain's patients are re-expressed in its feature list. The correspondence is a data file,
``resources/feature_mapping.yaml``; the table (value in MIMIC-IV units = value in TJH units x factor):

=====================  =============  ===========  ==========  ======
MIMIC-IV variable      unit           TJH feature  unit        factor
=====================  =============  ===========  ==========  ======
Glucose                mg/dL          glucose      mmol/L      18.016
pH                     /              PH value     /           1
=====================  =============  ===========  ==========  ======

**Most features have no counterpart**: 15 of the 17 MIMIC-IV variables (vitals, GCS, capillary refill,
FiO2, height, weight) and 71 of the 73 TJH labs. :func:`map_cohort` leaves them missing (NaN in ``raw``)
and the DL view imputes them with the target domain's train median, as for any feature never measured.
Features with the same name in both cohorts map to themselves (e.g. synthetic icu -> MIMIC-IV). No
feature is ever mapped twice: each target column has at most one source and each source feeds at most one
target. LLMs read text and need none of this.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from benchmark.config import ConfigError
from benchmark.data.cohort import Cohort, FeatureSpec, NormalisationStats
from benchmark.data.metadata import known_features, unit_of
from benchmark.data.mimic_iv import VARIABLES
from benchmark.data.preprocess import normalise_and_impute

RESOURCE = "resources/feature_mapping.yaml"


def _key(name: str) -> str:
    """Names compare by their letters and digits only ('D-D dimer' == 'DD dimer'), case-sensitively:
    MIMIC-IV's 'Glucose' (mg/dL) and TJH's 'glucose' (mmol/L) are different features."""
    return re.sub(r"[^0-9a-zA-Zα-ωΑ-Ωµμ²]", "", name).replace("µ", "μ")


@dataclass(frozen=True)
class FeaturePair:
    """A MIMIC-IV variable and the TJH feature that measures the same quantity, with the unit factor."""

    mimic_iv: str
    tjh: str
    mimic_iv_unit: str
    tjh_unit: str
    mimic_iv_per_tjh: float
    note: str = ""


def load_pairs(path: str | Path | None = None) -> list[FeaturePair]:
    """The corresponding pairs (default: the packaged resource), checked.

    Each name must exist in its domain, each unit must be the one of the metadata tables, the factor must
    be positive, and no feature may appear in two pairs.
    """
    if path:
        source, text = str(path), Path(path).read_text("utf-8")
    else:
        source = f"benchmark/data/{RESOURCE}"
        text = resources.files("benchmark.data").joinpath(RESOURCE).read_text("utf-8")
    rows = (yaml.safe_load(text) or {}).get("pairs")
    if not isinstance(rows, list):
        raise ConfigError(f"{source}: needs a list 'pairs' of {{mimic_iv, tjh, mimic_iv_unit, tjh_unit, mimic_iv_per_tjh}}")
    mimic_names = {_key(v): v for v in VARIABLES}
    tjh_keys = known_features("tjh")  # lower-cased keys of the TJH unit table
    pairs, used = [], {"mimic_iv": set(), "tjh": set()}
    for i, row in enumerate(rows):
        where = f"{source}: pairs[{i}]"
        try:
            pair = FeaturePair(**row)
        except TypeError as error:
            raise ConfigError(f"{where}: {error}") from None
        if _key(pair.mimic_iv) not in mimic_names:
            raise ConfigError(f"{where}.mimic_iv: '{pair.mimic_iv}' is not one of the MIMIC-IV variables {VARIABLES}")
        if _key(pair.tjh).lower() not in tjh_keys:
            raise ConfigError(f"{where}.tjh: '{pair.tjh}' is not a TJH feature (resources/tjh_units.json)")
        for side, name, unit in (("mimic_iv", pair.mimic_iv, pair.mimic_iv_unit), ("tjh", pair.tjh, pair.tjh_unit)):
            if unit_of(side, name) != unit:
                raise ConfigError(f"{where}.{side}_unit: '{unit}', but the {side} unit table says "
                                  f"'{unit_of(side, name)}' for '{name}'")
            if _key(name) in used[side]:
                raise ConfigError(f"{where}.{side}: '{name}' is already in another pair (a feature maps at most once)")
            used[side].add(_key(name))
        if not float(pair.mimic_iv_per_tjh) > 0:
            raise ConfigError(f"{where}.mimic_iv_per_tjh: must be positive, got {pair.mimic_iv_per_tjh}")
        pairs.append(pair)
    return pairs


def feature_map(source: list[str], target: list[str], pairs: list[FeaturePair] | None = None
                ) -> list[tuple[int | None, float]]:
    """For each target feature: (index of the source feature that feeds it, factor), or (None, nan).

    A feature with the same name in both lists maps to itself (factor 1); otherwise a pair whose one side
    is the target and whose other side is in the source maps with the unit factor. Raises if a source
    feature would feed two targets.
    """
    pairs = load_pairs() if pairs is None else pairs
    where = {_key(name): j for j, name in enumerate(source)}
    out: list[tuple[int | None, float]] = []
    for name in target:
        key = _key(name)
        if key in where:
            out.append((where[key], 1.0))
            continue
        found: tuple[int | None, float] = (None, float("nan"))
        for pair in pairs:
            if key == _key(pair.tjh) and _key(pair.mimic_iv) in where:  # MIMIC-IV -> TJH units: divide
                found = (where[_key(pair.mimic_iv)], 1.0 / float(pair.mimic_iv_per_tjh))
            elif key == _key(pair.mimic_iv) and _key(pair.tjh) in where:  # TJH -> MIMIC-IV units: multiply
                found = (where[_key(pair.tjh)], float(pair.mimic_iv_per_tjh))
        out.append(found)
    sources = [j for j, _ in out if j is not None]
    if len(sources) != len(set(sources)):
        twice = sorted({source[j] for j in sources if sources.count(j) > 1})
        raise ConfigError(f"feature mapping: source feature(s) {twice} would feed two target features")
    return out


def map_raw(raw: np.ndarray, source: list[str], target: list[str], pairs: list[FeaturePair] | None = None
            ) -> np.ndarray:
    """``raw`` (n, T, len(source)) re-expressed on ``target`` columns: converted, NaN where unmapped."""
    out = np.full((*raw.shape[:2], len(target)), np.nan)
    for k, (j, factor) in enumerate(feature_map(source, target, pairs)):
        if j is not None:
            out[:, :, k] = raw[:, :, j] * factor
    return out


def map_cohort(cohort: Cohort, target: Cohort | list[FeatureSpec], normalisation: NormalisationStats | None = None,
               pairs: list[FeaturePair] | None = None) -> Cohort:
    """``cohort``'s patients on ``target``'s feature list, for a DL expert trained on the target domain.

    ``raw`` is mapped with :func:`map_raw`; ``values`` are normalised and imputed with the *target's*
    statistics (the ones the expert was trained with; pass ``normalisation`` when ``target`` is a feature
    list), so unmapped features get the target's train median. Ids, visits, labels, statics and splits stay
    the cohort's own; ``salient`` (synthetic ground truth) follows the mapped columns. The provenance
    records which source column fed each target column.
    """
    features = list(target.features if isinstance(target, Cohort) else target)
    stats = normalisation or (target.normalisation if isinstance(target, Cohort) else None)
    if stats is None:
        raise ConfigError("map_cohort: give the target cohort or its normalisation statistics")
    names = [f.name for f in features]
    mapping = feature_map(cohort.feature_names, names, pairs)
    raw = map_raw(cohort.raw, cohort.feature_names, names, pairs)
    salient = None
    if cohort.salient is not None:
        salient = np.zeros((len(cohort), len(names)), dtype=bool)
        for k, (j, _) in enumerate(mapping):
            if j is not None:
                salient[:, k] = cohort.salient[:, j]
    described = [{"target": name, "source": None if j is None else cohort.feature_names[j],
                  "factor": None if j is None else factor} for name, (j, factor) in zip(names, mapping, strict=True)]
    return dataclasses.replace(
        cohort, features=features, raw=raw, mask=~np.isnan(raw), salient=salient, normalisation=stats,
        values=normalise_and_impute(raw, cohort.n_visits, stats),
        provenance={**cohort.provenance, "feature_mapping": {
            "target": target.name if isinstance(target, Cohort) else None, "columns": described}},
    )
