"""Test-time attention alignment and the other mechanism numbers of an LLM's answers.

The paper's stage 2 rewards the overlap between the features an answer names in ``<Important Features>``
and the expert's top-k. Whether a method *does* name those features on test patients is a measurement,
not an assumption, so every LLM evaluation reports (``metrics.json`` key ``mechanism``):

* ``names_feature_rate`` — share of answers that name at least one cohort feature;
* ``parse_rate`` — share of answers whose probability could be read;
* ``truncation_rate`` — share of answers cut by ``max_new_tokens`` (not ended by the model);
* ``alignment_truth`` — mean Jaccard of the named features with the patient's true salient set (synthetic
  cohorts only, else null): what the answer *should* name;
* ``alignment_expert`` — mean Jaccard with the guiding expert's top-k on the same patient (R_att on test
  patients; null when no expert file is given).

Beside the metrics file, ``alignment.csv`` holds both Jaccards per patient (:func:`per_patient_alignment`), so
that two methods' alignment can be compared on the same patients with a paired test
(:mod:`benchmark.reports.rl_comparison`).

Jaccard is |C ∩ E| / |C ∪ E| and 0 when the answer names nothing (the convention of R_att in
:mod:`methods.eag_rl.rewards`): an answer without features is not aligned. Features are the canonical
cohort names the parser returns, so no second canonicalisation happens here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

ALIGNMENT_FILE = "alignment.csv"
ALIGNMENT_COLUMNS = ("id", "alignment_truth", "alignment_expert")


def jaccard(named: Sequence[str], reference: Sequence[str]) -> float:
    """|named ∩ reference| / |named ∪ reference|; 0.0 when ``named`` is empty."""
    a, b = set(named), set(reference)
    if not a:
        return 0.0
    return len(a & b) / len(a | b)


def salient_sets(salient: np.ndarray | None, feature_names: Sequence[str]) -> list[list[str]] | None:
    """Each patient's true salient feature names from the cohort's ``(n, d)`` boolean mask; None without one."""
    if salient is None:
        return None
    return [[name for name, on in zip(feature_names, row, strict=True) if on] for row in np.asarray(salient, bool)]


def mechanism_block(features: Sequence[Sequence[str]], parsed: Sequence[bool], finished: Sequence[bool],
                    truth: Sequence[Sequence[str]] | None = None, ids: Sequence[str] | None = None,
                    expert_top_k: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """The ``mechanism`` numbers (module docstring) of one evaluation; ``ids`` index ``expert_top_k``."""
    n = len(features)
    if not n:
        raise ValueError("no answers to summarise")
    block: dict[str, Any] = {
        "names_feature_rate": float(np.mean([bool(f) for f in features])),
        "parse_rate": float(np.mean(parsed)),
        "truncation_rate": float(1.0 - np.mean(finished)),
        "alignment_truth": None, "alignment_expert": None,
    }
    if truth is not None:
        block["alignment_truth"] = float(np.mean([jaccard(f, t) for f, t in zip(features, truth, strict=True)]))
    if expert_top_k is not None:
        if ids is None:
            raise ValueError("expert_top_k needs the patients' ids")
        missing = [i for i in ids if str(i) not in expert_top_k]
        if missing:
            raise ValueError(f"no expert top-k for {len(missing)} evaluated patients (e.g. {missing[:3]}): the "
                             f"expert's importance file belongs to another cohort; re-run its stage")
        block["alignment_expert"] = float(np.mean([jaccard(f, expert_top_k[str(i)])
                                                   for f, i in zip(features, ids, strict=True)]))
    return block


def per_patient_alignment(features: Sequence[Sequence[str]], ids: Sequence[str],
                          truth: Sequence[Sequence[str]] | None = None,
                          expert_top_k: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """One row per patient: ``id`` and the Jaccards of its answer's features with the truth and the expert
    (empty where the reference is unknown): the rows :func:`mechanism_block` averages."""
    frame = pd.DataFrame({"id": [str(i) for i in ids]})
    frame["alignment_truth"] = (np.nan if truth is None else
                                [jaccard(f, t) for f, t in zip(features, truth, strict=True)])
    frame["alignment_expert"] = (np.nan if expert_top_k is None else
                                 [jaccard(f, expert_top_k[str(i)]) for f, i in zip(features, ids, strict=True)])
    return frame[list(ALIGNMENT_COLUMNS)]


def read_alignment(path) -> pd.DataFrame:
    """An ``alignment.csv``, sorted by patient id; errors name the file and the missing columns."""
    frame = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in ALIGNMENT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; re-run the evaluation that wrote it")
    return frame.sort_values("id").reset_index(drop=True)
