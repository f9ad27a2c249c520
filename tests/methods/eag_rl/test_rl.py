"""EAG-RL stage 2 on TRL: the ε(τ) loss override, dynamic sampling, span tokens, reward adapters, a few steps.

Every model here is a randomly initialised two-layer Llama with a byte-level BPE tokenizer trained in the
test on a few lines (no download, no backbone): it produces garbage, which is all these tests need.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig, GRPOTrainer

from benchmark.config import ConfigError
from methods.eag_rl.rewards import RewardConfig, unparsable_reward
from methods.eag_rl.rl import (
    DEFAULT_VARIANTS,
    RLConfig,
    load_rl_section,
    resolve_variant,
    reward_config,
    reward_functions,
)
from methods.eag_rl.rl_trainer import (
    AdaptiveClip,
    CompositeReward,
    DynamicSampling,
    EAGRLTrainer,
    concat_batches,
    important_features_span,
    span_token_mask,
    varying_groups,
)
from methods.llm.parsing import parse_answer, split_features
from tests.wallclock import timing_keys

VOCAB = ["Heart Rate", "Oxygen saturation", "pH", "Glucose", "Temperature"]
EXPERT = ["Heart Rate", "Oxygen saturation", "pH"]
CORPUS = [
    "<Subquestion>Is the heart rate high?</Subquestion><Answer>yes</Answer>",
    "<Important Features>Heart Rate, Oxygen saturation, pH</Important Features>",
    "<Final answer>0.7</Final answer> patient record glucose temperature 0123456789",
]


@pytest.fixture(scope="module")
def tokenizer():
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
    values = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=8,
                  max_steps=2, learning_rate=1e-2, logging_steps=1, save_strategy="no", report_to="none",
                  use_cpu=True, bf16=False, gradient_checkpointing=False, disable_tqdm=True, seed=0,
                  loss_type="grpo", beta=0.0)
    values.update(overrides)
    return GRPOConfig(**values)


def prompts_dataset(n: int = 4) -> Dataset:
    return Dataset.from_list([{"prompt": f"patient {i} record:", "label": i % 2, "expert_top_k": EXPERT,
                               "kind": "constant" if i % 2 else "varying", "id": f"p{i}"} for i in range(n)])


def toy_reward(completions, kind, **kwargs):
    """Varies with the completion for 'varying' prompts, constant for 'constant' ones."""
    return [0.5 if k == "constant" else float(sum(map(ord, c)) % 97) / 97 for c, k in zip(completions, kind, strict=True)]


# ------------------------------------------------------------------------------------- loss override
def loss_inputs(tokenizer, batch: int = 4, prompt_len: int = 5, completion_len: int = 6, seed: int = 1):
    """A hand-made scored batch: ratios spread well beyond 1 ± 0.4, advantages of both signs."""
    g = torch.Generator().manual_seed(seed)
    vocab = len(tokenizer)
    completion_mask = torch.ones(batch, completion_len, dtype=torch.long)
    completion_mask[1, -2:] = 0
    return {
        "prompt_ids": torch.randint(0, vocab, (batch, prompt_len), generator=g),
        "prompt_mask": torch.ones(batch, prompt_len, dtype=torch.long),
        "completion_ids": torch.randint(0, vocab, (batch, completion_len), generator=g),
        "completion_mask": completion_mask,
        "advantages": torch.tensor([1.0, -1.0, 0.5, -0.5])[:batch],
        # old log-probs far from the current ones: exp(new - old) spans ~[0.4, 2.5]
        "old_per_token_logps": None,
        "num_items_in_batch": completion_mask.sum(),
    }


@pytest.fixture(scope="module")
def loss_setup(tokenizer, tmp_path_factory):
    model = tiny_model(tokenizer)
    trainer = EAGRLTrainer(model=model, reward_funcs=[toy_reward], args=grpo_config(tmp_path_factory.mktemp("loss")),
                           train_dataset=prompts_dataset(), processing_class=tokenizer,
                           adaptive_clip=AdaptiveClip(0.2, 0.4, "group"))
    trainer.current_gradient_accumulation_steps = 1
    inputs = loss_inputs(tokenizer)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1),
            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1), inputs["completion_ids"].size(1))
    shift = torch.randn(logps.shape, generator=torch.Generator().manual_seed(3)) * 0.6
    inputs["old_per_token_logps"] = logps + shift
    return trainer, inputs


def test_custom_loss_equals_trl_loss_at_fixed_epsilon(loss_setup):
    trainer, inputs = loss_setup
    assert trainer.epsilon_low == 0.2 and trainer.epsilon_high == 0.2
    reference = GRPOTrainer._compute_loss(trainer, trainer.model, dict(inputs))
    trainer._metrics["train"].clear()
    ours = trainer._compute_loss(trainer.model, {**inputs, "epsilon_high": torch.full((4,), 0.2)})
    assert torch.equal(ours, reference)
    assert trainer.epsilon_high == 0.2 and isinstance(trainer.epsilon_high, float)  # scalar restored
    assert trainer.epsilon_low == 0.2 and isinstance(trainer.epsilon_low, float)


def test_per_row_epsilon_acts_row_by_row(loss_setup):
    """Rows with ε(τ)=0.4 and rows with 0.2 give the row-average of TRL's losses at 0.4 and at 0.2."""
    trainer, inputs = loss_setup
    losses = {}
    for eps in (0.2, 0.4):
        trainer.epsilon_high = eps
        losses[eps] = [GRPOTrainer._compute_loss(trainer, trainer.model,
                                                 {**{k: (v[i:i + 1] if torch.is_tensor(v) and v.ndim else v)
                                                     for k, v in inputs.items()}}) for i in range(4)]
    trainer.epsilon_high = 0.2
    assert not torch.isclose(sum(losses[0.2]), sum(losses[0.4]))  # the upper clip binds in this batch
    mixed = torch.tensor([0.4, 0.2, 0.4, 0.2])
    ours = trainer._compute_loss(trainer.model, {**inputs, "epsilon_high": mixed})
    expected = (losses[0.4][0] + losses[0.2][1] + losses[0.4][2] + losses[0.2][3]) / 4
    assert torch.allclose(ours, expected, atol=1e-6)


