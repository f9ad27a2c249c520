"""TRL's GRPOConfig of a run: micro-batches, steps per generation batch, vLLM settings."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from trl import GRPOConfig

from benchmark.config import ConfigError
from methods.eag_rl.config import RLConfig
from methods.eag_rl.trainer import AdaptiveClip, EAGRLTrainer
from tests.methods.eag_rl.tiny_grpo import tiny_model, toy_reward


def lora_after_training(tokenizer, tmp_path, config) -> dict[str, torch.Tensor]:
    """LoRA weights after ``config.max_steps`` optimiser steps of a tiny policy trained with ``grpo_args(config)``."""
    from methods.eag_rl.grpo_setup import grpo_args

    args = grpo_args(config, str(tmp_path), "cpu", "float32")
    args.max_completion_length, args.disable_tqdm, args.report_to = 8, True, "none"
    trainer = EAGRLTrainer(
        model=tiny_model(tokenizer), reward_funcs=[toy_reward], args=args,
        train_dataset=Dataset.from_list([{"prompt": f"patient {i} record:", "kind": "varying"} for i in range(8)]),
        processing_class=tokenizer, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        adaptive_clip=AdaptiveClip(0.2, 0.4, "group") if config.adaptive_clip else None)
    trainer.train()
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_micro_batches_accumulate_to_the_whole_batch_step(tokenizer, tmp_path, loss_type):
    """Gradient accumulation over micro-batches takes the same optimiser step as the whole generation batch."""
    from methods.eag_rl.config import RLConfig
    from methods.eag_rl.grpo_setup import micro_batches

    base = RLConfig(num_generations=2, prompts_per_generation=4, num_iterations=2, max_steps=2, beta=0.04,
                    learning_rate=1e-2, loss_type=loss_type, adaptive_clip=loss_type == "grpo", seed=0, progress=False)
    assert micro_batches(base) == (8, 1)
    split = RLConfig(**{**base.__dict__, "micro_batch_size": 2})
    assert micro_batches(split) == (2, 4)
    whole = lora_after_training(tokenizer, tmp_path / "whole", base)
    accumulated = lora_after_training(tokenizer, tmp_path / "split", split)
    initial = {n: p for n, p in lora_after_training(tokenizer, tmp_path / "none",
                                                    RLConfig(**{**base.__dict__, "max_steps": 0})).items()}
    assert any(not torch.equal(whole[n], initial[n]) for n in whole)  # the step moved the weights
    for name in whole:
        assert torch.allclose(whole[name], accumulated[name], atol=1e-6), name


def test_steps_per_generation_cuts_one_generated_batch_into_several_optimiser_steps(tokenizer, tmp_path):
    """steps_per_generation = 2, μ = 2: 8 completions are generated once and serve 4 optimiser steps of 4."""
    from methods.eag_rl.grpo_setup import grpo_args, micro_batches

    config = RLConfig(num_generations=2, prompts_per_generation=4, steps_per_generation=2, num_iterations=2,
                      max_steps=8, learning_rate=1e-2, adaptive_clip=True, seed=0, progress=False)
    assert micro_batches(config) == (4, 1)
    args = grpo_args(config, str(tmp_path), "cpu", "float32")
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.steps_per_generation,
            args.generation_batch_size) == (4, 1, 2, 8)
    args.max_completion_length, args.disable_tqdm = 8, True
    trainer = EAGRLTrainer(
        model=tiny_model(tokenizer), reward_funcs=[toy_reward], args=args,
        train_dataset=Dataset.from_list([{"prompt": f"patient {i} record:", "kind": "varying"} for i in range(16)]),
        processing_class=tokenizer, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        adaptive_clip=AdaptiveClip(0.2, 0.4, "group"))
    trainer.train()
    assert trainer.state.global_step == 8
    assert trainer._generation_round == 2  # 8 steps / (2 slices × μ = 2)
    assert len(trainer.trajectory_records) == 16  # two generation batches of 4 patients × 2 completions


def test_steps_per_generation_must_divide_the_generation_batch():
    from methods.eag_rl.grpo_setup import micro_batches

    with pytest.raises(ConfigError, match="steps_per_generation = 3 must divide"):
        micro_batches(RLConfig(num_generations=4, prompts_per_generation=2, steps_per_generation=3))
    with pytest.raises(ConfigError, match="micro_batch_size = 4 must divide the completions of one optimiser step"):
        micro_batches(RLConfig(num_generations=4, prompts_per_generation=3, steps_per_generation=2, micro_batch_size=4))


def test_a_micro_batch_must_divide_the_generation_batch():
    from benchmark.config import ConfigError
    from methods.eag_rl.config import RLConfig
    from methods.eag_rl.grpo_setup import micro_batches

    with pytest.raises(ConfigError, match="micro_batch_size = 3 must divide"):
        micro_batches(RLConfig(num_generations=4, prompts_per_generation=2, micro_batch_size=3))


def test_vllm_settings_pass_through_to_grpo_config(tmp_path):
    from methods.eag_rl.grpo_setup import grpo_args

    off = grpo_args(RLConfig(), str(tmp_path), "cpu", "float32")
    assert off.use_vllm is False and off.vllm_mode == GRPOConfig.vllm_mode  # TRL's defaults untouched
    config = RLConfig(use_vllm=True, vllm_mode="server", vllm_server_base_url="http://10.0.0.2:8000",
                      vllm_gpu_memory_utilization=0.5, vllm_tensor_parallel_size=2)
    on = grpo_args(config, str(tmp_path), "cpu", "float32")  # (a GPU run passes cuda + bfloat16)
    assert (on.use_vllm, on.vllm_mode, on.vllm_server_base_url, on.vllm_gpu_memory_utilization,
            on.vllm_tensor_parallel_size) == (True, "server", "http://10.0.0.2:8000", 0.5, 2)
