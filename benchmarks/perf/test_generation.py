"""Throughput of batched generation vs a per-sample loop on CPU (pytest-benchmark; goal: >= 5x tokens/s).

Not part of the default test run (``testpaths = tests``). Needs the built backbone (``dvc repro
build_backbone``); skipped otherwise. Run::

    .venv/bin/pytest benchmarks/perf/test_generation.py --benchmark-enable -s

Both loops generate exactly ``NEW_TOKENS`` tokens per prompt (``min_new_tokens = max_new_tokens``), so
tokens/s compares like with like. Two workloads:

* ``decode`` — short chat prompts (~40 tokens) and 64 new tokens: the decode-bound case (reasoning
  traces, MCTS expansions, RL rollouts), where one batched step costs little more than one single step.
  The >= 5x goal is asserted here.
* ``eval_prompts`` — the Vanilla evaluation prompts of synthetic_icu (~400-500 tokens) and 32 new tokens:
  prefill dominates, and prefill is compute-bound on a CPU whether batched or not, so the speed-up is
  smaller; it is reported (``extra_info``) and only required to be > 1.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

BACKBONE = Path(os.environ.get("EAGRL_BACKBONE_DIR", "models/backbone"))
N_PROMPTS = 16

pytestmark = pytest.mark.skipif(not (BACKBONE / "backbone.json").exists(),
                                reason=f"{BACKBONE} not built (run `dvc repro build_backbone`)")


@pytest.fixture(scope="module")
def generator():
    import torch

    from methods.llm.backbone import load_backbone
    from methods.llm.config import load_llm_config
    from methods.llm.generation import HFGenerator

    config = load_llm_config()
    torch.set_num_threads(config.threads)
    model, tokenizer = load_backbone(config.backbone)
    return HFGenerator(model, tokenizer, batch_size=N_PROMPTS, progress=False), config


def _decode_prompts(tokenizer) -> list[str]:
    topics = ["heart rate", "oxygen saturation", "blood pressure", "temperature", "glucose", "pH", "urea",
              "albumin", "platelets", "D-dimer", "lactate dehydrogenase", "C-reactive protein", "lymphocytes",
              "neutrophils", "respiratory rate", "the Glasgow coma scale"]
    return [tokenizer.apply_chat_template([{"role": "user", "content": f"Explain briefly why {t} matters in the ICU."}],
                                          tokenize=False, add_generation_prompt=True) for t in topics[:N_PROMPTS]]


def _eval_prompts(tokenizer, config) -> list[str]:
    from benchmark.data.cohort import Cohort
    from benchmark.data.synthetic import SyntheticConfig, generate
    from methods.llm.prompting import rendered_prompts

    folder = Path("data/cohorts/synthetic_icu")
    cohort = Cohort.load(folder) if folder.exists() else generate(SyntheticConfig(domain="icu"), name="synthetic_icu")
    test = cohort.subset("test").select(list(range(N_PROMPTS)))
    return [r.text for r in rendered_prompts(tokenizer, test, "mortality", "vanilla", config.prompt)]


@pytest.mark.parametrize("workload, new_tokens, required", [("decode", 64, 5.0), ("eval_prompts", 32, 1.0)])
def test_batched_vs_per_sample(benchmark, generator, workload, new_tokens, required):
    from methods.llm.generation import SamplingParams

    gen, config = generator
    prompts = _decode_prompts(gen.tokenizer) if workload == "decode" else _eval_prompts(gen.tokenizer, config)
    params = SamplingParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    total = len(prompts) * new_tokens

    started = time.perf_counter()
    gen.batch_size = 1
    single = gen.generate(prompts, params, desc="per-sample")
    per_sample_tps = total / (time.perf_counter() - started)

    gen.batch_size = N_PROMPTS
    batched = benchmark.pedantic(gen.generate, args=(prompts, params), kwargs={"desc": "batched"},
                                 rounds=1, iterations=1)
    batched_tps = total / gen.stats.seconds
    speedup = batched_tps / per_sample_tps
    prompt_tokens = sum(len(gen.tokenizer(p, add_special_tokens=False).input_ids) for p in prompts) / len(prompts)
    benchmark.extra_info.update({"workload": workload, "prompts": len(prompts), "mean_prompt_tokens": round(prompt_tokens),
                                 "new_tokens": new_tokens, "per_sample_tokens_per_s": round(per_sample_tps, 1),
                                 "batched_tokens_per_s": round(batched_tps, 1), "speedup": round(speedup, 2),
                                 "threads": config.threads, "dtype": config.backbone.dtype})
    print(f"\n{workload}: {len(prompts)} prompts x {new_tokens} tokens (prompt ~{prompt_tokens:.0f} tokens): "
          f"per-sample {per_sample_tps:.1f} tok/s, batched {batched_tps:.1f} tok/s, speed-up {speedup:.2f}x")
    assert all(c.n_tokens == new_tokens for c in single + batched)
    assert speedup >= required