# ----------------------------------------------------------------------------------- span tokens
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


# --------------------------------------------------------------------------------- dynamic sampling
def test_varying_groups_flags_constant_groups():
    rewards = torch.tensor([0.1, 0.1, 0.1, 0.5, 0.2, 0.2, float("nan"), 0.2])
    assert varying_groups(rewards, 2).tolist() == [False, True, False, False]
    assert varying_groups(rewards, 4).tolist() == [True, False]


def test_concat_batches_repads_left_and_right():
    a = {"prompt_ids": torch.tensor([[5, 6]]), "prompt_mask": torch.tensor([[1, 1]]),
         "completion_ids": torch.tensor([[7]]), "completion_mask": torch.tensor([[1]]),
         "advantages": torch.tensor([1.0]), "num_items_in_batch": torch.tensor(1)}
    b = {"prompt_ids": torch.tensor([[4, 5, 6]]), "prompt_mask": torch.tensor([[1, 1, 1]]),
         "completion_ids": torch.tensor([[8, 9]]), "completion_mask": torch.tensor([[1, 1]]),
         "advantages": torch.tensor([-1.0]), "num_items_in_batch": torch.tensor(2)}
    merged = concat_batches([a, b], pad_token_id=0)
    assert merged["prompt_ids"].tolist() == [[0, 5, 6], [4, 5, 6]]
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[7, 0], [8, 9]]
    assert merged["completion_mask"].tolist() == [[1, 0], [1, 1]]
    assert int(merged["num_items_in_batch"]) == 3
    with pytest.raises(ValueError, match="pixel_values"):
        concat_batches([{**a, "pixel_values": torch.zeros(1, 3)}, {**b, "pixel_values": torch.zeros(1, 3)}], 0)


def test_dynamic_sampling_drops_zero_variance_groups(tokenizer, tmp_path):
    """Half the prompts get a constant reward: every kept group must vary, and the batch stays full."""
    trainer = EAGRLTrainer(model=tiny_model(tokenizer), reward_funcs=[toy_reward],
                           args=grpo_config(tmp_path, per_device_train_batch_size=4, num_generations=2),
                           train_dataset=prompts_dataset(8), processing_class=tokenizer,
                           dynamic_sampling=DynamicSampling(max_rounds=6, tolerance=1e-6, seed=0))
    trainer.model.train()
    rows = prompts_dataset(8)
    batch = [dict(rows[i]) for i in (0, 1) for _ in range(2)]  # one varying and one constant group
    out = trainer._generate_and_score_completions(batch)
    assert out["completion_ids"].size(0) == 4
    kept = trainer._metrics["train"]["dynamic_sampling/kept_groups"][-1]
    assert kept == 2 and trainer._metrics["train"]["dynamic_sampling/rounds"][-1] >= 2
    assert (out["advantages"].view(2, 2).abs().sum(-1) > 0).all()  # zero-variance groups have advantage 0
    # the trajectory records follow the kept rows: one patient per group, only 'varying' (even) patients
    records = trainer.trajectory_records
    assert len(records) == 4 and [r["group"] for r in records] == [0, 0, 1, 1]
    ids = [r["id"] for r in records]
    assert ids[0] == ids[1] and ids[2] == ids[3] and all(int(i[1:]) % 2 == 0 for i in ids)
    assert all(math.isnan(r["attention"]) and math.isnan(r["span_entropy"]) for r in records)  # toy reward: no parts


