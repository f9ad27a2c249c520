"""TRL's fused log-prob head, tiled to the vocabulary (methods/llm/fused_head.py)."""

from __future__ import annotations

import pytest
import torch
import trl.trainer.utils as trl_utils
from transformers import LlamaConfig, LlamaForCausalLM

from methods.llm.fused_head import TRL_LOGPROB_CHUNK, fit_logprob_chunk


@pytest.fixture
def restore_chunk():
    yield
    trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = TRL_LOGPROB_CHUNK


def _fused_logprobs(model, ids):
    labels = ids.clone()
    labels[:, :3] = -100  # score the "completion" only, as GRPO and completion-only SFT do
    return model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs


def test_a_small_vocabulary_gets_a_one_tile_chunk_with_the_same_log_probabilities(restore_chunk):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=4))
    trl_utils.add_fused_lm_head(model)
    ids = torch.randint(0, 96, (2, 9))
    with torch.no_grad():
        wide = _fused_logprobs(model, ids)
        assert fit_logprob_chunk(96) == 96 == trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE
        narrow = _fused_logprobs(model, ids)
    assert torch.equal(wide, narrow)
    with torch.no_grad():  # and they are the log-softmax of the plain head, the quantity TRL scores
        logits = model(input_ids=ids).logits[:, :-1].log_softmax(-1)
    expected = logits.gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert torch.allclose(narrow[:, 2:], expected[:, 2:], atol=1e-5)


def test_a_large_vocabulary_keeps_trl_s_chunk(restore_chunk):
    assert fit_logprob_chunk(10 * TRL_LOGPROB_CHUNK) == TRL_LOGPROB_CHUNK
