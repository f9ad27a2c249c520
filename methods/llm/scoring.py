"""Teacher-forced scoring: log-probabilities of given completions under the model.

:func:`completion_logprobs` returns ``log P(completion | prompt)`` summed over the completion's tokens,
batched with left padding. :func:`choice_probability` turns two candidate completions into the model's
probability of the second one, ``P(b) / (P(a) + P(b))``; Label SFT uses it with the answers ``0`` and
``1`` to report a continuous risk instead of a hard 0/1. The two answers share all tokens up to the label
(``{"answer": ``), so the prompt and that shared prefix go through the model once and only the tokens after
it are scored for each answer, from the prefix's key-value cache: one prompt-length forward per patient
instead of two (the prompt is ~95 % of the tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from methods.llm.chat import add_special_tokens_for


def completion_logprobs(model, tokenizer, prompts: Sequence[str], completions: Sequence[str],
                        batch_size: int = 16, progress: bool = True, desc: str = "score") -> np.ndarray:
    """``log P(completion_i | prompt_i)`` for each pair (sum over the completion tokens), shape (n,).

    The completion's tokens are those of ``prompt + completion`` beyond the tokenized prompt, so merges
    across the boundary cannot shift them.
    """
    import torch

    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        return np.zeros(0)
    special = add_special_tokens_for(tokenizer, prompts[0])
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sequences, starts = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        full, start = _token_ids(tokenizer, prompt, completion, special)
        sequences.append(full)
        starts.append(start)
    out = np.zeros(len(sequences))
    bar = tqdm(total=len(sequences), desc=desc, unit="seq", disable=not progress, leave=False)
    for begin in range(0, len(sequences), batch_size):
        chunk = range(begin, min(begin + batch_size, len(sequences)))
        width = max(len(sequences[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            ids[row, width - len(sequences[i]):] = torch.tensor(sequences[i])
            mask[row, width - len(sequences[i]):] = 1
        # Left padding aligns every completion at the end: only the last `keep` positions need logits
        # (the vocabulary projection of the whole prompt would cost more than the rest of the model).
        keep = max(len(sequences[i]) - starts[i] for i in chunk) + 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # predicts positions width-keep+1 .. width-1
        targets = ids[:, width - keep + 1:].to(device)
        token_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        for row, i in enumerate(chunk):
            n_completion = len(sequences[i]) - starts[i]
            out[i] = float(token_lp[row, keep - 1 - n_completion:].sum())
        bar.update(len(chunk))
    bar.close()
    return out


def _token_ids(tokenizer, prompt: str, completion: str, special: bool) -> tuple[list[int], int]:
    """Token ids of ``prompt + completion`` and the index of the first one that belongs to ``completion``."""
    prompt_ids = tokenizer(prompt, add_special_tokens=special).input_ids
    full = tokenizer(prompt + completion, add_special_tokens=special).input_ids
    start = 0
    while start < min(len(prompt_ids), len(full)) and prompt_ids[start] == full[start]:
        start += 1
    if start >= len(full):
        raise ValueError(f"completion {completion!r} adds no tokens to its prompt")
    return full, start


def choice_probability(model, tokenizer, prompts: Sequence[str], option_a: str, option_b: str,
                       batch_size: int = 16, progress: bool = True) -> np.ndarray:
    """``P(option_b) / (P(option_a) + P(option_b))`` per prompt, from teacher-forced log-probabilities.

    Equal to scoring both options with :func:`completion_logprobs` (tested): tokens the two options share
    before they differ have the same log-probability under both and cancel in the ratio, so each prompt and
    that shared prefix run once (left-padded batches, key-value cache kept), and only the differing tails are
    scored, each continuing from the cache.
    """
    import torch

    if not prompts:
        return np.zeros(0)
    special = add_special_tokens_for(tokenizer, prompts[0])
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = []
    for prompt in prompts:
        (full_a, start_a), (full_b, start_b) = (_token_ids(tokenizer, prompt, o, special) for o in (option_a, option_b))
        shared = 0
        while shared < min(len(full_a), len(full_b)) - 1 and full_a[shared] == full_b[shared]:
            shared += 1
        if shared < min(start_a, start_b) or full_a == full_b:
            raise ValueError(f"options {option_a!r} and {option_b!r} cannot be told apart after the prompt")
        rows.append((full_a[:shared], full_a[shared:], full_b[shared:]))
    out = np.zeros(len(rows))
    bar = tqdm(total=len(rows), desc="score answers", unit="seq", disable=not progress, leave=False)
    for begin in range(0, len(rows), batch_size):
        chunk = rows[begin:begin + batch_size]
        width = max(len(prefix) for prefix, _, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (prefix, _, _) in enumerate(chunk):
            ids[row, width - len(prefix):] = torch.tensor(prefix)
            mask[row, width - len(prefix):] = 1
        with torch.inference_mode():
            result = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(result.logits[:, -1].float(), dim=-1)
            cache = result.past_key_values
            scores = []
            for option in (1, 2):
                tails = [entry[option] for entry in chunk]
                lp = first.gather(-1, torch.tensor([[t[0]] for t in tails], device=device)).squeeze(-1)
                longest = max(len(t) for t in tails)
                if longest > 1:  # feed tail[:-1] from the cache; right padding sits after every scored position
                    cont = torch.full((len(chunk), longest - 1), pad_id, dtype=torch.long)
                    cont_mask = torch.zeros_like(cont)
                    for row, tail in enumerate(tails):
                        cont[row, :len(tail) - 1] = torch.tensor(tail[:-1])
                        cont_mask[row, :len(tail) - 1] = 1
                    logits = model(input_ids=cont.to(device), attention_mask=torch.cat([mask, cont_mask], 1).to(device),
                                   cache=cache, use_cache=True).logits
                    cache.crop(-(longest - 1))  # back to the shared prefix for the other option
                    steps = torch.log_softmax(logits.float(), dim=-1)
                    for row, tail in enumerate(tails):
                        if len(tail) > 1:
                            targets = torch.tensor(tail[1:], device=device)
                            lp[row] += steps[row, :len(tail) - 1].gather(-1, targets.unsqueeze(-1)).sum()
                scores.append(lp.cpu().numpy().astype(float))
        out[begin:begin + len(chunk)] = 1.0 / (1.0 + np.exp(scores[0] - scores[1]))
        bar.update(len(chunk))
    bar.close()
    return out