def test_trajectory_records_carry_patient_and_r_att_without_span_entropy(tokenizer, tmp_path):
    """A fixed-clip run (no extra forward) still records every trajectory with its patient and R_att."""
    from methods.eag_rl.rl_trainer import TRAJECTORY_COLUMNS

    reward = CompositeReward(RewardConfig(), VOCAB)
    trainer = EAGRLTrainer(model=tiny_model(tokenizer), reward_funcs=[reward],
                           args=grpo_config(tmp_path, per_device_train_batch_size=4, num_generations=2),
                           train_dataset=prompts_dataset(4), processing_class=tokenizer)
    trainer.model.train()
    rows = prompts_dataset(4)
    trainer._generate_and_score_completions([dict(rows[i]) for i in (2, 3) for _ in range(2)])
    records = trainer.trajectory_records
    assert [tuple(r) for r in records] == [TRAJECTORY_COLUMNS] * 4
    assert [r["id"] for r in records] == ["p2", "p2", "p3", "p3"]
    assert [r["attention"] for r in records] == [p.attention for p in reward.last_parts]
    assert [r["parsed"] for r in records] == [float(p.parsed) for p in reward.last_parts]
    assert [r["reward"] for r in records] == pytest.approx([p.total for p in reward.last_parts])
    assert all(math.isnan(r["span_entropy"]) and r["epsilon_high"] == 0.2 for r in records)


def test_normalize_then_sum_gives_each_part_its_weight_in_the_advantage(tokenizer, tmp_path, monkeypatch):
    """GDPO aggregation: each part is z-scored within its group, then weighted (0.6, 0.4); the logged reward
    stays the composite total. Hand-computed from fixed parts, so the log-likelihood's spread cannot drown R_att."""
    from methods.eag_rl.rewards import RewardParts

    config = RLConfig(advantage_aggregation="normalize_then_sum")
    funcs, weights = reward_functions(RewardConfig(), config, VOCAB)
    assert [f.part for f in funcs] == ["outcome", "attention"] and weights == pytest.approx([0.6, 0.4])
    outcome = [-4.0, -0.1, -2.0, -2.0]
    attention = [0.2, 0.0, 0.5, 1.0]
    parts = [RewardParts(0.6 * o + 0.4 * a, o, o, 0.0, a, True) for o, a in zip(outcome, attention, strict=True)]
    for f in funcs:
        monkeypatch.setattr(f, "score", lambda texts, labels, top_k: parts[: len(texts)])
    trainer = EAGRLTrainer(model=tiny_model(tokenizer), reward_funcs=funcs,
                           args=grpo_config(tmp_path, per_device_train_batch_size=4, num_generations=2,
                                            reward_weights=weights, multi_objective_aggregation="normalize_then_sum"),
                           train_dataset=prompts_dataset(4), processing_class=tokenizer)
    trainer.model.train()
    rows = prompts_dataset(4)
    output = trainer._generate_and_score_completions([dict(rows[i]) for i in (0, 1) for _ in range(2)])

    def z(values):
        x = torch.tensor(values).view(2, 2)
        return ((x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True) + 1e-4)).flatten()

    summed = 0.6 * z(outcome) + 0.4 * z(attention)
    expected = (summed - summed.mean()) / (summed.std() + 1e-4)
    assert output["advantages"].flatten().tolist() == pytest.approx(expected.tolist(), abs=1e-4)
    assert [r["reward"] for r in trainer.trajectory_records] == pytest.approx([p.total for p in parts])
    assert [r["attention"] for r in trainer.trajectory_records] == pytest.approx(attention)


