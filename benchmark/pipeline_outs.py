"""The outputs the current pipeline declares, so that reports read no output of a stage that no longer exists.

DVC never deletes the outputs of a stage that leaves ``dvc.yaml`` (a profile switch, a shorter method list):
they stay on disk, and a report that globs for metrics files or run folders would count them as if this
pipeline had written them. The reports therefore keep only paths inside an ``outs`` path of a stage of the
current ``dvc.yaml`` (read through DVC's own index, with params interpolated; this works inside a running
``dvc repro``), and log each path they leave out with the fix: delete it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from benchmark.runtime import LOGGER


@functools.lru_cache(maxsize=8)
def _outs(root: str) -> tuple[str, ...] | None:
    if not (Path(root) / "dvc.yaml").is_file() or not (Path(root) / ".dvc").is_dir():
        return None
    from dvc.repo import Repo

    with Repo(root) as repo:
        return tuple(sorted(Path(out.fs_path).resolve().relative_to(root).as_posix() for out in repo.index.outs))


def declared_outs(root: str | Path = ".") -> list[str] | None:
    """The ``outs`` of every stage of ``root``'s ``dvc.yaml``, relative POSIX paths; None without a DVC project."""
    outs = _outs(str(Path(root).resolve()))
    return None if outs is None else list(outs)


def is_declared(relative: str, outs: Iterable[str]) -> bool:
    """Whether the relative POSIX path ``relative`` is one of ``outs`` or lies inside one."""
    return any(relative == out or relative.startswith(out.rstrip("/") + "/") for out in outs)


def declared_only(paths: Iterable[Path], project: str | Path = ".") -> list[Path]:
    """``paths`` without those outside every declared output of ``project``'s pipeline (each one logged).

    Without a DVC project, and for paths outside the project, every path is kept.
    """
    paths = list(paths)
    outs = declared_outs(project)
    if outs is None:
        return paths
    root = Path(project).resolve()
    kept = []
    for path in paths:
        try:
            relative = Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            kept.append(path)
            continue
        if is_declared(relative, outs):
            kept.append(path)
        else:
            LOGGER.warning("report: not read: %s is no output of the current dvc.yaml (a removed stage, or another "
                           "profile's); delete it", relative)
    return kept


def persisted_outs(root: str | Path = ".") -> list[str]:
    """The ``outs`` marked ``persist: true`` in ``root``'s ``dvc.yaml`` (relative POSIX paths; [] without a DVC
    project): ``dvc repro --force`` keeps them, so a stage that resumes from them (the MCTS search) does less
    work than on a clean clone."""
    root = Path(root).resolve()
    if not (root / "dvc.yaml").is_file() or not (root / ".dvc").is_dir():
        return []
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return sorted(Path(out.fs_path).resolve().relative_to(root).as_posix() for out in repo.index.outs
                      if out.persist)
