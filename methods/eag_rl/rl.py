"""Stage ``rl``: EAG-RL stage 2 (attention-aligned policy optimisation), its GRPO / DAPO baselines and ablations.

``eagrl rl DATASET TASK VARIANT`` trains one variant on one task with TRL's ``GRPOTrainer`` (subclassed in
:mod:`methods.eag_rl.rl_trainer`: ε(τ), dynamic sampling) and then evaluates the trained policy in the
Question-Decomposition format on the same test patients as every other LLM method.

Per training step: ``prompts_per_generation`` training patients (a seeded, class-balanced subset of the train
split) are rendered as QD prompts (:mod:`benchmark.serialize` + the chat template), ``num_generations``
completions are sampled per patient, each is scored with the composite reward R of
:mod:`methods.eag_rl.rewards` (the expert's top-k features come from the expert's importance file of the
train split), advantages are group-relative, and the clipped surrogate is optimised on LoRA weights for
``num_iterations`` steps per generation batch (μ ≥ 2: with μ = 1 the ratio is identically 1 and no clip
bound, ε(τ) included, has any effect). A KL penalty β to the initial policy is added (TRL's k3 estimator;
for a stage-1 start TRL keeps a frozen copy of the stage-1 adapter as the reference).

Variants (``eag_rl.rl.variants`` in params.yaml; each overrides fields of ``eag_rl.rl.train``)
------------------------------------------------------------------------------------------
=================  ============================================================================
``eag_rl``         composite reward (paper λ weighting) + adaptive upper clip ε(τ) ∈ [0.2, 0.4]
``grpo``           classification reward only, symmetric clip 0.2, ``loss_type: grpo``
``dapo``           classification reward only, clip 0.2 / 0.28, ``loss_type: dapo`` (token-level),
                   dynamic sampling (groups whose rewards do not vary are replaced), β = 0 as in DAPO
``wo_stage1``      EAG-RL from the base model (fresh LoRA) instead of the stage-1 policy
``wo_ratt``        EAG-RL without R_att (``reward.use_attention: false``)
``wo_eps``         EAG-RL with a fixed symmetric clip 0.2 instead of ε(τ)
``released_weights`` EAG-RL with the released code's reward weights 1.0 / 0.5 / 0.1
=================  ============================================================================

"w/o stage 2" is the stage-1 policy itself, evaluated by the stage-1 (SFT) stage. A variant with another
``expert`` (e.g. ``expert: gru``) is guidance from another expert (beyond the paper).

Outputs (``models/rl/<dataset>/<task>/<variant>/``)
--------------------------------------------------
* ``adapter/`` — the trained LoRA adapter (PEFT; load with ``load_backbone(config, adapter=...)``);
* ``curves.csv`` / ``curves.json`` — one row per optimiser step: reward and its parts, KL, entropy,
  ε(τ) statistics, span entropy, clip ratios (``dvc plots show ... -x step -y <column>``); not the trainer's
  timings (``step_time``, ``train_runtime``, ``*_per_second``: :func:`is_timing`), which go to the log.
  Generation-batch columns (reward, reward parts, ε(τ), span entropy, completion lengths, dynamic
  sampling) are those of the batch the step trained on: the μ steps of one batch repeat them;
* ``epsilon.csv`` — one row per trained trajectory (every variant): step, group, patient id, reward, R_att,
  parsed, advantage, span entropy and ε(τ) (where measured) (:data:`methods.eag_rl.rl_trainer.TRAJECTORY_COLUMNS`);
* ``predictions.csv`` — QD answers of the trained policy on the evaluation patients (``llm.evaluation``),
  in the predictions format of :mod:`benchmark.evaluate` (written by the LLM layer's ``evaluate_task``);
* ``metrics.json`` — :func:`benchmark.evaluate.evaluate` of those predictions (bootstrap mean/std/CI),
  the LLM layer's ``run`` block, a ``descriptor`` (:mod:`benchmark.descriptor`: method = the variant,
  family from the variant) and a ``training`` summary (steps, training patients, generation batches, final
  reward, device, dtype, threads);
* ``summary.json`` — the resolved configuration and the same ``training`` summary.

No output holds a wall-clock time (its hash would change on every run and DVC would re-run everything
downstream): load, training and evaluation times go to the stage's log, and ``results/runtime.md`` gives
each stage's wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from benchmark.config import ConfigError, describe, from_mapping, load_params, option, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.descriptor import MethodDescriptor
from benchmark.launch import in_launched_process, is_main_process
from benchmark.prepare import COHORT_ROOT, cohort_dir
from benchmark.runtime import (
    LOGGER,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    map_in_processes,
    seed_everything,
    start_stage,
)
from benchmark.seeds import seed_block as seed_block_of
from benchmark.seeds import seed_subdir
from methods.eag_rl.rewards import RewardConfig, component_weights
from methods.llm.config import LLMConfig, load_llm_config

SECTION = "eag_rl"
EAG_RL_ROOT = Path("models/eag_rl")  # stage 1 writes its policy here (models/eag_rl/<dataset>/<task>/stage1)
RL_ROOT = Path("models/rl")  # this stage's outputs (outside stage 1's outputs, so DVC outs never overlap)
EXPERT_ROOT = Path("models/experts")


# ------------------------------------------------------------------------------------------- config
def _option(default: Any, help: str, minimum: float | None = None) -> Any:  # noqa: A002 - positional help keeps the field list readable
    return option(default, help=help, minimum=minimum)


@dataclass
class RLConfig:
    """GRPO settings of one stage-2 run (``eag_rl.rl.train``; a variant overrides single fields)."""

    family: Literal["eag_rl", "rl", "ablation"] = _option(
        "ablation", "Result-table family of the variant: 'eag_rl' (the full method), 'rl' (outcome-only GRPO / DAPO) or 'ablation'.")
    initial_policy: str = _option(
        "stage1", "'stage1' = the stage-1 SFT adapter models/eag_rl/<dataset>/<task>/stage1/ (trained further); 'base' = the backbone with fresh LoRA adapters (llm.lora); or a path to a PEFT adapter folder.")
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


def resolve_variant(section: RLSection, variant: str, source: str | Path = "params.yaml") -> RLConfig:
    """The shared settings with ``variant``'s overrides applied (``reward`` overrides are merged key-wise)."""
    if variant not in section.variants:
        raise ConfigError(f"{source}: unknown RL variant '{variant}'; {SECTION}.rl.variants defines "
                          f"{sorted(section.variants)}")
    overrides = dict(section.variants[variant] or {})
    merged = to_mapping(section.train)
    merged["reward"] = {**merged.get("reward", {}), **(overrides.pop("reward", None) or {})}
    merged.update(overrides)
    return from_mapping(RLConfig, merged, f"{source}: {SECTION}.rl.variants.{variant}")


