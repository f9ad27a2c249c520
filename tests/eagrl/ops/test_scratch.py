"""Scratch copies of the working tree: their commands import the copy's code."""

from __future__ import annotations

import subprocess
import sys

from eagrl.ops.scratch import scratch_env


def test_scratch_commands_import_the_scratch_copy(tmp_path):
    """An editable install points at the original checkout: the scratch copy's code must come first."""
    env = scratch_env(tmp_path)
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path)
    result = subprocess.run([sys.executable, "-c", "import sys; print(sys.path[1])"], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == str(tmp_path)
