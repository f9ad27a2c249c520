"""A check shared by the stage tests: outputs carry no wall-clock time (their hashes must not change from run
to run, or DVC re-runs everything downstream); timings belong in the log and ``results/runtime.md``."""

from __future__ import annotations

from typing import Any

TIMING = ("seconds", "per_second", "runtime", "step_time", "started", "finished_at", "timestamp")


def timing_keys(data: Any, path: str = "") -> list[str]:
    """Every key (dotted path) of a JSON-like value whose name says it holds a time or a speed."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if any(word in str(key).lower() for word in TIMING):
                found.append(where)
            found += timing_keys(value, where)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += timing_keys(value, f"{path}[{i}]")
    return found
