"""Assembles one stage-2 run: device and dtype, the initial policy, TRL's ``GRPOConfig`` and the trainer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.config import ConfigError
from benchmark.method_catalog import STAGE1_METHOD
from benchmark.paths import LLM_MODELS, adapter_dir
from methods.eag_rl.config import SECTION, RLConfig
from methods.llm.config import LLMConfig


def device_and_dtype(config: RLConfig, llm: LLMConfig) -> tuple[str, str]:
    """(device, dtype) of a run: ``config.device`` resolved, and ``config.dtype`` or, for 'auto', float32 on CPU and
    ``llm.backbone.dtype`` on a GPU."""
    from methods.llm.backbone import resolve_device

    device = resolve_device(config.device)
    if config.dtype != "auto":
        return device, config.dtype
    from methods.llm.backbone import resolve_dtype

    return device, ("float32" if device == "cpu" else resolve_dtype(llm.backbone.dtype, device))


def load_policy(dataset: str, task: str, config: RLConfig, llm: LLMConfig, dtype: str, device: str,
                root: str | Path = LLM_MODELS):
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
    stage1 = config.initial_policy == "stage1"
    adapter = adapter_dir(dataset, STAGE1_METHOD, task, root) if stage1 else Path(config.initial_policy)
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
    """An :class:`~methods.eag_rl.trainer.EAGRLTrainer` for ``rows`` with the variant's clip and sampling
    (``reward``: one TRL reward function or a list of them, weighted by ``args.reward_weights``)."""
    from datasets import Dataset

    from methods.eag_rl.curves import CurveRecorder
    from methods.eag_rl.trainer import AdaptiveClip, DynamicSampling, EAGRLTrainer

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