def variant_seeds(section: RLSection, config: RLConfig, source: str | Path = "params.yaml") -> list[int]:
    """The training seeds of a variant: the first ``n_seeds`` of ``eag_rl.rl.seeds`` (all when 0)."""
    if not section.seeds or len(set(section.seeds)) != len(section.seeds):
        raise ConfigError(f"{source}: {SECTION}.rl.seeds must be a non-empty list of distinct integers, got {section.seeds}")
    if config.n_seeds < 0 or config.n_seeds > len(section.seeds):
        raise ConfigError(f"{source}: n_seeds = {config.n_seeds} but {SECTION}.rl.seeds has {len(section.seeds)} seeds")
    return list(section.seeds[:config.n_seeds or len(section.seeds)])


def reward_config(params: dict[str, Any], config: RLConfig, source: str | Path = "params.yaml") -> RewardConfig:
    """The shared ``eag_rl.reward`` settings (stage 1's) with the variant's ``reward`` overrides."""
    base = (params.get(SECTION) or {}).get("reward") or {}
    if not isinstance(base, dict):
        raise ConfigError(f"{source}: '{SECTION}.reward' must be a mapping")
    return from_mapping(RewardConfig, {**base, **config.reward}, f"{source}: {SECTION}.reward (+ variant overrides)")


