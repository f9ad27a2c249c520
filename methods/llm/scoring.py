"""Teacher-forced scoring: log-probabilities of given completions, and the model's choice among answers.

:func:`completion_logprobs` returns ``log P(completion | prompt)`` summed over the completion's tokens,
batched with left padding.

:func:`next_token_choice` reads the model's choice among candidate answers where it is made: at the first
token in which the tokenized answers differ, as the next-token probabilities of their tokens there,
normalised over the candidates. Label SFT reports its risk this way (:func:`methods.llm.sft.label_scores`):
the answers ``{"answer": 0}`` and ``{"answer": 1}`` differ in the label token, the ten answers
``{"answer": 0.0`` … ``{"answer": 0.9`` in the first decimal. Scoring the whole answers instead (the
earlier readout) multiplies in how likely each is to *end* there: under a model that writes decimals
``P("}" | "0")`` is small for every patient, so that ratio measured the formatting, not the answer.
The prompt and the shared prefix run once; only the last position's logits are computed.
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


def next_token_choice(model, tokenizer, prompts: Sequence[str], options: Sequence[str], batch_size: int = 16,
                      progress: bool = True, desc: str = "score answers") -> np.ndarray:
    """The model's choice among ``options`` at the first token where they differ, shape (n, len(options)).

    Row i holds ``P(t_k | prompt_i + shared prefix)`` of each option's token ``t_k`` at that position,
    normalised over the options (the softmax of their logits there). The position comes from the tokenized
    ``prompt + option`` sequences, not from characters: a tokenizer may merge ``" 0"`` or ``"0."`` into one
    token. Each prompt and the shared prefix run once (left-padded batches; only the last position's logits
    are computed). Raises ``ValueError`` when the options share their tokens into the prompt or do not
    differ in one token each (e.g. one is a prefix of another).
    """
    import torch

    if len(options) < 2:
        raise ValueError(f"at least two options are needed, got {list(options)!r}")
    if not prompts:
        return np.zeros((0, len(options)))
    special = add_special_tokens_for(tokenizer, prompts[0])
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = [_choice_position(tokenizer, prompt, options, special) for prompt in prompts]
    out = np.zeros((len(rows), len(options)))
    bar = tqdm(total=len(rows), desc=desc, unit="seq", disable=not progress, leave=False)
    for begin in range(0, len(rows), batch_size):
        chunk = rows[begin:begin + batch_size]
        width = max(len(prefix) for prefix, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (prefix, _) in enumerate(chunk):
            ids[row, width - len(prefix):] = torch.tensor(prefix)
            mask[row, width - len(prefix):] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=1).logits[:, -1]
        chosen = logits.float().gather(-1, torch.tensor([tokens for _, tokens in chunk], device=device))
        out[begin:begin + len(chunk)] = torch.softmax(chosen, dim=-1).cpu().numpy()
        bar.update(len(chunk))
    bar.close()
    return out


def _choice_position(tokenizer, prompt: str, options: Sequence[str], special: bool) -> tuple[list[int], list[int]]:
    """``(prompt + shared prefix token ids, each option's token at the first position where they differ)``."""
    tokenized = [_token_ids(tokenizer, prompt, option, special) for option in options]
    sequences = [full for full, _ in tokenized]
    shared = 0
    while all(len(s) > shared for s in sequences) and len({s[shared] for s in sequences}) == 1:
        shared += 1
    if shared < min(start for _, start in tokenized) or any(len(s) <= shared for s in sequences):
        raise ValueError(f"options {list(options)!r} do not differ in a token of their own after the prompt")
    tokens = [s[shared] for s in sequences]
    if len(set(tokens)) < len(tokens):
        raise ValueError(f"options {list(options)!r}: some share their first differing token, so the model's "
                         f"choice among them cannot be read at one position")
    return sequences[0][:shared], tokens
