"""Labels and candidates: mortality and readmission on every ICU stay, then mimic3-benchmarks' stay filters.

Steps 1 and 2 of the extraction described in :mod:`benchmark.data.mimic_iv`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.data.mimic_iv.config import DAY, MimicIVConfig
from benchmark.data.mimic_iv.tables import seconds


def label_stays(icustays: pd.DataFrame, admissions: pd.DataFrame, patients: pd.DataFrame,
                config: MimicIVConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """Every ICU stay with times (s), age, sex, care units and both labels (see the package docstring).

    Labels are computed on all stays of the table, before any filter, so that a readmission to a stay that
    is later filtered out still counts. Returns the frame and counts of stays dropped for missing links.
    """
    stays = icustays.copy()
    stays["intime_s"], stays["outtime_s"] = seconds(stays["intime"]), seconds(stays["outtime"])
    stays["year"] = pd.to_datetime(stays["intime"], errors="coerce").dt.year
    adm = admissions[["hadm_id", "dischtime", "deathtime", "hospital_expire_flag"]].drop_duplicates("hadm_id")
    pat = patients[["subject_id", "gender", "anchor_age", "anchor_year", "dod"]].drop_duplicates("subject_id")
    stays = stays.merge(adm, on="hadm_id", how="left").merge(pat, on="subject_id", how="left")
    counts = {"icu_stays": len(stays)}
    complete = (np.isfinite(stays["intime_s"]) & np.isfinite(stays["outtime_s"])
                & stays["hospital_expire_flag"].notna() & stays["anchor_age"].notna())
    stays = stays[complete.to_numpy()].reset_index(drop=True)
    counts["icu_stays_with_times_admission_and_patient"] = len(stays)

    stays["age"] = stays["anchor_age"].astype(float) + (stays["year"] - stays["anchor_year"]).astype(float)
    stays["sex"] = stays["gender"].map({"M": 1.0, "F": 0.0})
    stays["mortality"] = (stays["hospital_expire_flag"].astype(int) == 1).astype(np.int8)

    death_in_hospital = admissions.assign(t=seconds(admissions["deathtime"])).groupby("subject_id")["t"].min()
    death_date = pd.Series(seconds(patients["dod"]), index=patients["subject_id"]).groupby(level=0).min()
    death = death_in_hospital.reindex(stays["subject_id"]).to_numpy()
    death = np.where(np.isnan(death), death_date.reindex(stays["subject_id"]).to_numpy(), death)

    anchor = stays["outtime_s"].to_numpy() if config.readmission_anchor == "icu_outtime" else seconds(stays["dischtime"])
    anchor = np.where(np.isnan(anchor), stays["outtime_s"].to_numpy(), anchor)
    # The next ICU stay of the same patient that starts strictly after the anchor, among *all* stays of
    # the table (also those dropped above for missing links).
    left = pd.DataFrame({"row": np.arange(len(stays)), "subject_id": stays["subject_id"].to_numpy(),
                         "anchor": anchor}).sort_values("anchor", kind="stable")
    right = pd.DataFrame({"subject_id": icustays["subject_id"].to_numpy(),
                          "next_in": seconds(icustays["intime"])}).dropna().sort_values("next_in", kind="stable")
    nxt = pd.merge_asof(left, right, left_on="anchor", right_on="next_in", by="subject_id",
                        direction="forward", allow_exact_matches=False).sort_values("row")
    window = config.readmission_days * DAY
    gap = nxt["next_in"].to_numpy() - anchor
    readmitted = (gap > 0) & (gap <= window)
    died = death <= anchor + window
    stays["readmission"] = (readmitted | died).astype(np.int8)
    stays["death_s"] = death
    return stays, counts


def candidate_stays(stays: pd.DataFrame, config: MimicIVConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """mimic3-benchmarks' stay filters in the port's order: transfers, one stay per admission, age."""
    counts = {}
    if config.exclude_transfers:
        stays = stays[(stays["first_careunit"] == stays["last_careunit"]).to_numpy()]
        counts["without_care_unit_transfer"] = len(stays)
    if config.one_stay_per_admission:
        per_admission = stays.groupby("hadm_id")["stay_id"].transform("size")
        stays = stays[(per_admission == 1).to_numpy()]
        counts["single_icu_stay_admissions"] = len(stays)
    stays = stays[(stays["age"] >= config.min_age).to_numpy()]
    counts[f"age_at_least_{config.min_age:g}"] = len(stays)
    stays = stays.copy()
    stays["last_day"] = np.floor((stays["outtime_s"] - stays["intime_s"]) / DAY)
    stays["first_day"] = stays["last_day"] - config.window_days + 1
    return stays.reset_index(drop=True), counts