# -------------------------------------------------------------------------------------------- paths
def stage1_dir(dataset: str, task: str, root: str | Path = EAG_RL_ROOT) -> Path:
    """Where stage 1 leaves its SFT adapter: ``models/eag_rl/<dataset>/<task>/stage1``."""
    return Path(root) / dataset / task / "stage1"


def rl_dir(dataset: str, task: str, variant: str, root: str | Path = RL_ROOT) -> Path:
    """Outputs of one variant: ``models/rl/<dataset>/<task>/<variant>`` (its first seed's run; the others in
    ``seed<k>/`` inside)."""
    return Path(root) / dataset / task / variant


def guiding_expert(params: dict[str, Any], config: RLConfig) -> str:
    """The variant's ``expert``, else stage 1's (``eag_rl.search.expert``), else ConCare."""
    if config.expert:
        return config.expert
    return str(((params.get(SECTION) or {}).get("search") or {}).get("expert") or "concare")


def importance_path(dataset: str, expert: str, task: str, split: str = "train", root: str | Path = EXPERT_ROOT) -> Path:
    """The expert importance JSONL of one split (``methods.experts.stage`` writes it)."""
    from methods.experts.stage import expert_dir

    return expert_dir(dataset, expert, task, root=root) / f"importance_{split}.jsonl"


def expert_top_k(path: Path, ids: list[str]) -> list[list[str]]:
    """The expert's ``top_k`` of each patient id, in the order of ``ids``; missing patients are an error."""
    from methods.experts.importance import read_importance

    try:
        records = {str(r["id"]): list(r["top_k"]) for r in read_importance(path)}
    except FileNotFoundError as error:
        raise ConfigError(f"{error} (train the expert first: `dvc repro train_expert`, or change "
                          f"{SECTION}.rl.train.expert)") from None
    missing = [i for i in ids if i not in records]
    if missing:
        raise ConfigError(f"{path}: no importance for {len(missing)} training patients (e.g. {missing[:3]}); "
                          f"the expert was trained on another cohort - re-run its stage")
    return [records[i] for i in ids]


# -------------------------------------------------------------------------------------- data set
def training_rows(cohort: Cohort, task: str, config: RLConfig, tokenizer, llm: LLMConfig,
                  top_k_path: Path) -> list[dict[str, Any]]:
    """One row per training patient: rendered QD prompt, label, the expert's top-k, id."""
    from methods.llm.prompting import rendered_prompts, stratified_indices

    train = cohort.subset("train")
    subset = train.select(stratified_indices(train.label(task), config.n_train, config.seed, config.balance))
    rendered = rendered_prompts(tokenizer, subset, task, "qd", llm.prompt)
    ids = [str(i) for i in subset.ids]
    top_k = expert_top_k(top_k_path, ids)
    labels = subset.label(task)
    return [{"prompt": r.text, "label": int(y), "expert_top_k": k, "id": i}
            for r, y, k, i in zip(rendered, labels, top_k, ids, strict=True)]


# ------------------------------------------------------------------------------------------ model
def _device_and_dtype(config: RLConfig, llm: LLMConfig) -> tuple[str, str]:
    from methods.llm.backbone import resolve_device

    device = resolve_device(config.device)
    if config.dtype != "auto":
        return device, config.dtype
    from methods.llm.backbone import resolve_dtype

    return device, ("float32" if device == "cpu" else resolve_dtype(llm.backbone.dtype, device))


