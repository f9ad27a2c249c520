"""Building the cohort: read the input, keep eligible patients (one stay each), split them, fill the arrays.

:func:`build_mimic_iv` is the entry point of the ``mimic_iv`` source (:mod:`benchmark.data.sources`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.cohort import Cohort, FeatureSpec
from benchmark.data.metadata import reference_range_of, unit_of
from benchmark.data.mimic_iv.config import (
    EXPECTED_VERSION,
    STATIC_FEATURES,
    MimicIVConfig,
    MimicIVError,
    check_config,
)
from benchmark.data.mimic_iv.events import extract_raw
from benchmark.data.mimic_iv.items import load_item_map
from benchmark.data.mimic_iv.parquet import read_preprocessed
from benchmark.data.mimic_iv.split import paper_split
from benchmark.data.mimic_iv.tables import check_input
from benchmark.data.preprocess import fit_normalisation, normalise_and_impute
from benchmark.runtime import LOGGER


def _select_stays(records: pd.DataFrame, how: str, seed: int) -> pd.DataFrame:
    """One record per patient (``subject``): the first or last by ``order`` or a seeded random one."""
    if how == "random":
        rng = np.random.default_rng(seed)
        shuffled = records.iloc[rng.permutation(len(records))]
        return shuffled[~shuffled["subject"].duplicated(keep="first")].sort_index()
    ordered = records.sort_values(["order"], kind="stable")
    return ordered[~ordered["subject"].duplicated(keep="first" if how == "first" else "last")].sort_index()


def assemble(records: pd.DataFrame, observations: pd.DataFrame, names: list[str], kinds: dict[str, str],
             config: MimicIVConfig, name: str, provenance: dict[str, Any], where: str) -> Cohort:
    """Eligibility (time points), one record per patient, the split, and the cohort arrays."""
    counts = provenance.setdefault("counts", {})
    points = observations.groupby("record")["day"].nunique()
    eligible = records[(points.reindex(records.index).fillna(0) >= config.min_time_points).to_numpy()]
    counts[f"with_at_least_{config.min_time_points}_time_points"] = len(eligible)
    eligible = _select_stays(eligible, config.stay_selection, config.seed)
    counts["patients"] = len(eligible)
    if len(eligible) <= config.n_test:
        raise MimicIVError(f"{where}: only {len(eligible)} patients qualify, fewer than n_test + 1 = {config.n_test + 1}; "
                           f"check the path or lower n_test")
    split = paper_split(eligible[config.stratify_task].to_numpy(), config.n_test, config.max_train_val,
                        config.val_fraction, config.seed)
    chosen = eligible[split != ""]
    split = split[split != ""]
    counts["not_sampled"] = int(len(eligible) - len(chosen))
    counts.update({f"split_{s}": int((split == s).sum()) for s in ("train", "val", "test")})

    obs = observations[observations["record"].isin(chosen.index)].sort_values(["record", "day"], kind="stable")
    position = pd.Series(np.arange(len(chosen)), index=chosen.index)
    days = obs[["record", "day"]].drop_duplicates()
    visit = days.groupby("record").cumcount()
    n_visits = days.groupby("record").size().reindex(chosen.index).to_numpy().astype(np.int64)
    T, d = int(n_visits.max()), len(names)
    times = np.full((len(chosen), T), np.nan)
    times[position.loc[days["record"]].to_numpy(), visit.to_numpy()] = days["day"].to_numpy()
    visit_of = pd.Series(visit.to_numpy(), index=pd.MultiIndex.from_frame(days))
    rows = position.loc[obs["record"]].to_numpy()
    cols = visit_of.reindex(pd.MultiIndex.from_frame(obs[["record", "day"]])).to_numpy()
    raw = np.full((len(chosen), T, d), np.nan)
    raw[rows, cols, pd.Index(names).get_indexer(obs["feature"])] = obs["value"].to_numpy(float)

    stats = fit_normalisation(raw, split == "train")
    features = [FeatureSpec(n, unit_of("mimic_iv", n), reference_range_of("mimic_iv", n), kinds[n]) for n in names]
    labels = np.stack([chosen[task].to_numpy() for task in config.tasks], axis=1).astype(np.int8)
    cohort = Cohort(
        name=name, domain="icu", features=features, static_features=list(STATIC_FEATURES),
        tasks=list(config.tasks), ids=np.array([str(i) for i in chosen.index]), n_visits=n_visits, times=times,
        raw=raw, values=normalise_and_impute(raw, n_visits, stats), mask=~np.isnan(raw),
        static=np.stack([chosen["age"].to_numpy(float), chosen["sex"].to_numpy(float)], axis=1),
        labels=labels, split=split, normalisation=stats,
        provenance={"source": "mimic_iv", "expected_version": EXPECTED_VERSION, **provenance},
    )
    cohort.validate(source=f"MIMIC-IV cohort '{name}'")
    return cohort


def build_mimic_iv(config: MimicIVConfig, name: str = "mimic_iv", where: str = "params.yaml") -> Cohort:
    """Build the MIMIC-IV cohort from the raw tables or the paper group's parquet (see the package docstring).

    Logs counts only (stays per filter step, patients per split, unknown item ids), never patient rows.
    """
    variables = load_item_map(config.item_map or None)
    names = check_config(config, variables, where)
    kind = check_input(config.path, config.input_format)
    reader = read_preprocessed if kind == "parquet" else extract_raw
    records, observations, provenance = reader(config.path, config, variables, names)
    provenance["input"] = kind
    provenance["item_map"] = config.item_map or "packaged: benchmark/data/resources/mimic_iv_items.yaml"
    cohort = assemble(records, observations, names, {n: variables[n].kind for n in names}, config, name,
                      provenance, where)
    LOGGER.info("prepare@%s: MIMIC-IV (%s input) counts %s", name, kind,
                json.dumps(provenance["counts"], sort_keys=True))
    return cohort
