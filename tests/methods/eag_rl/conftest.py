"""Stage-1 tests run on the LLM layer's tiny model (its fixtures are shared from there); stage-2 tests share the
tokenizer of :mod:`tests.methods.eag_rl.tiny_grpo`."""

import pytest

from tests.methods.llm.conftest import tiny_model_dir, workdir  # noqa: F401


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE tokenizer (~300 tokens) trained on the QD tags; <eos> doubles as padding."""
    from tests.methods.eag_rl.tiny_grpo import make_tokenizer

    return make_tokenizer()
