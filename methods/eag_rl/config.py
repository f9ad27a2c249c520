"""Every ``eag_rl.*`` section of params.yaml as a typed dataclass, and the loaders of the two stages' sections.

Stage 1 (:mod:`methods.eag_rl.stage1`): ``eag_rl.search`` (:class:`SearchConfig`), ``eag_rl.proposer``
(:class:`ProposerConfig`), ``eag_rl.distill`` (:class:`DistillConfig`) and ``eag_rl.sft`` (:class:`SFTStageConfig`),
read together with ``eag_rl.mcts`` and ``eag_rl.reward`` by :func:`load_stage1_config`. Stage 2
(:mod:`methods.eag_rl.rl`): ``eag_rl.rl`` (:class:`RLSection`, :func:`load_rl_section`) and its ``train`` settings
(:class:`RLConfig`). ``eag_rl.mcts`` (:class:`~methods.eag_rl.mcts.MCTSConfig`) and ``eag_rl.reward``
(:class:`~methods.eag_rl.rewards.RewardConfig`) stay beside the search and the reward they specify.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmark.config import ConfigError, ParamsSource, from_mapping, load_params, option
from methods.eag_rl.mcts import MCTSConfig
from methods.eag_rl.rewards import RewardConfig

SECTION = "eag_rl"


# ------------------------------------------------------------------------------------------ stage 1
@dataclass
class SearchConfig:
    """Which patients stage 1 searches and which expert guides it (``eag_rl.search``)."""

    expert: str = option("concare", help="Expert whose per-patient top-k features guide the search and the reward (any of experts.models).")
    n_patients: int = option(64, minimum=0, help="Train-split patients searched per task (seeded subset; 0 = all). The SFT set is drawn from them.")
    balance: bool = option(True, help="Draw the searched patients with as many positives as negatives.")
    seed: int = option(42, help="Seed of the patient subset.")


@dataclass
class ProposerConfig:
    """How candidate steps are sampled (``eag_rl.proposer``)."""

    teacher: str | None = option(None, help="A local Hugging Face model directory used as trajectory generator instead of the backbone (the released code allows a stronger model); null = self-distillation.")
    temperature: float = option(0.8, help="Sampling temperature of candidate steps (diversity among siblings).")
    top_p: float = option(0.95, help="Nucleus mass of candidate sampling.")
    step_tokens: int = option(32, help="Tokens generated at most for one (subquestion, answer) step.")
    final_tokens: int = option(24, help="Tokens generated at most for the final step (important features + answer).")
    scaffold: bool = option(True, help="The search writes the QD tags and the model fills each slot (methods/eag_rl/proposer.py): every trajectory is well formed. false = the model writes the tags itself.")
    expert_hint: bool = option(False, help="Show the proposer the guiding expert's top-k features for the patient (one line after the answer instructions, see expert_hint_text); the SFT set pairs the trajectories with the plain prompt, so the policy learns to find those features without the hint. false = the expert guides through the reward only.")


@dataclass
class DistillConfig:
    """Filter and balancing settings (params.yaml section ``eag_rl.distill``)."""

    min_confidence: float = option(0.05, help="Keep trajectories whose |ŷ − 0.5| is at least this, on the correct side.")
    min_alignment: float = option(0.2, help="Keep trajectories whose R_att (IoU with the expert top-k) is at least this.")
    target_positives: int = option(32, help="Positive patients sampled at most.")
    negatives_per_positive: float = option(1.0, help="Negative patients sampled per positive taken.")
    trajectories_per_patient: int = option(2, help="Trajectories per sampled patient in the SFT set.")
    seed: int = option(42, help="Seed of the patient sampling.")


@dataclass
class SFTStageConfig:
    """Stage-1 SFT on the kept trajectories (``eag_rl.sft``); LoRA settings are ``llm.lora``."""

    max_steps: int = option(60, minimum=1, help="Optimiser steps.")
    batch_size: int = option(8, minimum=1, help="Sequences per step.")
    gradient_accumulation_steps: int = option(1, minimum=1, help="Micro-batches per optimiser step.")
    learning_rate: float = option(2.0e-3, help="AdamW learning rate of the LoRA weights.")
    warmup_steps: int = option(10, help="Linear warm-up steps.")
    max_length: int = option(768, help="Tokens per sequence at most (prompt + trajectory).")
    seed: int = option(42, help="Seed of the adapters' initialisation and the data order.")


@dataclass
class Stage1Config:
    """Everything stage 1 reads from params.yaml."""

    search: SearchConfig
    proposer: ProposerConfig
    mcts: MCTSConfig
    reward: RewardConfig
    distill: DistillConfig
    sft: SFTStageConfig


def load_stage1_config(params: ParamsSource = "params.yaml") -> Stage1Config:
    """The stage-1 sub-sections of ``eag_rl`` (each optional; defaults where absent)."""
    section = load_params(params).get(SECTION) or {}
    where = f"{params}: {SECTION}"
    parts = {name: from_mapping(cls, section.get(name), f"{where}.{name}") for name, cls in (
        ("search", SearchConfig), ("proposer", ProposerConfig), ("mcts", MCTSConfig), ("reward", RewardConfig),
        ("distill", DistillConfig), ("sft", SFTStageConfig))}
    return Stage1Config(**parts)


# ------------------------------------------------------------------------------------------ stage 2
def _option(default: Any, help: str, minimum: float | None = None) -> Any:  # noqa: A002 - positional help keeps the field list readable
    return option(default, help=help, minimum=minimum)


@dataclass
class RLConfig:
    """GRPO settings of one stage-2 run (``eag_rl.rl.train``; a variant overrides single fields)."""

    family: Literal["eag_rl", "rl", "ablation"] = _option(
        "ablation", "Result-table family of the variant: 'eag_rl' (the full method), 'rl' (outcome-only GRPO / DAPO) or 'ablation'.")
    initial_policy: str = _option(
        "stage1", "'stage1' = the stage-1 SFT adapter models/llm/<dataset>/wo_stage2/<task>/adapter/ (trained further); 'base' = the backbone with fresh LoRA adapters (llm.lora); or a path to a PEFT adapter folder.")
    expert: str = _option("", "Expert whose per-patient top-k features R_att rewards (models/experts/<dataset>/<expert>/<task>/importance_train.jsonl); '' = stage 1's expert (eag_rl.search.expert, ConCare by default).")
    reward: dict[str, Any] = _option({}, "Overrides of the shared reward settings eag_rl.reward (e.g. {use_attention: false} or {weighting: released}).")
    n_train: int = _option(128, "Training patients: a seeded subset of the train split (0 = all). Steps × prompts_per_generation / num_iterations patients are actually visited.", minimum=0)
    balance: bool = _option(True, "Draw the training subset with as many positives as negatives (the cohorts are 20-30 % positive; an imbalanced set rewards always answering 'low risk').")
    num_generations: int = _option(4, "G: completions sampled per patient (the group of the group-relative advantage and of ε(τ)'s 'group' scope).", minimum=2)
    prompts_per_generation: int = _option(1, "Patients per generation batch (batch = prompts_per_generation × num_generations completions).", minimum=1)
    micro_batch_size: int = _option(0, "Completions per forward/backward pass (gradient accumulation over the generation batch; 0 = the whole batch at once). Only memory and floating-point summation order change: one optimiser step still uses the whole batch. Must divide prompts_per_generation × num_generations.", minimum=0)
    steps_per_generation: int = _option(1, "Optimiser steps each generation batch is split into (TRL steps_per_generation; PPO's minibatches): the batch is generated once, shuffled and cut into this many slices, one optimiser step each, and the μ iterations repeat the pass. 1 = one step on the whole batch. Larger values generate less often (one batched generate call for several steps) and let the policy move between the slices, so the clip acts. Must divide prompts_per_generation × num_generations.", minimum=1)
    num_iterations: int = _option(3, "μ: passes over each generation batch (each pass = steps_per_generation optimiser steps). ≥ 2 is needed for any clip (ε(τ) included) to act: at μ = 1 the ratio π/π_old is identically 1.", minimum=1)
    max_steps: int = _option(201, "Optimiser steps (generation batches = max_steps / num_iterations). Sized for the testbed LM on 2 CPU cores: 67 generation batches of μ = 3 steps.", minimum=1)
    learning_rate: float = _option(1e-3, "AdamW learning rate of the LoRA weights (constant after warm-up). High, so that the ratio moves enough for any clip to act within a CPU-sized run.")
    lr_scheduler: str = _option("constant_with_warmup", "transformers learning-rate schedule name.")
    warmup_steps: int = _option(0, "Linear warm-up steps.")
    weight_decay: float = _option(0.0, "AdamW weight decay.")
    max_grad_norm: float = _option(1.0, "Gradient-norm clip.")
    beta: float = _option(0.04, "β_KL: weight of the KL penalty to the initial policy (0 = none, no reference forward).")
    temperature: float = _option(1.0, "Sampling temperature of the training completions (GRPO samples at 1.0).")
    top_p: float = _option(1.0, "Nucleus mass of the training completions.")
    max_completion_length: int = _option(80, "Tokens generated at most per training completion (a cut answer is usually unparsable and gets the penalty).", minimum=1)
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = _option(
        "grpo", "TRL loss aggregation: 'grpo' = per-sequence token mean, then batch mean; 'dapo' = token-level mean over the batch.")
    scale_rewards: Literal["group", "batch", "none"] = _option("none", "Advantage scaling by the reward std of the group (GRPO), the batch, or none (Dr. GRPO). none: dividing by the std of a group of near-identical rewards blows their differences up to ±1 (docs/eag-rl.md).")
    advantage_aggregation: Literal["sum_then_normalize", "normalize_then_sum"] = _option(
        "sum_then_normalize", "How the outcome reward and R_att form the advantage (TRL multi_objective_aggregation): 'sum_then_normalize' = the composite reward λ·R_cls + (1−λ)·R_att, then group-normalised (the paper's formula); 'normalize_then_sum' = each part normalised within its group, then λ-weighted (GDPO), so that R_att's share of the advantage is (1−λ) whatever the spread of the log-likelihood. Outcome-only variants have one part: both are the same.")
    epsilon: float = _option(0.2, "Lower clip ε_low: the ratio is clipped below at 1 − ε_low (all variants: 0.2).")
    epsilon_high: float = _option(0.2, "Fixed upper clip when adaptive_clip is false (GRPO 0.2, DAPO clip-higher 0.28).")
    adaptive_clip: bool = _option(True, "Use the trajectory-specific upper clip ε(τ) (EAG-RL) instead of epsilon_high.")
    eps_min: float = _option(0.2, "ε(τ) for the lowest span entropy of its scope.")
    eps_max: float = _option(0.4, "ε(τ) for the highest span entropy of its scope.")
    eps_scope: Literal["group", "batch"] = _option("group", "Min-max normalisation of span entropies over the G completions of one patient ('group', the set GRPO's advantages are relative to) or over the whole generation batch ('batch').")
    measure_span_entropy: bool = _option(False, "Log <Important Features> span entropies also for fixed-clip variants (one extra forward per generation batch).")
    dynamic_sampling: bool = _option(False, "DAPO dynamic sampling: replace groups whose rewards do not vary with groups of new patients.")
    dynamic_sampling_rounds: int = _option(3, "Generation rounds per batch at most under dynamic sampling (then the batch is filled with zero-variance groups).")
    dynamic_sampling_tolerance: float = _option(1e-6, "A group's rewards 'vary' when max − min exceeds this.")
    mask_truncated_completions: bool = _option(False, "Exclude completions cut at max_completion_length from the loss (DAPO's overlong filtering).")
    use_vllm: bool = _option(False, "Generate the training completions with vLLM (TRL's GRPOConfig.use_vllm) instead of transformers' generate: needs CUDA and `pip install -e \".[gpu]\"`. Scoring, ε(τ), dynamic sampling and the loss stay this suite's (docs/scaling.md).")
    vllm_mode: Literal["colocate", "server"] = _option("colocate", "'colocate' = vLLM inside each training process, sharing its GPU (vllm_gpu_memory_utilization); 'server' = a separate `trl vllm-serve` process on other GPUs (vllm_server_base_url).")
    vllm_server_base_url: str = _option("", "URL of the `trl vllm-serve` server in server mode, e.g. http://10.0.0.2:8000 ('' = TRL's default host and port).")
    vllm_gpu_memory_utilization: float = _option(0.3, "Share of the GPU vLLM may take in colocate mode (TRL's default 0.3); the trainer keeps the rest.")
    vllm_tensor_parallel_size: int = _option(1, "GPUs one colocated vLLM engine spans (must divide launch.processes).", minimum=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _option(
        "auto", "Weights during RL: 'auto' = float32 on CPU (no bf16 on CPU: log-ratios near 1 need the precision), llm.backbone.dtype on a GPU (then also bf16 autocast).")
    device: str = _option("auto", "'auto' (CUDA when available), 'cpu' or 'cuda'. CPU threads: llm.threads, as in every LLM stage.")
    seed: int = _option(42, "Seed of the training subset, LoRA initialisation, sampling and data order (each run of eag_rl.rl.seeds replaces it).")
    n_seeds: int = _option(0, "How many of eag_rl.rl.seeds this variant trains, the first ones (0 = all of them).")
    progress: bool = _option(True, "Progress bars (stderr).")


@dataclass
class RLSection:
    """The ``eag_rl.rl`` section: which runs the pipeline makes, shared settings, variants."""

    pairs: list[dict[str, str]] = _option(
        [{"dataset": "synthetic_icu", "task": "mortality"}, {"dataset": "synthetic_icu", "task": "readmission"},
         {"dataset": "synthetic_ward", "task": "mortality"}],
        "(dataset, task) pairs trained (the DVC matrix 'pair'; stage names rl@pair<i>-<variant>).")
    train: RLConfig = option(default_factory=RLConfig, help="Settings shared by every variant.")
    variants: dict[str, dict[str, Any]] = _option({}, "Variant name -> overrides of 'train' (the DVC matrix 'variant').")
    seeds: list[int] = _option([42], "Training seeds: every variant trains one run per seed (the first n_seeds of them, see train.n_seeds) in its stage; the first seed's run is the variant's row, the others go to seed<k>/ beside it and every table reports the spread.")
    seed_processes: int = _option(1, "Seeds of one stage trained at once, each in its own process (concurrent.futures, spawn) with torch threads = max(1, llm.threads // seed_processes); 1 = one after the other with llm.threads. A run's numbers depend on its thread count, not on what runs beside it.")


DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "eag_rl": {"family": "eag_rl"},
    "grpo": {"family": "rl", "reward": {"use_attention": False}, "adaptive_clip": False, "epsilon_high": 0.2,
             "loss_type": "grpo"},
    "dapo": {"family": "rl", "reward": {"use_attention": False}, "adaptive_clip": False, "epsilon_high": 0.28,
             "loss_type": "dapo", "dynamic_sampling": True, "beta": 0.0},
    "wo_stage1": {"initial_policy": "base"},
    "wo_ratt": {"reward": {"use_attention": False}},
    "wo_eps": {"adaptive_clip": False, "epsilon_high": 0.2},
    "released_weights": {"reward": {"weighting": "released"}},
}


def load_rl_section(params: dict[str, Any], source: str | Path = "params.yaml") -> RLSection:
    """``eag_rl.rl`` of a params mapping as a checked :class:`RLSection` (code defaults where absent)."""
    node = (params.get(SECTION) or {}).get("rl")
    if node is not None and not isinstance(node, dict):
        raise ConfigError(f"{source}: '{SECTION}.rl' must be a mapping")
    section = from_mapping(RLSection, node, f"{source}: {SECTION}.rl")
    if not section.variants:
        section.variants = {k: dict(v) for k, v in DEFAULT_VARIANTS.items()}
    for i, pair in enumerate(section.pairs):
        if not isinstance(pair, dict) or set(pair) != {"dataset", "task"}:
            raise ConfigError(f"{source}: {SECTION}.rl.pairs[{i}] must be a mapping with keys dataset and task, "
                              f"got {pair!r}")
    return section