def test_outcome_only_variants_keep_one_reward_function():
    funcs, weights = reward_functions(RewardConfig(use_attention=False),
                                      RLConfig(advantage_aggregation="normalize_then_sum"), VOCAB)
    assert [f.part for f in funcs] == ["total"] and weights == [1.0]
    with pytest.raises(ValueError, match="part must be one of"):
        CompositeReward(RewardConfig(), VOCAB, part="loglik")


# ------------------------------------------------------------------------------------ reward adapter
def test_composite_reward_adapter_on_hand_made_completions():
    reward = CompositeReward(RewardConfig(), VOCAB)
    good = "<Important Features>heart rate, Oxygen Saturation, pH</Important Features><Final answer>0.9</Final answer>"
    hallucinated = "<Important Features>Heart Rate, Lactate</Important Features><Final answer>0.9</Final answer>"
    wrong = "<Important Features>Glucose</Important Features><Final answer>0.2</Final answer>"
    garbage = "I cannot tell."
    logged = {}
    out = reward(prompts=[""] * 4, completions=[good, hallucinated, wrong, garbage], label=[1, 1, 1, 1],
                 expert_top_k=[EXPERT] * 4, log_metric=lambda k, v: logged.setdefault(k, v))
    r_cls = math.log(0.9) + 0.5 * 0.4
    assert out[0] == pytest.approx(0.6 * r_cls + 0.4 * 1.0)
    assert out[1] == pytest.approx(0.6 * r_cls + 0.4 * (1 / 4))  # Lactate is counted against the IoU
    assert out[2] == pytest.approx(0.6 * math.log(0.2))
    assert out[3] == pytest.approx(unparsable_reward(RewardConfig()))
    assert logged["reward_parts/parsed"] == pytest.approx(0.75)
    outcome_only = CompositeReward(RewardConfig(use_attention=False), VOCAB)
    conversational = [[{"role": "assistant", "content": good}]]
    assert outcome_only(prompts=[""], completions=conversational, label=[1], expert_top_k=[EXPERT])[0] == \
        pytest.approx(r_cls)


# -------------------------------------------------------------------------------------- variants
def test_variants_resolve_as_documented():
    section = load_rl_section({"eag_rl": {"reward": {"lam": 0.6}, "rl": {"train": {"max_steps": 3}}}})
    assert set(section.variants) == set(DEFAULT_VARIANTS)
    grpo, dapo = resolve_variant(section, "grpo"), resolve_variant(section, "dapo")
    assert (grpo.adaptive_clip, grpo.epsilon_high, grpo.loss_type, grpo.max_steps) == (False, 0.2, "grpo", 3)
    assert (dapo.epsilon_high, dapo.loss_type, dapo.dynamic_sampling) == (0.28, "dapo", True)
    assert not reward_config({}, grpo).use_attention
    assert reward_config({}, resolve_variant(section, "released_weights")).weighting == "released"
    assert resolve_variant(section, "wo_stage1").initial_policy == "base"
    assert resolve_variant(section, "eag_rl").adaptive_clip


# ------------------------------------------------------------------------------------ a few steps
def test_a_few_steps_change_the_lora_weights(tokenizer, tmp_path):
    trainer = EAGRLTrainer(
        model=tiny_model(tokenizer), reward_funcs=[toy_reward],
        args=grpo_config(tmp_path, max_steps=2, num_iterations=2, beta=0.04),
        train_dataset=Dataset.from_list([{"prompt": f"patient {i} record:", "kind": "varying"} for i in range(4)]),
        processing_class=tokenizer, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        adaptive_clip=AdaptiveClip(0.2, 0.4, "group"))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach()) for n in before)
    logged = trainer.state.log_history
    assert any("eps_tau/mean" in row for row in logged)
    # the trainer logs wall-clock times (TRL's step_time, HF's train_runtime ...); the stage's curves leave them out
    from methods.eag_rl.rl import _write_curves
    assert timing_keys(logged)
    rows = [{k: v for k, v in row.items() if isinstance(v, (int, float))} for row in logged]
    _write_curves(tmp_path, rows)
    assert timing_keys(json.loads((tmp_path / "curves.json").read_text())) == []
    assert "reward" in (tmp_path / "curves.csv").read_text().splitlines()[0].split(",")
    # the random model writes no <Important Features>: every trajectory gets the conservative ε_min
    assert [r["epsilon_high"] for r in trainer.trajectory_records] == pytest.approx([0.2] * 4)


