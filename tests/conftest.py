"""Shared fixtures: small cohorts made by the generator itself (no files needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.cohort import Cohort
from benchmark.data.synthetic import SyntheticConfig, generate

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def small_icu() -> Cohort:
    """240 ICU patients, 6 features, mortality + readmission."""
    config = SyntheticConfig(domain="icu", n_patients=240, n_test=60, seed=7,
                             features=["Heart Rate", "Respiratory rate", "Systolic blood pressure",
                                       "Oxygen saturation", "Temperature", "Glascow coma scale total"])
    return generate(config, name="small_icu")


@pytest.fixture(scope="session")
def small_ward() -> Cohort:
    """240 ward patients, all 14 ward labs, mortality."""
    return generate(SyntheticConfig(domain="ward", n_patients=240, n_test=60, seed=8), name="small_ward")
