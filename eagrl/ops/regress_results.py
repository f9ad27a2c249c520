"""The results files ``eagrl regress`` compares: read from git or from a folder, and flattened to numbers.

Each JSON file is flattened to ``key -> number`` (see :mod:`eagrl.ops.regress`, "What is compared").
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmark.config import ConfigError
from eagrl.ops.git import run_git
from eagrl.ops.regress_config import MACHINE_FILE, RegressConfig


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _row_key(row: dict[str, Any]) -> str:
    parts = [str(v) for v in row.values() if isinstance(v, (str, bool)) or v is None]
    return ",".join(parts)


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """``{path: number}`` of every numeric leaf of a JSON value (see the module docstring for the keys)."""
    out: dict[str, float] = {}
    for key, value in _walk(data, prefix):
        out[key] = float(value)
    return out


def _walk(data: Any, prefix: str) -> Iterator[tuple[str, float]]:
    join = (lambda k: f"{prefix}/{k}") if prefix else (lambda k: str(k))
    if _is_number(data):
        yield prefix, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, join(key))
    elif isinstance(data, list):
        keys = [_row_key(item) if isinstance(item, dict) else "" for item in data]
        unique = all(keys) and len(set(keys)) == len(keys)
        for i, item in enumerate(data):
            yield from _walk(item, join(keys[i] if unique else f"[{i}]"))



def committed_results(root: str | Path, config: RegressConfig) -> dict[str, Any]:
    """``{file name: parsed JSON}`` of the results files committed at ``config.ref``."""
    root = Path(root)
    run_git(root, "rev-parse", "--verify", f"{config.ref}^{{commit}}")
    names = run_git(root, "ls-tree", "-r", "--name-only", config.ref, "--", config.results).splitlines()
    out = {}
    for name in names:
        relative = Path(name).relative_to(config.results).as_posix()
        if Path(relative).name == MACHINE_FILE:
            continue
        if fnmatch.fnmatch(relative, config.files) and not _excluded(relative, config):
            out[relative] = parse_json(run_git(root, "show", f"{config.ref}:{name}"), f"{config.ref}:{name}")
    return out


def fresh_results(root: str | Path, config: RegressConfig, top_level_only: bool = False) -> dict[str, Any]:
    """``{file name: parsed JSON}`` of the results files in the working tree (``top_level_only``: not in
    sub-folders, which hold other profiles' references)."""
    folder = Path(root) / config.results
    out = {}
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        relative = path.relative_to(folder).as_posix()
        if top_level_only and "/" in relative:
            continue
        if Path(relative).name == MACHINE_FILE:
            continue
        if path.is_file() and fnmatch.fnmatch(relative, config.files) and not _excluded(relative, config):
            out[relative] = parse_json(path.read_text(), str(path))
    return out



def parse_json(text: str, where: str) -> Any:
    """The parsed JSON of ``text``; raises ConfigError naming ``where`` when it is not valid JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where}: not valid JSON ({error})") from None


def _excluded(name: str, config: RegressConfig) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in config.exclude)