def lora_after_training(tokenizer, tmp_path, config) -> dict[str, torch.Tensor]:
    """LoRA weights after ``config.max_steps`` optimiser steps of a tiny policy trained with ``grpo_args(config)``."""
    from methods.eag_rl.rl import grpo_args

    args = grpo_args(config, str(tmp_path), "cpu", "float32")
    args.max_completion_length, args.disable_tqdm, args.report_to = 8, True, "none"
    trainer = EAGRLTrainer(
        model=tiny_model(tokenizer), reward_funcs=[toy_reward], args=args,
        train_dataset=Dataset.from_list([{"prompt": f"patient {i} record:", "kind": "varying"} for i in range(8)]),
        processing_class=tokenizer, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        adaptive_clip=AdaptiveClip(0.2, 0.4, "group") if config.adaptive_clip else None)
    trainer.train()
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_micro_batches_accumulate_to_the_whole_batch_step(tokenizer, tmp_path, loss_type):
    """Gradient accumulation over micro-batches takes the same optimiser step as the whole generation batch."""
    from methods.eag_rl.rl import RLConfig, micro_batches

    base = RLConfig(num_generations=2, prompts_per_generation=4, num_iterations=2, max_steps=2, beta=0.04,
                    learning_rate=1e-2, loss_type=loss_type, adaptive_clip=loss_type == "grpo", seed=0, progress=False)
    assert micro_batches(base) == (8, 1)
    split = RLConfig(**{**base.__dict__, "micro_batch_size": 2})
    assert micro_batches(split) == (2, 4)
    whole = lora_after_training(tokenizer, tmp_path / "whole", base)
    accumulated = lora_after_training(tokenizer, tmp_path / "split", split)
    initial = {n: p for n, p in lora_after_training(tokenizer, tmp_path / "none",
                                                    RLConfig(**{**base.__dict__, "max_steps": 0})).items()}
    assert any(not torch.equal(whole[n], initial[n]) for n in whole)  # the step moved the weights
    for name in whole:
        assert torch.allclose(whole[name], accumulated[name], atol=1e-6), name


def test_steps_per_generation_cuts_one_generated_batch_into_several_optimiser_steps(tokenizer, tmp_path):
    """steps_per_generation = 2, μ = 2: 8 completions are generated once and serve 4 optimiser steps of 4."""
    from methods.eag_rl.rl import grpo_args, micro_batches

    config = RLConfig(num_generations=2, prompts_per_generation=4, steps_per_generation=2, num_iterations=2,
                      max_steps=8, learning_rate=1e-2, adaptive_clip=True, seed=0, progress=False)
    assert micro_batches(config) == (4, 1)
    args = grpo_args(config, str(tmp_path), "cpu", "float32")
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.steps_per_generation,
            args.generation_batch_size) == (4, 1, 2, 8)
    args.max_completion_length, args.disable_tqdm = 8, True
    trainer = EAGRLTrainer(
        model=tiny_model(tokenizer), reward_funcs=[toy_reward], args=args,
        train_dataset=Dataset.from_list([{"prompt": f"patient {i} record:", "kind": "varying"} for i in range(16)]),
        processing_class=tokenizer, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        adaptive_clip=AdaptiveClip(0.2, 0.4, "group"))
    trainer.train()
    assert trainer.state.global_step == 8
    assert trainer._generation_round == 2  # 8 steps / (2 slices × μ = 2)
    assert len(trainer.trajectory_records) == 16  # two generation batches of 4 patients × 2 completions


def test_steps_per_generation_must_divide_the_generation_batch():
    from methods.eag_rl.rl import micro_batches

    with pytest.raises(ConfigError, match="steps_per_generation = 3 must divide"):
        micro_batches(RLConfig(num_generations=4, prompts_per_generation=2, steps_per_generation=3))
    with pytest.raises(ConfigError, match="micro_batch_size = 4 must divide the completions of one optimiser step"):
        micro_batches(RLConfig(num_generations=4, prompts_per_generation=3, steps_per_generation=2, micro_batch_size=4))


def test_a_micro_batch_must_divide_the_generation_batch():
    from benchmark.config import ConfigError
    from methods.eag_rl.rl import RLConfig, micro_batches

    with pytest.raises(ConfigError, match="micro_batch_size = 3 must divide"):
        micro_batches(RLConfig(num_generations=4, prompts_per_generation=2, micro_batch_size=3))