def load_policy(dataset: str, task: str, config: RLConfig, llm: LLMConfig, dtype: str, device: str,
                root: str | Path = EAG_RL_ROOT):
    """(model, tokenizer, peft_config or None): the initial policy of the variant.

    A stage-1 (or any) adapter is loaded trainable, and TRL keeps a frozen copy as the KL reference; a
    ``base`` start gets fresh LoRA adapters from ``llm.lora`` (TRL adds them; the reference is then the
    backbone with adapters disabled).
    """
    from methods.llm.backbone import BackboneError, load_backbone, lora_config

    backbone = dataclasses.replace(llm.backbone, dtype=dtype, device=device)
    if config.initial_policy == "base":
        model, tokenizer = load_backbone(backbone)
        return model, tokenizer, lora_config(llm.lora, model)
    adapter = stage1_dir(dataset, task, root) if config.initial_policy == "stage1" else Path(config.initial_policy)
    if not (adapter / "adapter_config.json").exists():
        raise BackboneError(f"{adapter}: no stage-1 adapter (adapter_config.json); run stage 1 first "
                            f"(`dvc repro` its sft stage) or set the variant's initial_policy to 'base'")
    model, tokenizer = load_backbone(backbone, adapter=adapter, trainable=True)
    return model, tokenizer, None


def micro_batches(config: RLConfig) -> tuple[int, int]:
    """(completions per forward/backward pass, passes per optimiser step) for one optimiser step of ``config``:
    the generation batch (prompts_per_generation × num_generations) cut into ``steps_per_generation`` slices."""
    batch = config.prompts_per_generation * config.num_generations
    if batch % config.steps_per_generation:
        raise ConfigError(f"{SECTION}.rl.train.steps_per_generation = {config.steps_per_generation} must divide the "
                          f"generation batch prompts_per_generation × num_generations = {batch}")
    step = batch // config.steps_per_generation
    micro = config.micro_batch_size or step
    if micro < 1 or step % micro:
        raise ConfigError(f"{SECTION}.rl.train.micro_batch_size = {config.micro_batch_size} must divide the completions "
                          f"of one optimiser step, prompts_per_generation × num_generations / steps_per_generation = "
                          f"{step} (or be 0 = all of them)")
    return micro, step // micro


def reward_functions(rewards: RewardConfig, config: RLConfig, vocabulary: Sequence[str]):
    """(TRL reward functions, their weights): the composite reward as one function, or under
    ``normalize_then_sum`` with R_att rewarded its outcome and attention parts as two (weights w_out, w_att)."""
    from methods.eag_rl.rl_trainer import CompositeReward

    if config.advantage_aggregation == "normalize_then_sum" and rewards.use_attention:
        return ([CompositeReward(rewards, vocabulary, name="outcome", part="outcome"),
                 CompositeReward(rewards, vocabulary, name="attention", part="attention", log_parts=False)],
                list(component_weights(rewards)))
    return [CompositeReward(rewards, vocabulary, name="composite")], [1.0]


def grpo_args(config: RLConfig, output_dir: str, device: str, dtype: str, reward_weights: Sequence[float] = (1.0,)):
    """The ``trl.GRPOConfig`` of a run (one generation batch per ``steps_per_generation × num_iterations``
    optimiser steps).

    With a ``micro_batch_size`` below the generation batch, each optimiser step accumulates gradients over
    the batch's micro-batches (TRL's ``steps_per_generation`` = ``gradient_accumulation_steps`` = their
    number): the batch is generated and scored once, as a whole (ε(τ) and dynamic sampling see whole groups).
    """
    from trl import GRPOConfig

    micro, passes = micro_batches(config)
    on_gpu = device.startswith("cuda")
    return GRPOConfig(
        output_dir=output_dir, max_steps=config.max_steps, per_device_train_batch_size=micro,
        gradient_accumulation_steps=passes, steps_per_generation=passes * config.steps_per_generation,
        num_generations=config.num_generations,
        num_iterations=config.num_iterations, learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, beta=config.beta, temperature=config.temperature, top_p=config.top_p,
        max_completion_length=config.max_completion_length, loss_type=config.loss_type,
        scale_rewards=config.scale_rewards, epsilon=config.epsilon, reward_weights=list(reward_weights),
        multi_objective_aggregation=config.advantage_aggregation if len(reward_weights) > 1 else "sum_then_normalize",
        epsilon_high=config.epsilon if config.adaptive_clip else config.epsilon_high,
        mask_truncated_completions=config.mask_truncated_completions, seed=config.seed, data_seed=config.seed,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=not config.progress,
        bf16=on_gpu and dtype == "bfloat16", fp16=on_gpu and dtype == "float16", use_cpu=not on_gpu,
        gradient_checkpointing=False, dataloader_num_workers=0, remove_unused_columns=False,
        log_completions=False, shuffle_dataset=True, **vllm_args(config))


