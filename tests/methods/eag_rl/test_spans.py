"""The <Important Features> span of a QD completion: characters (as the parser reads them) and tokens."""

from __future__ import annotations

import torch

from methods.eag_rl.spans import important_features_span, span_token_mask
from methods.llm.parsing import parse_answer, split_features


def test_important_features_span_matches_the_parser():
    text = ("<Subquestion>HR?</Subquestion><Answer>high</Answer>"
            "<Important Features> Heart Rate, pH </Important Features><Final answer>0.8</Final answer>")
    start, end = important_features_span(text)
    assert text[start:end] == "Heart Rate, pH"
    assert split_features(text[start:end]) == parse_answer(text, "qd").features
    unclosed = "<Important Features>Glucose\n<Final answer>0.1"
    s, e = important_features_span(unclosed)
    assert unclosed[s:e] == "Glucose"
    assert important_features_span("<Final answer>0.3</Final answer>") is None
    assert important_features_span("<Important Features>  </Important Features>") is None


def test_span_token_mask_covers_exactly_the_feature_tokens(tokenizer):
    texts = ["<Answer>yes</Answer><Important Features>Heart Rate, pH</Important Features><Final answer>0.7",
             "<Final answer>0.2</Final answer>"]
    encoded = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    width = max(map(len, encoded))
    ids = torch.full((2, width), tokenizer.pad_token_id)
    mask = torch.zeros(2, width, dtype=torch.long)
    for row, seq in enumerate(encoded):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    span = span_token_mask(tokenizer, ids, mask)
    chosen = [int(t) for t, m in zip(ids[0], span[0], strict=True) if m]
    decoded = tokenizer.decode(chosen)
    assert "Heart Rate, pH" in decoded
    assert "Important" not in decoded and "Final" not in decoded
    assert span[1].sum() == 0
