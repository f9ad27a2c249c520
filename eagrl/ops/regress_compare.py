"""Comparing numbers: committed against fresh, within tolerances, with a status each.

See :mod:`eagrl.ops.regress` for the statuses and the tolerances.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any

from eagrl.ops.regress_config import RegressConfig
from eagrl.ops.regress_results import flatten

STATUSES = ("ok", "changed", "missing", "new", "machine")


@dataclass(frozen=True)
class Difference:
    """One compared number."""

    key: str
    committed: float | None
    fresh: float | None
    tolerance: float
    status: str

    @property
    def delta(self) -> float | None:
        """``fresh - committed`` (None when either is absent)."""
        if self.committed is None or self.fresh is None:
            return None
        return self.fresh - self.committed


def tolerance_for(key: str, committed: float, config: RegressConfig) -> float:
    """The tolerance that applies to ``key`` (see the module docstring)."""
    base = next((tol for pattern, tol in config.tolerances.items() if fnmatch.fnmatch(key, pattern)), config.abs_tol)
    return base + config.rel_tol * (abs(committed) if math.isfinite(committed) else 0.0)


SPREAD_SUFFIXES = ("mean", "point", "ci_low", "ci_high")


def sibling_std(key: str, numbers: dict[str, float]) -> float | None:
    """The committed bootstrap std beside a score (``.../auroc/mean`` -> ``.../auroc/std``, ``auroc_mean`` ->
    ``auroc_std``), or None when the score has none."""
    for suffix in SPREAD_SUFFIXES:
        for separator in ("/", "_"):
            if key.endswith(separator + suffix):
                std = numbers.get(key[: -len(suffix)] + "std")
                if std is not None and math.isfinite(std):
                    return std
    return None


def machine_tolerance(key: str, committed: dict[str, float], config: RegressConfig) -> float:
    """How far a machine-sensitive number may move on a machine unlike the reference's: ``machine_stds``
    committed bootstrap stds of it plus its own tolerance, or ``machine_abs_tol`` where it has no std."""
    std = sibling_std(key, committed)
    if std is None:
        return max(config.machine_abs_tol, tolerance_for(key, committed[key], config))
    return tolerance_for(key, committed[key], config) + config.machine_stds * std


def compare(committed: dict[str, Any], fresh: dict[str, Any], config: RegressConfig,
            other_machine: bool = False) -> list[Difference]:
    """Every number of every file, committed against fresh, with its status (``other_machine``: the fresh
    numbers come from a machine unlike the reference's, see the module docstring)."""
    out: list[Difference] = []
    for name in sorted(set(committed) | set(fresh)):
        if name not in fresh:
            out.append(Difference(f"{name}:(whole file)", None, None, 0.0, "missing"))
            continue
        old = {f"{name}:{k}": v for k, v in flatten(committed[name]).items()} if name in committed else {}
        new = {f"{name}:{k}": v for k, v in flatten(fresh[name]).items()}
        for key in sorted(set(old) | set(new)):
            if any(fnmatch.fnmatch(key, pattern) for pattern in config.exclude):
                continue
            sensitive = other_machine and any(fnmatch.fnmatch(key, p) for p in config.machine_sensitive)
            if key not in new:  # on another machine a row keyed by its own scores (llm.json) moves with them
                out.append(Difference(key, old[key], None, 0.0, "machine" if sensitive else "missing"))
            elif key not in old:
                out.append(Difference(key, None, new[key], 0.0, "new"))
            else:
                tol = tolerance_for(key, old[key], config)
                a, b = old[key], new[key]
                same = (math.isnan(a) and math.isnan(b)) or (not math.isnan(a) and not math.isnan(b) and abs(b - a) <= tol)
                status = "ok" if same else "changed"
                if status == "changed" and sensitive:
                    tol = machine_tolerance(key, old, config)
                    status = "machine" if not math.isnan(a) and not math.isnan(b) and abs(b - a) <= tol else "changed"
                out.append(Difference(key, a, b, tol, status))
    return out
