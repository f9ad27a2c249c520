"""Teacher-forced scoring: log-probabilities of given completions under the model.

:func:`completion_logprobs` returns ``log P(completion | prompt)`` summed over the completion's tokens,
batched with left padding. :func:`choice_probability` turns two candidate completions into the model's
probability of the second one, ``P(b) / (P(a) + P(b))``; Label SFT uses it with the answers ``0`` and
``1`` to report a continuous risk instead of a hard 0/1.
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
        prompt_ids = tokenizer(prompt, add_special_tokens=special).input_ids
        full = tokenizer(prompt + completion, add_special_tokens=special).input_ids
        start = 0
        while start < min(len(prompt_ids), len(full)) and prompt_ids[start] == full[start]:
            start += 1
        if start >= len(full):
            raise ValueError(f"completion {completion!r} adds no tokens to its prompt")
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


def choice_probability(model, tokenizer, prompts: Sequence[str], option_a: str, option_b: str,
                       batch_size: int = 16, progress: bool = True) -> np.ndarray:
    """``P(option_b) / (P(option_a) + P(option_b))`` per prompt, from teacher-forced log-probabilities."""
    n = len(prompts)
    both = completion_logprobs(model, tokenizer, list(prompts) * 2, [option_a] * n + [option_b] * n,
                               batch_size, progress, desc="score answers")
    a, b = both[:n], both[n:]
    return 1.0 / (1.0 + np.exp(a - b))
