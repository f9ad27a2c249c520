"""Batched HF generation (left padding, seeds, lengths, order), backend choice, chat rendering, scoring."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from benchmark.config import ConfigError
from methods.llm import generation as gen
from methods.llm.chat import add_special_tokens_for, end_of_turn, render
from methods.llm.config import GenerationConfig
from methods.llm.prompting import style_prompt
from methods.llm.scoring import completion_logprobs, next_token_choice
from methods.llm.sft import decimal_answers


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from methods.llm.backbone import load_tokenizer

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def prompts(tiny, small_icu):
    _, tokenizer = tiny
    return [render(tokenizer, style_prompt(small_icu, i, "mortality", "vanilla")).text for i in range(5)]


def test_greedy_is_deterministic_and_batching_does_not_change_answers(tiny, prompts):
    model, tokenizer = tiny
    params = gen.SamplingParams(max_new_tokens=6)
    batched = gen.HFGenerator(model, tokenizer, batch_size=4, progress=False).generate(prompts, params)
    again = gen.HFGenerator(model, tokenizer, batch_size=4, progress=False).generate(prompts, params)
    one_by_one = gen.HFGenerator(model, tokenizer, batch_size=1, progress=False).generate(prompts, params)
    assert [c.text for c in batched] == [c.text for c in again]
    # Left padding: a prompt in a padded batch is answered as when it is alone (output order = prompt order).
    assert [c.text for c in batched] == [c.text for c in one_by_one]
    assert all(0 < c.n_tokens <= 6 for c in batched)


def test_sampling_is_reproducible_with_a_seed(tiny, prompts):
    model, tokenizer = tiny
    generator = gen.HFGenerator(model, tokenizer, batch_size=3, progress=False)
    a = generator.generate(prompts, gen.SamplingParams(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1))
    b = generator.generate(prompts, gen.SamplingParams(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1))
    c = generator.generate(prompts, gen.SamplingParams(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=2))
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a] != [x.text for x in c]


def test_n_samples_per_prompt_in_prompt_major_order(tiny, prompts):
    model, tokenizer = tiny
    generator = gen.HFGenerator(model, tokenizer, batch_size=4, progress=False)
    out = generator.generate(prompts[:2], gen.SamplingParams(max_new_tokens=4, n=3))
    greedy = generator.generate(prompts[:2], gen.SamplingParams(max_new_tokens=4))
    assert len(out) == 6
    assert [c.text for c in out[:3]] == [greedy[0].text] * 3 and [c.text for c in out[3:]] == [greedy[1].text] * 3
    assert generator.generate([], gen.SamplingParams()) == []


def test_min_new_tokens_forces_length_and_stats_count_tokens(tiny, prompts):
    model, tokenizer = tiny
    generator = gen.HFGenerator(model, tokenizer, batch_size=5, progress=False)
    out = generator.generate(prompts, gen.SamplingParams(max_new_tokens=5, min_new_tokens=5))
    assert all(c.n_tokens == 5 for c in out)
    assert generator.stats.new_tokens == 25 and generator.stats.tokens_per_second > 0
    with pytest.raises(ConfigError):
        gen.HFGenerator(model, tokenizer, batch_size=0)


def test_backend_choice_without_vllm(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    assert not gen.vllm_available()
    assert gen.choose_backend(GenerationConfig(backend="auto")) == "hf"
    assert gen.choose_backend(GenerationConfig(backend="hf")) == "hf"
    with pytest.raises(ConfigError, match="vllm"):
        gen.choose_backend(GenerationConfig(backend="vllm"))


def test_render_with_and_without_chat_template(tiny, small_icu):
    _, tokenizer = tiny
    prompt = style_prompt(small_icu, 0, "mortality", "qd")
    rendered = render(tokenizer, prompt)
    assert rendered.text.startswith("<|im_start|>system\n" + prompt.system)
    assert rendered.text.endswith("<|im_start|>assistant\n")
    for name, [(start, end)] in rendered.spans.items():
        assert rendered.text[start:end].startswith(f"- {name} (Unit:")
    plain = render(tokenizer, prompt, use_template=False)
    assert plain.text == prompt.text + "\n\n" and plain.spans == prompt.spans
    assert not add_special_tokens_for(tokenizer, rendered.text) and add_special_tokens_for(tokenizer, plain.text)
    assert end_of_turn(tokenizer) == "<|im_end|>"


def test_completion_logprobs_match_a_manual_forward(tiny, prompts):
    model, tokenizer = tiny
    completion = '{"answer": 1}'
    scores = completion_logprobs(model, tokenizer, prompts[:3], [completion] * 3, batch_size=2, progress=False)
    for prompt, score in zip(prompts[:3], scores, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
        full = tokenizer(prompt + completion, add_special_tokens=False).input_ids
        start = next(i for i, (a, b) in enumerate(zip(prompt_ids, full, strict=False)) if a != b) \
            if full[:len(prompt_ids)] != prompt_ids else len(prompt_ids)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0], -1)
        manual = sum(float(logp[t - 1, full[t]]) for t in range(start, len(full)))
        assert score == pytest.approx(manual, abs=1e-4)
    with pytest.raises(ValueError, match="adds no tokens"):
        completion_logprobs(model, tokenizer, prompts[:1], [""], progress=False)


def _hand_choice(model, tokenizer, prompt: str, options: list[str]) -> np.ndarray:
    """The choice among ``options`` from one full forward pass per option (no cache, no batching)."""
    sequences = [tokenizer(prompt + option, add_special_tokens=False).input_ids for option in options]
    at = next(i for i in range(min(map(len, sequences))) if len({s[i] for s in sequences}) > 1)
    probabilities = []
    for sequence in sequences:
        with torch.no_grad():
            logits = model(torch.tensor([sequence])).logits[0]
        probabilities.append(float(torch.softmax(logits[at - 1].float(), -1)[sequence[at]]))
    return np.array(probabilities) / sum(probabilities)


@pytest.mark.parametrize("options", [['{"answer": 0}', '{"answer": 1}'], decimal_answers(), [" low", " high, 0.9"]])
def test_next_token_choice_equals_full_forward_passes(tiny, prompts, options):
    """One prefix pass per prompt, left-padded in batches, gives what one full pass per option gives."""
    model, tokenizer = tiny
    choice = next_token_choice(model, tokenizer, prompts[:5], options, batch_size=2, progress=False)
    assert choice.shape == (5, len(options)) and np.allclose(choice.sum(1), 1.0)
    hand = np.stack([_hand_choice(model, tokenizer, prompt, options) for prompt in prompts[:5]])
    assert choice == pytest.approx(hand, abs=1e-5)
    # The label token is where the answers differ, also where the tokenizer merged ' 0' into one token.
    assert tokenizer.decode(tokenizer('{"answer": 0}').input_ids[-2]) == " 0"


def test_next_token_choice_refuses_options_it_cannot_tell_apart(tiny, prompts):
    model, tokenizer = tiny
    for options in (['{"answer": 0}', '{"answer": 0}'], ['{"answer": 0', '{"answer": 0}'], ["0"]):
        with pytest.raises(ValueError):
            next_token_choice(model, tokenizer, prompts[:1], options, progress=False)
    assert next_token_choice(model, tokenizer, [], ["0", "1"]).shape == (0, 2)


def test_cut_at_stop_takes_the_earliest_stop_string():
    assert gen.cut_at_stop("a</A>\nb", ("\n", "</A>")) == ("a", True)
    assert gen.cut_at_stop("abc", ("</A>",)) == ("abc", False)
    assert gen.cut_at_stop("abc", ()) == ("abc", False)


def test_stop_strings_end_completions_before_the_stop(tiny, prompts):
    model, tokenizer = tiny
    generator = gen.HFGenerator(model, tokenizer, batch_size=2, progress=False)
    sampling = dict(max_new_tokens=16, min_new_tokens=16, temperature=1.0, seed=3)
    free = generator.generate(prompts[:2], gen.SamplingParams(**sampling))
    stop = free[0].text.strip()[-2:]
    assert len(stop) == 2  # the tiny model writes some visible text
    stopped = generator.generate(prompts[:2], gen.SamplingParams(**sampling, stop=(stop,)))
    assert stopped[0].text == free[0].text[:free[0].text.find(stop)] and stopped[0].finished
