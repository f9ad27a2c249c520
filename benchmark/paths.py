"""Where every stage reads and writes: the artifact roots, and one function per path shape built from them.

All paths are relative to the repository root (the stages run there). A trained model and an evaluation share
one shape, ``<dataset>/<method>/<task>``, so that a stage's inputs and outputs are spelled the same for every
method (the robustness and cross-domain stages are one DVC matrix over methods because of it)::

    data/cohorts/<dataset>/                                 prepare                          cohort_dir
    models/
        experts/<dataset>/<model>/<task>/                   train_expert (model.pt, ...)     expert_dir
            .../importance_<split>.jsonl                    the expert's top-k features      importance_path
        hybrid/<dataset>/<model>/<task>/                    train_hybrid (same layout)       expert_dir(root=HYBRID)
        backbone/  testbed/                                 build_backbone, pretrain_testbed
        llm/<dataset>/<method>/<task>/                      a trained LLM method             llm_model_dir
            .../adapter/                                    its LoRA weights                 adapter_dir
                 label_sft                                  label_sft
                 wo_stage2                                  sft_stage1: EAG-RL's stage-1 policy (stage 2's start)
                 <variant>                                  rl: one stage-2 variant (its first seed; the
                                                            others in seed<k>/, each with its adapter/)
    outputs/
        llm/<dataset>/<method>/<task>/                      llm_eval, eval_stage1            llm_output_dir
        eag_rl/<dataset>/<task>/mcts/                       EAG-RL stage-1 search            search_dir
        robustness/<dataset>/<method>/<task>/<condition>/   robustness (DL: <group>/<model>) robustness_dir
        cross_domain/<source>_to_<target>/<method>/<task>/  cross_domain                     cross_domain_dir
    results/                                                the reports' tables and plots

Every function takes a ``root`` (default: the root above) so that a test or a scratch copy can place the tree
elsewhere. This module is the harness layer's: it imports nothing from ``methods/`` or ``eagrl/``.
"""

from __future__ import annotations

from pathlib import Path

COHORTS = Path("data/cohorts")
RESULTS = Path("results")

MODELS = Path("models")
EXPERTS = MODELS / "experts"
HYBRID = MODELS / "hybrid"
BACKBONE = MODELS / "backbone"
TESTBED = MODELS / "testbed"
LLM_MODELS = MODELS / "llm"  # every trained LLM method: Label SFT, the stage-1 policy, each RL variant

OUTPUTS = Path("outputs")
LLM = OUTPUTS / "llm"
EAG_RL_OUTPUTS = OUTPUTS / "eag_rl"  # stage 1's search
ROBUSTNESS = OUTPUTS / "robustness"
CROSS_DOMAIN = OUTPUTS / "cross_domain"


def cohort_dir(dataset: str, root: str | Path = COHORTS) -> Path:
    """``<root>/<dataset>``: one data set's prepared cohort."""
    return Path(root) / dataset


def expert_dir(dataset: str, model: str, task: str | None = None, root: str | Path = EXPERTS) -> Path:
    """``<root>/<dataset>/<model>[/<task>]``: an expert's (or, with ``root=HYBRID``, a hybrid's) outputs."""
    folder = Path(root) / dataset / model
    return folder / task if task else folder


def importance_path(dataset: str, expert: str, task: str, split: str = "train", root: str | Path = EXPERTS) -> Path:
    """``<root>/<dataset>/<expert>/<task>/importance_<split>.jsonl``: an expert's per-patient top-k features."""
    return expert_dir(dataset, expert, task, root) / f"importance_{split}.jsonl"


def llm_model_dir(dataset: str, method: str, task: str | None = None, root: str | Path = LLM_MODELS) -> Path:
    """``<root>/<dataset>/<method>[/<task>]``: what a trained LLM method's stage wrote (its ``adapter/``, and for
    an RL variant its training curves and evaluation; further seeds in ``seed<k>/``)."""
    folder = Path(root) / dataset / method
    return folder / task if task else folder


def adapter_dir(dataset: str, method: str, task: str, root: str | Path = LLM_MODELS) -> Path:
    """``<root>/<dataset>/<method>/<task>/adapter``: the LoRA weights of a trained LLM method (its first seed)."""
    return llm_model_dir(dataset, method, task, root) / "adapter"


def search_dir(dataset: str, task: str, root: str | Path = EAG_RL_OUTPUTS) -> Path:
    """``<root>/<dataset>/<task>/mcts``: EAG-RL stage 1's expert-guided search of one (data set, task)."""
    return Path(root) / dataset / task / "mcts"


def llm_output_dir(dataset: str, method: str, task: str | None = None, root: str | Path = LLM) -> Path:
    """``<root>/<dataset>/<method>[/<task>]``: an LLM method's evaluation (a sub-folder per task)."""
    folder = Path(root) / dataset / method
    return folder / task if task else folder


def robustness_dir(dataset: str, method: str, task: str | None = None, root: str | Path = ROBUSTNESS) -> Path:
    """``<root>/<dataset>/<method>[/<task>]``: a method's robustness outputs, a sub-folder per condition (for
    the DL models ``method`` is their group, with ``<model>/<task>/<condition>`` below)."""
    folder = Path(root) / dataset / method
    return folder / task if task else folder


def cross_domain_dir(source: str, target: str, method: str, task: str, root: str | Path = CROSS_DOMAIN) -> Path:
    """``<root>/<source>_to_<target>/<method>/<task>``: ``method`` trained on ``source``, tested on ``target``."""
    return Path(root) / f"{source}_to_{target}" / method / task
