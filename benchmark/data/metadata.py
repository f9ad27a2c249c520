"""Units and reference ranges of the features, as used in published LLM prompts for these cohorts.

The resource files are the per-feature unit / reference-range tables of the paper group's prompt code
(``src/structured_ehr/prompts/{tjh,mimic-iv}/``); they describe features, not patients. Their keys drop
some punctuation of the raw column names ("D-D dimer" is stored as "DD dimer"), so lookups compare names
with everything but letters and digits removed.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

UNKNOWN = "/"


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Zα-ωΑ-Ωµμ²]", "", name).lower().replace("µ", "μ")


@cache
def _table(source: str, kind: str) -> dict[str, str]:
    text = resources.files("benchmark.data").joinpath(f"resources/{source}_{kind}.json").read_text("utf-8")
    return {_key(name): value for name, value in json.loads(text).items()}


def unit_of(source: str, name: str) -> str:
    """Unit of feature ``name`` in ``source`` ('tjh' or 'mimic_iv'); '/' when the table has none."""
    return _table(source, "units").get(_key(name), UNKNOWN)


def reference_range_of(source: str, name: str) -> str:
    """Reference range of feature ``name`` in ``source``; '/' when the table has none."""
    return _table(source, "ranges").get(_key(name), UNKNOWN)


def known_features(source: str) -> set[str]:
    """Normalised names of every feature the tables describe (for coverage checks in tests)."""
    return set(_table(source, "units"))