def test_curves_carry_batch_columns_over_the_steps_of_one_batch(tmp_path):
    from methods.eag_rl.rl import _write_curves

    rows = [{"step": 1, "loss": 0.5, "reward": -1.0, "eps_tau/mean": 0.3, "step_time": 1.5}, {"step": 2, "loss": 0.25},
            {"step": 2, "train_runtime": 9.0, "train_samples_per_second": 2.0, "train_steps_per_second": 0.2,
             "train_loss": 0.4}]
    _write_curves(tmp_path, rows)
    lines = (tmp_path / "curves.csv").read_text().splitlines()
    assert lines[0].split(",") == ["step", "loss", "reward", "eps_tau/mean", "train_loss"]  # no timing column
    assert lines[2].split(",") == ["2", "0.25", "-1.0", "0.3", "0.4"]  # reward repeated, loss not
    assert timing_keys(json.loads((tmp_path / "curves.json").read_text())) == []


# ------------------------------------------------------------------------------------------- seeds
def test_each_variant_trains_its_first_n_seeds():
    from methods.eag_rl.rl import variant_seeds

    section = load_rl_section({"eag_rl": {"rl": {"seeds": [5, 6, 7], "variants": {
        "eag_rl": {"family": "eag_rl"}, "dapo": {"n_seeds": 1}}}}})
    assert variant_seeds(section, resolve_variant(section, "eag_rl")) == [5, 6, 7]
    assert variant_seeds(section, resolve_variant(section, "dapo")) == [5]
    too_many = load_rl_section({"eag_rl": {"rl": {"seeds": [5], "variants": {"x": {"n_seeds": 2}}}}})
    with pytest.raises(ConfigError, match="n_seeds"):
        variant_seeds(too_many, resolve_variant(too_many, "x"))
    repeated = load_rl_section({"eag_rl": {"rl": {"seeds": [5, 5]}}})
    with pytest.raises(ConfigError, match="distinct"):
        variant_seeds(repeated, resolve_variant(repeated, "eag_rl"))


def test_seed_block_aggregates_and_points_at_every_seeds_predictions():
    from methods.eag_rl.rl import seed_block

    results = {seed: {"auroc": {"mean": a}, "auprc": {"mean": b}, "parse_failure_rate": f}
               for seed, a, b, f in [(42, 0.6, 0.3, 0.0), (43, 0.7, 0.4, 0.1), (44, 0.8, 0.2, 0.05)]}
    block = seed_block(results, [42, 43, 44])
    assert block["n_seeds"] == 3
    auroc, auprc = block["metrics"]["auroc"], block["metrics"]["auprc"]
    assert auroc["mean"] == pytest.approx(0.7) and auroc["std"] == pytest.approx(0.1)
    assert auprc["mean"] == pytest.approx(0.3) and auprc["std"] == pytest.approx(0.1)
    assert auroc["per_seed"] == {42: 0.6, 43: 0.7, 44: 0.8}
    assert block["predictions"] == {"42": "predictions.csv", "43": "seed43/predictions.csv",
                                    "44": "seed44/predictions.csv"}


def test_vllm_settings_pass_through_to_grpo_config(tmp_path):
    from methods.eag_rl.rl import grpo_args

    off = grpo_args(RLConfig(), str(tmp_path), "cpu", "float32")
    assert off.use_vllm is False and off.vllm_mode == GRPOConfig.vllm_mode  # TRL's defaults untouched
    config = RLConfig(use_vllm=True, vllm_mode="server", vllm_server_base_url="http://10.0.0.2:8000",
                      vllm_gpu_memory_utilization=0.5, vllm_tensor_parallel_size=2)
    on = grpo_args(config, str(tmp_path), "cpu", "float32")  # (a GPU run passes cuda + bfloat16)
    assert (on.use_vllm, on.vllm_mode, on.vllm_server_base_url, on.vllm_gpu_memory_utilization,
            on.vllm_tensor_parallel_size) == (True, "server", "http://10.0.0.2:8000", 0.5, 2)


def test_use_vllm_without_vllm_fails_at_trainer_construction(tokenizer, tmp_path):
    """On this CPU machine vLLM is not installed: TRL refuses the trainer (the GPU path is benchmarks/gpu_check.sh)."""
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="(?i)vllm"):
        EAGRLTrainer(model=tiny_model(tokenizer), reward_funcs=[toy_reward],
                     args=grpo_config(tmp_path, max_steps=1, use_vllm=True),
                     train_dataset=Dataset.from_list([{"prompt": "p", "kind": "varying"}] * 4),
                     processing_class=tokenizer)
