"""One-GPU check of the paper-scale engines: bf16 LoRA SFT, RL through our GRPO trainer, evaluation.

``benchmarks/gpu_check.sh`` runs it (≤ 10 min on one 80 GB-class GPU). Nothing is downloaded: the model is a
Qwen2.5-7B-Instruct-shaped ``Qwen2ForCausalLM`` (28 layers, hidden 3584, 152,064-token vocabulary; 7.6 B
parameters) with random bf16 weights built from a transformers config on the GPU, and the tokenizer is a small
byte-level BPE trained here on the prompts (ids above its vocabulary decode to nothing, so a random model's
completions are mostly empty text: the rewards are the unparsable penalty, which is all a speed check needs).
Each part prints and records tokens/s, seconds per step and peak GPU memory (``torch.cuda.max_memory_allocated``):

1. **SFT** — :func:`methods.llm.sft.train_lora_sft` (TRL SFTTrainer), LoRA r = 16 on every linear layer, the
   stage-1/Label-SFT code path; tokens/s counts prompt + answer tokens of the trained sequences.
2. **RL** — :func:`methods.eag_rl.grpo_setup.build_trainer` (:class:`~methods.eag_rl.trainer.EAGRLTrainer`: ε(τ),
   the composite reward), G = 8 completions of one patient per generation batch, μ = 2; with vLLM importable
   the completions come from vLLM colocated (``use_vllm``), else from transformers' generate. tokens/s counts
   generated completion tokens over the whole training time (generation + scoring + optimisation).
3. **Evaluation** — greedy decoding of QD prompts of exactly ``max_new_tokens`` tokens: vLLM with
   ``load_format="dummy"`` (random weights, no checkpoint) where vLLM is importable, else batched HF generate
   (the report says which).

The report (``results/gpu_check.md``) names the machine (GPU, memory, CPU count, library versions).
``--dry-run`` runs the same code on a tiny model on the CPU in seconds (the test of this module).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from benchmark.config import option

QWEN25_7B = {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 32768,
             "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": False}
TINY = {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": False}
SHAPES = {"qwen2.5-7b": QWEN25_7B, "tiny": TINY}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@dataclass
class CheckConfig:
    """What the GPU check runs (command-line flags of the same names)."""

    shape: str = option("qwen2.5-7b", help="Model shape: 'qwen2.5-7b' (the paper backbone's config, random weights) or 'tiny'.")
    device: str = option("cuda", help="Torch device ('cuda' on the GPU machine; 'cpu' for --dry-run).")
    sft_steps: int = option(6, help="Optimiser steps of LoRA SFT (the first one is warm-up and not timed).")
    sft_batch: int = option(4, help="Sequences per SFT step.")
    rl_steps: int = option(4, help="Optimiser steps of GRPO (μ = 2: one generation batch per 2 steps).")
    max_new_tokens: int = option(256, help="Tokens per completion in RL and in evaluation.")
    eval_prompts: int = option(64, help="Prompts decoded in the evaluation part.")
    out: str = option("results/gpu_check.md", help="Markdown report written at the end.")
    dry_run: bool = option(False, help="Tiny model on the CPU, one step each, short completions: checks the code path in seconds.")


def machine() -> dict[str, Any]:
    """The machine the check ran on: GPU name and memory, CPU count, library versions."""
    import peft
    import torch
    import transformers
    import trl

    info = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "peft": peft.__version__, "vllm": vllm_version()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), gpus=torch.cuda.device_count(),
                    cuda=torch.version.cuda)
    else:
        info.update(gpu="none (CPU)")
    return info


def vllm_version() -> str | None:
    """vLLM's version where it is importable, else None."""
    if importlib.util.find_spec("vllm") is None:
        return None
    try:
        import vllm

        return vllm.__version__
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return None


def build_tokenizer(texts: list[str]):
    """A byte-level BPE tokenizer (4,000 tokens at most) with ChatML specials, trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer, raw.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    raw.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=4000, special_tokens=specials, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    return tokenizer


def build_model(shape: dict[str, Any], tokenizer, device: str, dtype):
    """A ``Qwen2ForCausalLM`` of ``shape`` with random weights, created directly on ``device`` in ``dtype``."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


class Meter:
    """Wall time and peak GPU memory of a block (CUDA synchronised at both ends)."""

    def __init__(self, device: str):
        import torch

        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.seconds, self.peak_gib = 0.0, float("nan")

    def __enter__(self):
        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            self.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        self.seconds = time.perf_counter() - self.started