def vllm_args(config: RLConfig) -> dict[str, Any]:
    """The vLLM fields of ``trl.GRPOConfig`` for ``config`` (none unless ``use_vllm``, so that TRL's defaults apply)."""
    if not config.use_vllm:
        return {}
    args: dict[str, Any] = {"use_vllm": True, "vllm_mode": config.vllm_mode,
                            "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization,
                            "vllm_tensor_parallel_size": config.vllm_tensor_parallel_size}
    if config.vllm_server_base_url:
        args["vllm_server_base_url"] = config.vllm_server_base_url
    return args


def build_trainer(model, tokenizer, rows: list[dict[str, Any]], reward, config: RLConfig, args, peft_config=None):
    """An :class:`~methods.eag_rl.rl_trainer.EAGRLTrainer` for ``rows`` with the variant's clip and sampling
    (``reward``: one TRL reward function or a list of them, weighted by ``args.reward_weights``)."""
    from datasets import Dataset

    from methods.eag_rl.rl_trainer import AdaptiveClip, CurveRecorder, DynamicSampling, EAGRLTrainer

    recorder = CurveRecorder()
    trainer = EAGRLTrainer(
        model=model, reward_funcs=list(reward) if isinstance(reward, (list, tuple)) else [reward], args=args, train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer, peft_config=peft_config, callbacks=[recorder],
        adaptive_clip=AdaptiveClip(config.eps_min, config.eps_max, config.eps_scope) if config.adaptive_clip else None,
        dynamic_sampling=(DynamicSampling(config.dynamic_sampling_rounds, config.dynamic_sampling_tolerance, config.seed)
                          if config.dynamic_sampling else None),
        measure_span_entropy=config.measure_span_entropy)
    return trainer, recorder


def save_adapter(trainer, folder: Path) -> None:
    """Save the trained ("default") adapter only: TRL's frozen "ref" copy is not part of the policy. Call it on
    every process; the main one writes (:func:`methods.llm.sft.save_trained_adapter`)."""
    from methods.llm.sft import save_trained_adapter

    save_trained_adapter(trainer, folder, selected_adapters=["default"])


