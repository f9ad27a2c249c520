"""Where EAG-RL's stages read and write: stage 1's search outputs and policy, stage 2's runs, the experts' importance.

* ``outputs/eag_rl/<dataset>/<task>/mcts/`` — stage 1's search (:func:`task_dir`);
* ``models/eag_rl/<dataset>/<task>/stage1/`` — the stage-1 LoRA policy, stage 2's start (:func:`policy_dir`);
* ``models/rl/<dataset>/<task>/<variant>/`` — one stage-2 variant (:func:`rl_dir`), outside stage 1's outputs so
  that DVC outs never overlap;
* ``models/experts/<dataset>/<expert>/<task>/importance_<split>.jsonl`` — the guiding expert's per-patient top-k
  features (:func:`importance_path`).
"""

from __future__ import annotations

from pathlib import Path

OUTPUT_ROOT = Path("outputs/eag_rl")
POLICY_ROOT = Path("models/eag_rl")  # stage 1 writes its policy here (models/eag_rl/<dataset>/<task>/stage1)
RL_ROOT = Path("models/rl")  # stage 2's outputs (outside stage 1's outputs, so DVC outs never overlap)
EXPERT_ROOT = Path("models/experts")


def task_dir(dataset: str, task: str, root: str | Path = OUTPUT_ROOT) -> Path:
    """Stage-1 outputs of one (data set, task)."""
    return Path(root) / dataset / task / "mcts"


def policy_dir(dataset: str, task: str, root: str | Path = POLICY_ROOT) -> Path:
    """The stage-1 LoRA adapter of one (data set, task): ``models/eag_rl/<dataset>/<task>/stage1``."""
    return Path(root) / dataset / task / "stage1"


def rl_dir(dataset: str, task: str, variant: str, root: str | Path = RL_ROOT) -> Path:
    """Outputs of one variant: ``models/rl/<dataset>/<task>/<variant>`` (its first seed's run; the others in
    ``seed<k>/`` inside)."""
    return Path(root) / dataset / task / variant


def importance_path(dataset: str, expert: str, task: str, split: str = "train", root: str | Path = EXPERT_ROOT) -> Path:
    """The expert importance JSONL of one split (``methods.experts.stage`` writes it)."""
    from methods.experts.stage import expert_dir

    return expert_dir(dataset, expert, task, root=root) / f"importance_{split}.jsonl"