def check_sft(model, tokenizer, prompts, labels, cfg: CheckConfig) -> dict[str, Any]:
    """bf16 LoRA SFT through :func:`methods.llm.sft.train_lora_sft` (TRL SFTTrainer)."""
    from methods.llm.config import LoRASettings
    from methods.llm.sft import TrainSettings, label_answer, record_lengths, sft_records, train_lora_sft

    records = sft_records(tokenizer, prompts, [label_answer(int(y)) for y in labels])
    lengths = record_lengths(tokenizer, records)
    settings = TrainSettings(max_steps=cfg.sft_steps, batch_size=cfg.sft_batch, learning_rate=1e-4, warmup_steps=0,
                             max_length=max(lengths) + 8)
    lora = LoRASettings(r=16, alpha=32, target_modules=LORA_TARGETS, top_layers=0)
    with tempfile.TemporaryDirectory() as out, Meter(cfg.device) as meter:
        log = train_lora_sft(model, tokenizer, records, settings, lora, Path(out) / "adapter", progress=False)
    tokens = sum(lengths) / len(lengths) * cfg.sft_batch * cfg.sft_steps
    dtype = "bf16" if cfg.device.startswith("cuda") else "fp32"
    return {"part": f"SFT ({dtype} LoRA r=16 on all linear layers, TRL SFTTrainer)", "steps": cfg.sft_steps, "seconds": meter.seconds,
            "step_s": meter.seconds / cfg.sft_steps, "tokens_per_s": tokens / meter.seconds,
            "peak_gib": meter.peak_gib, "note": f"{cfg.sft_batch} seqs/step, mean {sum(lengths) / len(lengths):.0f} "
                                                f"tokens/seq, loss {log['loss'][0]:.2f} -> {log['loss'][-1]:.2f}"}


def check_rl(model, tokenizer, prompts, labels, features, cfg: CheckConfig, use_vllm: bool) -> dict[str, Any]:
    """GRPO through :class:`~methods.eag_rl.trainer.EAGRLTrainer` (ε(τ), composite reward), fresh LoRA."""
    from methods.eag_rl.config import RLConfig
    from methods.eag_rl.grpo_setup import build_trainer, grpo_args
    from methods.eag_rl.reward_adapter import reward_functions
    from methods.eag_rl.rewards import RewardConfig
    from methods.llm.backbone import lora_config
    from methods.llm.config import LoRASettings

    dtype = "bfloat16" if cfg.device.startswith("cuda") else "float32"
    config = RLConfig(num_generations=8, prompts_per_generation=1, num_iterations=2, max_steps=cfg.rl_steps,
                      max_completion_length=cfg.max_new_tokens, learning_rate=1e-5, scale_rewards="group",  # as profiles/paper.yaml
                      device=cfg.device, dtype=dtype, progress=False, use_vllm=use_vllm, vllm_gpu_memory_utilization=0.3)
    rows = [{"prompt": tokenizer.apply_chat_template([{"role": "user", "content": p.text}], tokenize=False,
                                                     add_generation_prompt=True),
             "label": int(y), "expert_top_k": features[:3], "id": str(i)} for i, (p, y) in enumerate(zip(prompts, labels, strict=True))]
    reward, weights = reward_functions(RewardConfig(), config, features)
    with tempfile.TemporaryDirectory() as scratch:
        args = grpo_args(config, scratch, cfg.device, dtype, weights)
        peft = lora_config(LoRASettings(r=16, alpha=32, target_modules=LORA_TARGETS, top_layers=0), model)
        trainer, recorder = build_trainer(model, tokenizer, rows, reward, config, args, peft)
        with Meter(cfg.device) as meter:
            trainer.train()
    lengths = [r["completions/mean_length"] for r in recorder.rows if "completions/mean_length" in r]
    batches = trainer._generation_round
    tokens = (sum(lengths) / len(lengths) if lengths else 0.0) * config.num_generations * batches
    del trainer
    return {"part": f"RL (EAGRLTrainer, ε(τ); generation: {'vLLM colocate' if use_vllm else 'HF generate'})",
            "steps": cfg.rl_steps, "seconds": meter.seconds, "step_s": meter.seconds / cfg.rl_steps,
            "tokens_per_s": tokens / meter.seconds, "peak_gib": meter.peak_gib,
            "note": f"{batches} generation batches × 8 completions ≤ {cfg.max_new_tokens} tokens; completion tokens/s"}


def check_eval_hf(model, tokenizer, prompts, cfg: CheckConfig) -> dict[str, Any]:
    """Greedy batched HF generate of exactly ``max_new_tokens`` tokens per prompt."""
    import torch

    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p.text}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, return_tensors="pt", padding=True).to(model.device)
    model.eval()
    with Meter(cfg.device) as meter, torch.no_grad():
        model.generate(**batch, max_new_tokens=cfg.max_new_tokens, min_new_tokens=cfg.max_new_tokens, do_sample=False)
    tokens = len(texts) * cfg.max_new_tokens
    return {"part": "Evaluation (HF generate, greedy; vLLM not importable)", "steps": 1, "seconds": meter.seconds,
            "step_s": meter.seconds, "tokens_per_s": tokens / meter.seconds, "peak_gib": meter.peak_gib,
            "note": f"{len(texts)} prompts in one batch × {cfg.max_new_tokens} new tokens"}


