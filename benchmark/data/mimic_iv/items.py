"""The item-id map: which MIMIC-IV item ids feed which of the 17 variables, and how their values convert.

Reads and checks ``resources/mimic_iv_items.yaml`` (or an alternative map) and compiles it into the
:class:`Catalogue` that the event readers look item ids up in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml

from benchmark.config import ConfigError
from benchmark.data.cohort import FEATURE_KINDS
from benchmark.data.mimic_iv.config import GCS_PARTS, GCS_TOTAL, VARIABLES, MimicIVConfig


@dataclass(frozen=True)
class Item:
    """One MIMIC-IV item id mapped to a variable, with the unit it is charted in and its conversion."""

    itemid: int
    table: Literal["chartevents", "labevents"]
    variable: str
    label: str
    unit: str
    convert: str
    origin: str
    fluid: str = "blood"


@dataclass(frozen=True)
class Variable:
    """One of the 17 variables: kind, plausible bounds, category scores and its items."""

    name: str
    kind: str
    bounds: tuple[float, float]
    categories: dict[str, float]
    items: tuple[Item, ...]


def _f_to_c(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 50, (v - 32.0) * 5.0 / 9.0, v)


def _c_or_f(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 79, (v - 32.0) * 5.0 / 9.0, v)


CONVERTERS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "none": None,
    "F_to_C": _f_to_c,
    "C_or_F": _c_or_f,
    "in_to_cm": lambda v: v * 2.54,
    "lb_to_kg": lambda v: v * 0.453592,
    "to_fraction": lambda v: np.where(v > 1, v / 100.0, v),
    "to_percent": lambda v: np.where(v <= 1, v * 100.0, v),
}


def load_item_map(path: str | Path | None = None) -> dict[str, Variable]:
    """Read and check an item-id map (default: the packaged ``resources/mimic_iv_items.yaml``).

    Returns the variables in the canonical order of :data:`VARIABLES`. Errors name the file and the key:
    unknown variables, kinds, tables or conversions, malformed bounds, and an item id mapped twice.
    """
    if path:
        source = str(path)
        if not Path(path).exists():
            raise ConfigError(f"item_map {path}: file not found (copy benchmark/data/resources/mimic_iv_items.yaml)")
        text = Path(path).read_text("utf-8")
    else:
        source = "benchmark/data/resources/mimic_iv_items.yaml"
        text = resources.files("benchmark.data").joinpath("resources/mimic_iv_items.yaml").read_text("utf-8")
    table = (yaml.safe_load(text) or {}).get("variables")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{source}: needs a mapping 'variables: {{name: {{kind, bounds, items}}}}'")
    unknown = sorted(set(table) - set(VARIABLES))
    if unknown:
        raise ConfigError(f"{source}: variables {unknown} are not among the 17 MIMIC-IV variables {VARIABLES}")
    seen: dict[int, str] = {}
    out: dict[str, Variable] = {}
    for name in [v for v in VARIABLES if v in table]:
        spec, where = table[name] or {}, f"{source}: variables.{name}"
        kind = spec.get("kind")
        if kind not in FEATURE_KINDS or kind == "static":
            raise ConfigError(f"{where}.kind: '{kind}' is not one of lab, vital, categorical")
        bounds = spec.get("bounds")
        if not (isinstance(bounds, list) and len(bounds) == 2 and float(bounds[0]) < float(bounds[1])):
            raise ConfigError(f"{where}.bounds: expected [low, high] with low < high, got {bounds!r}")
        categories = {str(k).strip().lower(): float(v) for k, v in (spec.get("categories") or {}).items()}
        items = []
        for i, raw in enumerate(spec.get("items") or []):
            here = f"{where}.items[{i}]"
            if raw.get("table") not in ("chartevents", "labevents"):
                raise ConfigError(f"{here}.table: '{raw.get('table')}' is not chartevents or labevents")
            if raw.get("convert", "none") not in CONVERTERS:
                raise ConfigError(f"{here}.convert: '{raw.get('convert')}' is not one of {sorted(CONVERTERS)}")
            itemid = int(raw["itemid"])
            if itemid in seen:
                raise ConfigError(f"{here}.itemid: {itemid} is already mapped to '{seen[itemid]}' (an item maps to one variable)")
            seen[itemid] = name
            items.append(Item(itemid, raw["table"], name, str(raw.get("label", "")), str(raw.get("unit", "")),
                              raw.get("convert", "none"), str(raw.get("origin", "")), raw.get("fluid", "blood")))
        out[name] = Variable(name, kind, (float(bounds[0]), float(bounds[1])), categories, tuple(items))
    return out


@dataclass(frozen=True)
class Catalogue:
    """The item map compiled for one run: variable codes are positions in ``names``."""

    names: list[str]
    kinds: list[str]
    bounds: np.ndarray  # (v, 2)
    categories: dict[int, dict[str, float]]
    code: dict[int, int]  # itemid -> variable code
    convert: dict[int, str]  # itemid -> converter name
    table: dict[int, str]  # itemid -> table

    def itemids(self, table: str) -> list[int]:
        """The mapped item ids of event table ``table``, sorted."""
        return sorted(i for i, t in self.table.items() if t == table)


def catalogue(variables: dict[str, Variable], names: list[str], config: MimicIVConfig) -> Catalogue:
    """Compile the variables ``names`` (selected + those needed to derive the GCS total)."""
    needed = list(names)
    if GCS_TOTAL in names and config.derive_gcs_total:
        needed += [part for part in GCS_PARTS if part not in needed]
    needed = [v for v in VARIABLES if v in needed and v in variables]
    code, convert, table = {}, {}, {}
    for j, name in enumerate(needed):
        for item in variables[name].items:
            if not config.non_blood_items and item.fluid != "blood":
                continue
            code[item.itemid], convert[item.itemid], table[item.itemid] = j, item.convert, item.table
    categories = {j: variables[n].categories for j, n in enumerate(needed) if variables[n].kind == "categorical"}
    return Catalogue(needed, [variables[n].kind for n in needed],
                     np.array([variables[n].bounds for n in needed], dtype=float).reshape(-1, 2),
                     categories, code, convert, table)


def leading_number(words: pd.Series) -> np.ndarray:
    """The integer a text starts with ('4 Spontaneously' -> 4), NaN otherwise."""
    digits = words.str.extract(r"^(\d+)", expand=False)
    return pd.to_numeric(digits, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
