"""A tiny GRPO set-up for the stage-2 tests: a byte-level BPE tokenizer, a random two-layer Llama, toy data.

Every model here is a randomly initialised two-layer Llama with a byte-level BPE tokenizer trained in the
test on a few lines (no download, no backbone): it produces garbage, which is all these tests need.
"""

from __future__ import annotations

import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig

VOCAB = ["Heart Rate", "Oxygen saturation", "pH", "Glucose", "Temperature"]
EXPERT = ["Heart Rate", "Oxygen saturation", "pH"]
CORPUS = [
    "<Subquestion>Is the heart rate high?</Subquestion><Answer>yes</Answer>",
    "<Important Features>Heart Rate, Oxygen saturation, pH</Important Features>",
    "<Final answer>0.7</Final answer> patient record glucose temperature 0123456789",
]


def make_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (~300 tokens) trained on the QD tags; <eos> doubles as padding."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 5, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<eos>")
    tok.padding_side = "left"
    return tok


def tiny_model(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    """A random 2-layer Llama (hidden 32) over the test tokenizer's vocabulary."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    return LlamaForCausalLM(config)


def grpo_config(tmp_path, **overrides) -> GRPOConfig:
    """A CPU ``GRPOConfig`` of two tiny steps (G = 2, 8 tokens), with ``overrides``."""
    values = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=8,
                  max_steps=2, learning_rate=1e-2, logging_steps=1, save_strategy="no", report_to="none",
                  use_cpu=True, bf16=False, gradient_checkpointing=False, disable_tqdm=True, seed=0,
                  loss_type="grpo", beta=0.0)
    values.update(overrides)
    return GRPOConfig(**values)


def prompts_dataset(n: int = 4) -> Dataset:
    """``n`` toy patients: even ones get a varying toy reward, odd ones a constant one."""
    return Dataset.from_list([{"prompt": f"patient {i} record:", "label": i % 2, "expert_top_k": EXPERT,
                               "kind": "constant" if i % 2 else "varying", "id": f"p{i}"} for i in range(n)])


def toy_reward(completions, kind, **kwargs):
    """Varies with the completion for 'varying' prompts, constant for 'constant' ones."""
    return [0.5 if k == "constant" else float(sum(map(ord, c)) % 97) / 97 for c, k in zip(completions, kind, strict=True)]