def check_eval_vllm(shape: dict[str, Any], tokenizer, prompts, cfg: CheckConfig) -> dict[str, Any]:
    """Greedy vLLM decoding with ``load_format="dummy"`` (random weights from the config, nothing read)."""
    from transformers import Qwen2Config
    from vllm import LLM, SamplingParams

    with tempfile.TemporaryDirectory() as folder:
        Qwen2Config(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                    torch_dtype="bfloat16", architectures=["Qwen2ForCausalLM"]).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        engine = LLM(model=folder, load_format="dummy", dtype="bfloat16", gpu_memory_utilization=0.5, seed=0)
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p.text}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts]
        params = SamplingParams(max_tokens=cfg.max_new_tokens, min_tokens=cfg.max_new_tokens, temperature=0.0,
                                ignore_eos=True)
        engine.generate(texts[:2], params)  # warm-up (CUDA graphs)
        with Meter(cfg.device) as meter:
            engine.generate(texts, params)
    tokens = len(texts) * cfg.max_new_tokens
    return {"part": "Evaluation (vLLM, load_format=dummy, greedy)", "steps": 1, "seconds": meter.seconds,
            "step_s": meter.seconds, "tokens_per_s": tokens / meter.seconds, "peak_gib": float("nan"),
            "note": f"{len(texts)} prompts × {cfg.max_new_tokens} tokens; vLLM holds 50 % of the GPU (its own pool)"}


def report(cfg: CheckConfig, info: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The markdown report: the machine, then one row per part."""
    lines = ["# GPU check (benchmarks/gpu_check.sh)", "",
             f"Model: {cfg.shape}-shaped Qwen2ForCausalLM with random weights (no download); "
             f"{'bf16 on ' + info.get('gpu', '') if cfg.device.startswith('cuda') else 'float32 on the CPU (dry run)'}.",
             "", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
             "| part | steps | seconds | s/step | tokens/s | peak GPU GiB | note |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['part']} | {r['steps']} | {r['seconds']:.1f} | {r['step_s']:.2f} | {r['tokens_per_s']:.0f} "
                     f"| {r['peak_gib']:.1f} | {r['note']} |")
    return "\n".join(lines) + "\n"


def run(cfg: CheckConfig) -> list[dict[str, Any]]:
    """Run the three parts and write ``cfg.out``; returns the result rows."""
    import torch

    from benchmark.data.synthetic import SyntheticConfig, generate
    from methods.llm.config import PromptConfig
    from methods.llm.prompting import build_prompts

    cohort = generate(SyntheticConfig(domain="icu", n_patients=120, n_test=20, seed=1), name="gpu_check")
    train = cohort.subset("train")
    prompts = build_prompts(train, "mortality", "qd", PromptConfig())
    labels = train.label("mortality")
    tokenizer = build_tokenizer([p.text for p in prompts[:60]] + ['{"answer": 1}', "<Final answer>0.3"])
    shape = {**SHAPES[cfg.shape], "vocab_size": max(SHAPES[cfg.shape]["vocab_size"], len(tokenizer))}
    dtype = torch.bfloat16 if cfg.device.startswith("cuda") else torch.float32
    use_vllm = vllm_version() is not None and cfg.device.startswith("cuda")
    info = machine()
    print(json.dumps(info), flush=True)
    results = []
    for part in ("sft", "rl", "eval"):
        if part == "eval" and use_vllm:
            results.append(check_eval_vllm(shape, tokenizer, prompts[: cfg.eval_prompts], cfg))
            break
        model = build_model(shape, tokenizer, cfg.device, dtype)
        if part == "sft":
            results.append(check_sft(model, tokenizer, prompts, labels, cfg))
        elif part == "rl":
            results.append(check_rl(model, tokenizer, prompts, labels, cohort.feature_names, cfg, use_vllm))
        else:
            results.append(check_eval_hf(model, tokenizer, prompts[: cfg.eval_prompts], cfg))
        print(json.dumps(results[-1]), flush=True)
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    text = report(cfg, info, results)
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).write_text(text)
    print(text, flush=True)
    return results


def parse(argv: list[str] | None = None) -> CheckConfig:
    """Command-line flags (one per :class:`CheckConfig` field) → the config; ``--dry-run`` shrinks everything."""
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in fields(CheckConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action="store_true", help=field.metadata["help"])
        else:
            kind = int if field.type in (int, "int") else str
            parser.add_argument(flag, type=kind, default=field.default, help=field.metadata["help"] + " (default: %(default)s)")
    cfg = CheckConfig(**vars(parser.parse_args(argv)))
    if cfg.dry_run:
        cfg.shape, cfg.device, cfg.sft_steps, cfg.sft_batch, cfg.rl_steps = "tiny", "cpu", 1, 2, 2
        cfg.max_new_tokens, cfg.eval_prompts = 8, 4
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``benchmarks/gpu_check.sh``."""
    run(parse(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
