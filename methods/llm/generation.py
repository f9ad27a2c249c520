"""Text generation behind one interface: batched Hugging Face ``generate``, or vLLM on a GPU.

``generator.generate(prompts, params)`` takes rendered prompt strings (see :mod:`methods.llm.chat`) and
returns one :class:`Completion` per prompt and sample, in prompt order (``params.n`` samples of prompt
0 first, then prompt 1, ...).

Hugging Face backend (:class:`HFGenerator`)
  Prompts are sorted by token length and cut into batches of ``batch_size`` (less padding), padded on
  the left (a decoder continues from the last position, so padding must not sit between prompt and
  answer), and generated with ``model.generate``. Batch ``b`` is generated right after
  ``torch.manual_seed(seed + b)``, so a run is reproducible for a given prompt list, batch size and
  seed; ``temperature = 0`` is greedy decoding. A progress bar counts prompts.

vLLM backend (:class:`VLLMGenerator`)
  The same call on ``vllm.LLM.generate`` (continuous batching), with an optional LoRA adapter, sharded over
  ``vllm_tensor_parallel_size`` GPUs. vLLM is imported only when this backend is built, and
  :func:`make_generator` picks it only when it is installed and CUDA is available
  (``llm.generation.backend: auto``).

Server backend (:class:`ServerGenerator`)
  The same call on an OpenAI-compatible ``/completions`` endpoint (``server_url``; ``vllm serve MODEL
  --enable-lora`` or ``trl vllm-serve``), through the ``openai`` client: one served model answers every
  evaluation stage, so a 7B model is loaded once for the whole pipeline instead of once per stage. Prompts
  are sent already rendered (the chat template is applied here, with the backbone's own tokenizer), in
  requests of ``batch_size`` prompts; a LoRA adapter is registered with vLLM's ``/load_lora_adapter`` and
  named in each request. Token counts are re-counted with the local tokenizer.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from benchmark.config import ConfigError
from benchmark.runtime import LOGGER
from methods.llm.chat import add_special_tokens_for
from methods.llm.config import BackboneConfig, GenerationConfig, LLMConfig


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one call: lengths, temperature / top-p, seed, samples per prompt."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 42
    n: int = 1
    min_new_tokens: int = 0  # > 0 forces a length (used by the throughput benchmark)
    stop: tuple[str, ...] = ()  # a completion ends before the first of these strings (which is not returned)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @classmethod
    def from_config(cls, config: GenerationConfig, max_new_tokens: int, n: int = 1) -> SamplingParams:
        """Sampling of ``llm.generation`` with a method's ``max_new_tokens``."""
        return cls(max_new_tokens=max_new_tokens, temperature=config.temperature, top_p=config.top_p,
                   seed=config.seed, n=n)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string (excluded), and whether one was found.

    HF ``generate`` stops a sequence once a stop string is complete, but the decoded text still holds it
    (and, in a batch, nothing after it); vLLM already leaves it out. Cutting here gives both backends the
    same completions.
    """
    positions = [found for found in (text.find(s) for s in stop if s) if found >= 0]
    if not positions:
        return text, False
    return text[:min(positions)], True


@dataclass(frozen=True)
class Completion:
    """One generated answer: its text, how many tokens it took, and whether it ended on its own."""

    text: str
    n_tokens: int
    finished: bool


@dataclass
class GenerationStats:
    """Throughput of the last call (for logs and the benchmark)."""

    prompts: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else float("nan")


class HFGenerator:
    """Batched generation with a transformers model (optionally a PEFT-wrapped one)."""

    backend = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 16, progress: bool = True):
        if batch_size < 1:
            raise ConfigError(f"llm.generation.batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.progress = progress
        self.stats = GenerationStats()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def generate(self, prompts: Sequence[str], params: SamplingParams, desc: str = "generate") -> list[Completion]:
        """Completions of ``prompts`` (``params.n`` per prompt, prompt-major order)."""
        import torch

        expanded = [p for p in prompts for _ in range(params.n)]
        if not expanded:
            return []
        special = add_special_tokens_for(self.tokenizer, expanded[0])
        lengths = [len(self.tokenizer(p, add_special_tokens=special).input_ids) for p in expanded]
        order = sorted(range(len(expanded)), key=lambda i: (-lengths[i], i))
        results: list[Completion | None] = [None] * len(expanded)
        eos_ids = self._eos_ids()
        device = next(self.model.parameters()).device
        started = time.perf_counter()
        new_tokens = 0
        bar = tqdm(total=len(expanded), desc=desc, unit="prompt", disable=not self.progress, leave=False)
        for b, start in enumerate(range(0, len(order), self.batch_size)):
            batch = order[start:start + self.batch_size]
            encoded = self.tokenizer([expanded[i] for i in batch], return_tensors="pt", padding=True,
                                     add_special_tokens=special).to(device)
            kwargs = dict(max_new_tokens=params.max_new_tokens, min_new_tokens=params.min_new_tokens or None,
                          pad_token_id=self.tokenizer.pad_token_id, eos_token_id=eos_ids)
            if params.stop:
                kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
            if params.greedy:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=None)
            torch.manual_seed(params.seed + b)
            with torch.inference_mode():
                output = self.model.generate(**encoded, **kwargs)
            generated = output[:, encoded["input_ids"].shape[1]:]
            for row, i in enumerate(batch):
                tokens = generated[row].tolist()
                n_tokens, finished = len(tokens), False
                for k, token in enumerate(tokens):
                    if token in eos_ids:
                        n_tokens, finished = k, True
                        break
                text = self.tokenizer.decode(tokens[:n_tokens], skip_special_tokens=True)
                text, stopped = cut_at_stop(text, params.stop)
                finished = finished or stopped
                results[i] = Completion(text=text, n_tokens=n_tokens, finished=finished)
                new_tokens += n_tokens
            bar.update(len(batch))
        bar.close()
        self.stats = GenerationStats(len(expanded), new_tokens, time.perf_counter() - started)
        LOGGER.info("%s: %d completions, %d new tokens in %.1f s (%.1f tokens/s)", desc, len(expanded), new_tokens,
                    self.stats.seconds, self.stats.tokens_per_second)
        return [r for r in results if r is not None]


class VLLMGenerator:
    """The same interface on vLLM (GPU). ``adapter`` is a PEFT LoRA folder applied per request."""

    backend = "vllm"

    def __init__(self, model_location: str, adapter: str | Path | None = None, dtype: str = "bfloat16",
                 gpu_memory_utilization: float = 0.85, seed: int = 42, trust_remote_code: bool = False,
                 max_lora_rank: int = 64, tensor_parallel_size: int = 1):
        from vllm import LLM  # imported only here: the CPU install has no vllm

        self.llm = LLM(model=model_location, dtype=dtype, seed=seed, enable_lora=adapter is not None,
                       max_lora_rank=max_lora_rank, gpu_memory_utilization=gpu_memory_utilization,
                       trust_remote_code=trust_remote_code, tensor_parallel_size=tensor_parallel_size)
        self.tokenizer = self.llm.get_tokenizer()
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(adapter))
        self.stats = GenerationStats()

    def generate(self, prompts: Sequence[str], params: SamplingParams, desc: str = "generate") -> list[Completion]:
        """Completions of ``prompts`` (``params.n`` per prompt, prompt-major order)."""
        from vllm import SamplingParams as VLLMSampling

        sampling = VLLMSampling(n=params.n, max_tokens=params.max_new_tokens, min_tokens=params.min_new_tokens,
                                temperature=max(params.temperature, 0.0), top_p=params.top_p if not params.greedy else 1.0,
                                seed=params.seed, stop=list(params.stop) or None)
        started = time.perf_counter()
        outputs = self.llm.generate(list(prompts), sampling, lora_request=self.lora, use_tqdm=True)
        results = [Completion(text=o.text, n_tokens=len(o.token_ids), finished=o.finish_reason == "stop")
                   for out in outputs for o in out.outputs]
        self.stats = GenerationStats(len(results), sum(c.n_tokens for c in results), time.perf_counter() - started)
        LOGGER.info("%s (vllm): %d completions, %.1f tokens/s", desc, len(results), self.stats.tokens_per_second)
        return results


class ServerGenerator:
    """The same interface on an OpenAI-compatible completions server (module docstring)."""

    backend = "server"

    def __init__(self, config: GenerationConfig, tokenizer, adapter: str | Path | None = None):
        from openai import OpenAI

        self.tokenizer = tokenizer
        self.batch_size = config.batch_size
        self.client = OpenAI(base_url=config.server_url, api_key=os.environ.get(config.server_api_key_env) or "none",
                             timeout=config.server_timeout, max_retries=2)
        self.model = config.server_model or self.client.models.list().data[0].id
        if adapter is not None:  # vLLM serves LoRA adapters registered at run time under a name
            name = f"adapter-{Path(adapter).resolve().as_posix().strip('/').replace('/', '-')}"
            self.client.post("/load_lora_adapter", body={"lora_name": name, "lora_path": str(Path(adapter).resolve())},
                             cast_to=object)
            self.model = name
        self.stats = GenerationStats()

    def generate(self, prompts: Sequence[str], params: SamplingParams, desc: str = "generate") -> list[Completion]:
        """Completions of ``prompts`` (``params.n`` per prompt, prompt-major order)."""
        started = time.perf_counter()
        results: list[Completion] = []
        for b, start in enumerate(range(0, len(prompts), self.batch_size)):
            batch = list(prompts[start:start + self.batch_size])
            response = self.client.completions.create(
                model=self.model, prompt=batch, max_tokens=params.max_new_tokens, n=params.n,
                temperature=max(params.temperature, 0.0), top_p=1.0 if params.greedy else params.top_p,
                seed=params.seed + b, stop=list(params.stop) or None,
                extra_body={"min_tokens": params.min_new_tokens} if params.min_new_tokens else None)
            choices = sorted(response.choices, key=lambda c: c.index)
            if len(choices) != len(batch) * params.n:
                raise RuntimeError(f"{desc}: the server at {self.client.base_url} returned {len(choices)} choices for "
                                   f"{len(batch)} prompts x {params.n}; is it an OpenAI-compatible completions server?")
            for choice in choices:
                n_tokens = len(self.tokenizer(choice.text, add_special_tokens=False).input_ids)
                results.append(Completion(text=choice.text, n_tokens=n_tokens, finished=choice.finish_reason == "stop"))
        self.stats = GenerationStats(len(results), sum(c.n_tokens for c in results), time.perf_counter() - started)
        LOGGER.info("%s (server %s): %d completions, %.1f tokens/s", desc, self.model, len(results),
                    self.stats.tokens_per_second)
        return results


def vllm_available() -> bool:
    """vLLM is installed (checked without importing it) and a CUDA device is visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def choose_backend(config: GenerationConfig) -> str:
    """'hf', 'vllm' or 'server' for ``llm.generation.backend`` (``auto`` = vLLM when :func:`vllm_available`)."""
    if config.backend == "server":
        if not config.server_url:
            raise ConfigError("llm.generation.backend = 'server' needs llm.generation.server_url (the base URL of an "
                              "OpenAI-compatible server, e.g. http://localhost:8000/v1)")
        if importlib.util.find_spec("openai") is None:
            raise ConfigError("llm.generation.backend = 'server' needs the openai client (pip install '.[server]')")
        return "server"
    if config.backend == "auto":
        return "vllm" if vllm_available() else "hf"
    if config.backend == "vllm" and not vllm_available():
        raise ConfigError("llm.generation.backend = 'vllm' needs vllm installed (pip install '.[gpu]') and a CUDA "
                          "GPU; use 'auto' or 'hf' on this machine")
    return config.backend


def make_generator(generation: GenerationConfig, backbone: BackboneConfig, adapter: str | Path | None = None,
                   progress: bool = True):
    """The generator of the configured backend for the built backbone (+ an optional LoRA adapter)."""
    from methods.llm.backbone import load_backbone, model_location

    backend = choose_backend(generation)
    if backend == "vllm":
        dtype = "bfloat16" if backbone.dtype in ("float32", "auto") else backbone.dtype
        return VLLMGenerator(model_location(backbone), adapter, dtype, generation.vllm_gpu_memory_utilization,
                             generation.seed, backbone.trust_remote_code,
                             tensor_parallel_size=generation.vllm_tensor_parallel_size)
    if backend == "server":
        from methods.llm.backbone import load_tokenizer

        return ServerGenerator(generation, load_tokenizer(model_location(backbone), backbone.trust_remote_code), adapter)
    model, tokenizer = load_backbone(backbone, adapter=adapter)
    return HFGenerator(model, tokenizer, generation.batch_size, progress)


def generator_for(config: LLMConfig, adapter: str | Path | None = None):
    """The generator of an ``llm`` settings object: its backbone and generation settings (+ the LoRA ``adapter``)."""
    return make_generator(config.generation, config.backbone, adapter=adapter)
