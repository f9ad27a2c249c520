"""Scratch copies of the working tree: making one, the environment of its commands, and running a profile in it.

The code being tested (tracked and untracked-but-not-ignored files, committed or not) is copied; the user's
params.yaml, results and DVC cache are never touched. Used by ``eagrl regress --profile`` and ``eagrl tjh-tables``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmark.config import ConfigError
from benchmark.paths import RESULTS
from eagrl.ops.git import run_git


def copy_worktree(root: Path, target: Path) -> int:
    """Copy the repository's tracked and untracked-but-not-ignored files into ``target``; returns the count."""
    names = [n for n in run_git(root, "ls-files", "-co", "--exclude-standard", "-z").split("\0") if n]
    copied = 0
    for name in names:
        source = root / name
        if source.is_file() and not source.is_symlink():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            copied += 1
    return copied


def scratch_env(workdir: Path) -> dict[str, str]:
    """Environment of commands run in a scratch copy: this interpreter's tools first on PATH, and the scratch
    copy's code first on PYTHONPATH (an editable install would otherwise import the original checkout's)."""
    bin_dir = str(Path(sys.executable).parent)
    pythonpath = os.pathsep.join(p for p in (str(workdir), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYTHONPATH": pythonpath,
            "DVC_NO_ANALYTICS": "1"}


def make_scratch_copy(root: Path, workdir: Path) -> int:
    """Copy the working tree into the empty (or new) ``workdir`` without its ``results/``, so that every
    result there comes from the scratch run; returns the number of files copied."""
    if workdir.exists() and any(workdir.iterdir()):
        raise ConfigError(f"{workdir}: scratch folder is not empty; remove it or pass another --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    count = copy_worktree(root, workdir)
    shutil.rmtree(workdir / RESULTS, ignore_errors=True)
    return count


def run_profile(root: Path, profile: str, workdir: Path, out=sys.stdout) -> Path:
    """Run the whole pipeline under ``profile`` in a fresh copy of the working tree at ``workdir``."""
    count = make_scratch_copy(root, workdir)
    print(f"regress: copied {count} files to {workdir}; profile {profile}", file=out, flush=True)
    bin_dir = str(Path(sys.executable).parent)
    env = scratch_env(workdir)
    for command in (["git", "init", "-q"], [str(Path(bin_dir) / "eagrl"), "configure", "--profile", profile],
                    [str(Path(bin_dir) / "dvc"), "repro", "--force"]):
        print(f"regress: $ {' '.join(command)}", file=out, flush=True)
        if subprocess.run(command, cwd=workdir, env=env).returncode != 0:
            raise ConfigError(f"`{' '.join(command)}` failed in {workdir} (its output is above); the scratch copy "
                              f"is kept for inspection")
    return workdir
