"""Where EAG-RL's stage 1 writes its search: ``outputs/eag_rl/<dataset>/<task>/mcts/`` (:func:`task_dir`).

The other EAG-RL paths are the harness's (:mod:`benchmark.paths`): the stage-1 policy
(:func:`~benchmark.paths.stage1_policy_dir`), the stage-2 runs (:func:`~benchmark.paths.rl_run_dir`) and the
guiding expert's importance (:func:`~benchmark.paths.importance_path`).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.paths import EAG_RL_OUTPUTS


def task_dir(dataset: str, task: str, root: str | Path = EAG_RL_OUTPUTS) -> Path:
    """Stage-1 outputs of one (data set, task): ``<root>/<dataset>/<task>/mcts``."""
    return Path(root) / dataset / task / "mcts"
