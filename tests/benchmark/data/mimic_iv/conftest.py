"""Shared fixtures of the MIMIC-IV tests: the fixture tables on disk and two cohorts built from them.

Package-scoped, so that the tables are written and each cohort is built once for all the test modules here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.cohort import Cohort
from benchmark.data.mimic_iv import build_mimic_iv
from tests.benchmark.data.mimic_iv.fake_mimic import build_fixture, config


@pytest.fixture(scope="package")
def mimic_root(tmp_path_factory) -> Path:
    return build_fixture().write(tmp_path_factory.mktemp("mimiciv") / "2.2")


@pytest.fixture(scope="package")
def cohort(mimic_root) -> Cohort:
    return build_mimic_iv(config(mimic_root), "mimic_iv")


@pytest.fixture(scope="package")
def everyone(mimic_root) -> Cohort:
    """Every eligible patient (no sampling), so that each one can be looked at."""
    return build_mimic_iv(config(mimic_root, max_train_val=0), "mimic_iv")
