"""The tokens of a QD completion's ``<Important Features>`` span, whose mean entropy ε(τ) is computed from.

The span is found in the decoded text (:func:`important_features_span`, the parser's rule) and mapped back to
the generated tokens through per-token character offsets (:func:`token_char_ends`, :func:`span_token_mask`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from methods.llm.formats import ANY_TAG_RE, FEATURES_TAG, tag_pattern

_FEATURES_OPEN = re.compile(tag_pattern(FEATURES_TAG), re.IGNORECASE)


def important_features_span(text: str) -> tuple[int, int] | None:
    """Character range of the content of the last ``<Important Features>`` tag, whitespace stripped.

    The same rule as :func:`methods.llm.parsing.parse_answer`: the content runs to the next known tag
    (closing or not) or to the end of the text. ``None`` when there is no tag or its content is empty.
    """
    openings = list(_FEATURES_OPEN.finditer(text))
    if not openings:
        return None
    start = openings[-1].end()
    following = ANY_TAG_RE.search(text, start)
    end = following.start() if following else len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def token_char_ends(tokenizer, ids: Sequence[int]) -> list[int]:
    """For each token, the length of the decoded text up to and including it (non-decreasing).

    Decoding growing prefixes (rather than re-tokenizing the text) keeps the offsets true to the tokens
    the policy actually generated; a token that completes a multi-byte character only becomes visible
    with that character, and special tokens have zero width.
    """
    ends, longest = [], 0
    for t in range(len(ids)):
        longest = max(longest, len(tokenizer.decode(list(ids[: t + 1]), skip_special_tokens=True)))
        ends.append(longest)
    return ends


def span_token_mask(tokenizer, completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` 0/1 mask of the tokens that overlap each completion's ``<Important Features>`` content."""
    mask = torch.zeros_like(completion_mask, dtype=torch.float32)
    for row in range(completion_ids.size(0)):
        length = int(completion_mask[row].sum().item())
        ids = completion_ids[row, :length].tolist()
        text = tokenizer.decode(ids, skip_special_tokens=True)
        span = important_features_span(text)
        if span is None:
            continue
        ends = token_char_ends(tokenizer, ids)
        begin = 0
        for t, end in enumerate(ends):
            if end > begin and begin < span[1] and end > span[0]:
                mask[row, t] = 1.0
            begin = end
    return mask