# ------------------------------------------------------------------------------------- evaluation
def evaluate_policy(adapter: Path, cohort: Cohort, task: str, llm: LLMConfig, params_path: str | Path,
                    out: Path, expert_top_k: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """QD answers of backbone + ``adapter`` on the LLM evaluation patients → ``predictions.csv`` + metrics.

    Delegates to the LLM layer's :func:`methods.llm.evaluation.evaluate_task` with the ``qd`` method: the
    same patients (``llm.evaluation``), prompt rendering (``llm.prompt``), decoding (``llm.generation``) and
    length (``llm.methods.qd.max_new_tokens``) as the QD baseline, so paired tests against it apply. The
    caller replaces the descriptor (method = the RL variant). ``expert_top_k`` (id → the guiding expert's
    top-k on the evaluated split) adds the test-time alignment with the expert.
    """
    from methods.llm.evaluation import evaluate_task
    from methods.llm.generation import make_generator

    generator = make_generator(llm.generation, llm.backbone, adapter=adapter)
    metrics = evaluate_task(cohort, task, "qd", llm, generator, out, params_path, adapter, expert_top_k=expert_top_k)
    del generator
    gc.collect()
    return metrics


# ------------------------------------------------------------------------------------------ stage
# Curve columns that describe a generation batch; the μ optimiser steps trained on one batch share them.
BATCH_COLUMNS = ("reward", "rewards/", "reward_parts/", "frac_reward_zero_std", "eps_tau/", "span_entropy/",
                 "completions/", "dynamic_sampling/", "num_tokens")


def is_timing(column: str) -> bool:
    """A trainer log key that measures wall-clock time (TRL's ``step_time``, HF's ``train_runtime``, ``*_per_second``)."""
    return column == "step_time" or column.endswith(("_runtime", "_per_second"))


def _write_curves(folder: Path, rows: list[dict[str, float]]) -> None:
    """``curves.csv`` / ``curves.json``: one row per optimiser step (batch-level columns carried over the μ steps).

    Timing columns (:func:`is_timing`) are left out: they differ on every run.
    """
    frame = pd.DataFrame([{k: v for k, v in row.items() if not is_timing(k)} for row in rows])
    if not frame.empty:
        frame = frame.groupby("step", as_index=False).last()  # the final summary line repeats the last step
        batch = [c for c in frame.columns if c.startswith(BATCH_COLUMNS)]
        frame[batch] = frame[batch].ffill()  # so that `dvc plots` draws connected lines
    atomic_write_text(folder / "curves.csv", frame.to_csv(index=False))
    atomic_write_json(folder / "curves.json", frame.replace({np.nan: None}).to_dict(orient="records"))


def run_rl(dataset: str, task: str, variant: str, params_path: str | Path = "params.yaml",
           cohorts: str | Path = COHORT_ROOT, experts: str | Path = EXPERT_ROOT, stage1_root: str | Path = EAG_RL_ROOT,
           out_root: str | Path = RL_ROOT, max_steps: int | None = None, evaluate_after: bool = True) -> Path:
    """Train ``variant`` on ``dataset``/``task`` in each of its seeds and evaluate every run (outputs: module docstring)."""
    params = load_params(params_path)
    section = load_rl_section(params, params_path)
    if {"dataset": dataset, "task": task} not in section.pairs:
        LOGGER.warning("rl: (%s, %s) is not among %s.rl.pairs; running it anyway", dataset, task, SECTION)
    config = resolve_variant(section, variant, params_path)
    if max_steps is not None:
        config = dataclasses.replace(config, max_steps=max_steps)
    seeds = variant_seeds(section, config, params_path)
    rewards = reward_config(params, config, params_path)
    llm = load_llm_config(params_path, finetuned=True)
    device, dtype = _device_and_dtype(config, llm)
    start_stage(f"rl@{dataset}-{task}-{variant}", seeds[0],
                {"dataset": dataset, "task": task, "variant": variant, "seeds": seeds, "rl": to_mapping(config),
                 "reward": to_mapping(rewards), "device": device, "dtype": dtype},
                threads=llm.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohorts))
    if task not in cohort.tasks:
        raise ConfigError(f"data set '{dataset}' has no task '{task}' (its tasks: {cohort.tasks})")
    expert = guiding_expert(params, config)
    run = RunContext(dataset, task, variant, cohort, rewards, llm, device, dtype, expert,
                     importance_path(dataset, expert, task, "train", experts),
                     importance_path(dataset, expert, task, "test", experts), stage1_root, params_path)
    target = rl_dir(dataset, task, variant, out_root)
    with atomic_directory(target) as folder:
        jobs = [(run, dataclasses.replace(config, seed=seed), folder if i == 0 else folder / seed_subdir(seed),
                 evaluate_after) for i, seed in enumerate(seeds)]
        processes = min(section.seed_processes, len(seeds))
        if processes > 1 and in_launched_process():
            LOGGER.info("rl: under accelerate launch the seeds run one after the other (seed_processes ignored)")
            processes = 1
        if processes > 1:
            # Seeds are independent runs, and the 0.9M-parameter testbed keeps two threads only half busy (one RL
            # step: 0.47 s on 2 threads, 0.62 s on 1, measured): three 1-thread runs side by side beat three in a row.
            LOGGER.info("rl: %d seeds in %d processes", len(seeds), processes)
            results = map_in_processes(train_one, {job[1].seed: job for job in jobs}, processes,
                                       max(1, llm.threads // processes))
        else:
            results = {}
            for i, job in enumerate(jobs):
                LOGGER.info("rl@%s-%s-%s: seed %d (%d of %d)", dataset, task, variant, job[1].seed, i + 1, len(seeds))
                results[job[1].seed] = train_one(*job)
        if evaluate_after and is_main_process():
            metrics = results[seeds[0]]
            metrics["seeds"] = seed_block(results, seeds)
            atomic_write_json(folder / "metrics.json", metrics)
            LOGGER.info("rl@%s-%s-%s: AUROC over %d seeds %.3f ± %.3f", dataset, task, variant, len(seeds),
                        metrics["seeds"]["metrics"]["auroc"]["mean"], metrics["seeds"]["metrics"]["auroc"]["std"])
    return target


@dataclass(frozen=True)
class RunContext:
    """What every seed of one variant's stage shares: data, reward, backbone, device and the guiding expert."""

    dataset: str
    task: str
    variant: str
    cohort: Cohort
    rewards: RewardConfig
    llm: LLMConfig
    device: str
    dtype: str
    expert: str
    importance: Path  # the expert's train-split importance (R_att during training)
    test_importance: Path  # its test-split importance (test-time alignment)
    stage1_root: str | Path
    params_path: str | Path


def seed_block(results: dict[int, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """The ``seeds`` block of the variant's metrics.json (:func:`benchmark.seeds.seed_block`): each seed's bootstrap
    means of AUROC, AUPRC and the parse-failure rate, their mean and std, and where each seed's predictions are."""
    per_seed = {seed: {"auroc": results[seed]["auroc"]["mean"], "auprc": results[seed]["auprc"]["mean"],
                       "parse_failure_rate": results[seed]["parse_failure_rate"]} for seed in seeds}
    return seed_block_of(per_seed, seeds)


def train_one(run: RunContext, config: RLConfig, folder: Path, evaluate_after: bool = True) -> dict[str, Any]:
    """One seed: train with GRPOTrainer, save adapter, curves, trajectories, summary and (evaluated) metrics in
    ``folder``; returns the metrics (empty without evaluation)."""
    import torch

    from methods.eag_rl.rl_trainer import TRAJECTORY_COLUMNS

    seed_everything(config.seed)
    started = time.perf_counter()  # timings: for the log only
    model, tokenizer, peft_config = load_policy(run.dataset, run.task, config, run.llm, run.dtype, run.device,
                                                run.stage1_root)
    rows = training_rows(run.cohort, run.task, config, tokenizer, run.llm, run.importance)
    reward, weights = reward_functions(run.rewards, config, run.cohort.feature_names)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grpo-") as scratch:
        trainer, recorder = build_trainer(model, tokenizer, rows, reward, config,
                                          grpo_args(config, scratch, run.device, run.dtype, weights), peft_config)
        loaded = time.perf_counter()
        result = trainer.train()
        trained = time.perf_counter()
        save_adapter(trainer, folder / "adapter")
    trajectories = trainer.trajectory_records
    if trainer.accelerator.num_processes > 1:  # every process's trajectories (a collective: on every process)
        from accelerate.utils import gather_object

        trajectories = gather_object(trajectories)
    if not trainer.is_world_process_zero():  # launch.processes > 1: rank 0 writes and evaluates
        del trainer, model
        gc.collect()
        return {}
    _write_curves(folder, recorder.rows)
    atomic_write_text(folder / "epsilon.csv", pd.DataFrame(
        trajectories, columns=list(TRAJECTORY_COLUMNS)).to_csv(index=False))
    step_times = [r["step_time"] for r in recorder.rows if "step_time" in r]
    training = {
        "steps": int(result.global_step), "train_patients": len(rows),
        "generation_batches": trainer._generation_round,
        "final_reward": next((r["reward"] for r in reversed(recorder.rows) if "reward" in r), None),
        "device": run.device, "dtype": run.dtype, "torch_threads": torch.get_num_threads(),
    }
    del trainer, model
    gc.collect()
    summary = {"dataset": run.dataset, "task": run.task, "variant": run.variant, "expert": run.expert,
               "config": to_mapping(config), "reward": to_mapping(run.rewards), "training": training}
    metrics: dict[str, Any] = {}
    if evaluate_after:
        evaluated = time.perf_counter()
        test = run.cohort.subset(run.llm.evaluation.split)
        top_k = dict(zip(map(str, test.ids), expert_top_k(run.test_importance, list(map(str, test.ids))), strict=True))
        metrics = evaluate_policy(folder / "adapter", run.cohort, run.task, run.llm, run.params_path, folder, top_k)
        metrics["descriptor"] = MethodDescriptor(dataset=run.dataset, task=run.task, method=run.variant,
                                                 family=config.family, backbone=run.llm.backbone.source).to_dict()
        metrics["training"] = training
        atomic_write_json(folder / "metrics.json", metrics)
        LOGGER.info("rl@%s-%s-%s seed %d: AUROC %.3f±%.3f AUPRC %.3f±%.3f, parse failures %d/%d (evaluation %.0f s)",
                    run.dataset, run.task, run.variant, config.seed, metrics["auroc"]["mean"], metrics["auroc"]["std"],
                    metrics["auprc"]["mean"], metrics["auprc"]["std"], metrics["parse_failures"], metrics["n"],
                    time.perf_counter() - evaluated)
    atomic_write_json(folder / "summary.json", summary)
    LOGGER.info("rl@%s-%s-%s seed %d: %d steps in %.0f s (%.2f s/step, mean logged step time %s; load %.0f s) -> %s",
                run.dataset, run.task, run.variant, config.seed, training["steps"], trained - loaded,
                (trained - loaded) / max(training["steps"], 1), f"{np.mean(step_times):.2f} s" if step_times else "n/a",
                loaded - started, folder)
    return metrics


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl rl``."""
    parser = subparsers.add_parser(
        "rl", help="EAG-RL stage 2 / GRPO / DAPO / ablations: train one variant on one task, then evaluate it.",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="params.yaml section 'eag_rl.rl.train' (a variant overrides single fields):\n" + describe(RLConfig))
    parser.add_argument("dataset", help="A data set under 'datasets' in params.yaml.")
    parser.add_argument("task", help="A task of that data set, e.g. mortality.")
    parser.add_argument("variant", help="A variant under eag_rl.rl.variants: eag_rl, grpo, dapo, wo_stage1, wo_ratt, "
                                        "wo_eps, released_weights, ...")
    parser.add_argument("--params", default="params.yaml", help="Params file (default: params.yaml).")
    parser.add_argument("--cohorts", default=str(COHORT_ROOT), help="Folder of the cohorts (data/cohorts).")
    parser.add_argument("--experts", default=str(EXPERT_ROOT), help="Folder of the experts (models/experts).")
    parser.add_argument("--stage1", default=str(EAG_RL_ROOT), help="Root of the stage-1 policies (models/eag_rl).")
    parser.add_argument("--out", default=str(RL_ROOT), help="Root of this stage's outputs (models/rl).")
    parser.add_argument("--max-steps", type=int, default=None, help="Override the variant's max_steps (quick checks).")
    parser.add_argument("--no-eval", action="store_true", help="Train only (no predictions / metrics).")
    parser.set_defaults(handler=lambda a: run_rl(a.dataset, a.task, a.variant, a.params, a.cohorts, a.experts,
                                                 a.stage1, a.out, a.max_steps, not a.no_eval))


def describe_variants(section: RLSection) -> str:
    """One line per variant with its overrides (for logs and the README)."""
    return "\n".join(f"  {name}: {json.dumps(over, sort_keys=True)}" for name, over in section.variants.items())
