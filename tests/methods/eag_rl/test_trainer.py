"""EAGRLTrainer on a tiny random policy: the ε(τ) loss override, dynamic sampling, trajectory records, a few steps."""

from __future__ import annotations

import json
import math

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from trl import GRPOTrainer

from methods.eag_rl.config import RLConfig
from methods.eag_rl.reward_adapter import CompositeReward, reward_functions
from methods.eag_rl.rewards import RewardConfig
from methods.eag_rl.trainer import AdaptiveClip, DynamicSampling, EAGRLTrainer
from tests.methods.eag_rl.tiny_grpo import VOCAB, grpo_config, prompts_dataset, tiny_model, toy_reward
from tests.wallclock import timing_keys


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
    from methods.eag_rl.trainer import TRAJECTORY_COLUMNS

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
    from methods.eag_rl.curves import write_curves
    assert timing_keys(logged)
    rows = [{k: v for k, v in row.items() if isinstance(v, (int, float))} for row in logged]
    write_curves(tmp_path, rows)
    assert timing_keys(json.loads((tmp_path / "curves.json").read_text())) == []
    assert "reward" in (tmp_path / "curves.csv").read_text().splitlines()[0].split(",")
    # the random model writes no <Important Features>: every trajectory gets the conservative ε_min
    assert [r["epsilon_high"] for r in trainer.trajectory_records] == pytest.approx([0.2] * 4)


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
