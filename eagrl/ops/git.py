"""Running git in a repository: its output, or a :class:`~benchmark.config.ConfigError` naming the command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmark.config import ConfigError


def run_git(root: Path, *args: str) -> str:
    """The standard output of ``git -C root <args>``; raises ConfigError with git's message when it fails."""
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}")
    return result.stdout
