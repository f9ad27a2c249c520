"""Stage 1 end to end on a tiny model: MCTS stage (canned proposer), SFT on the trajectories, evaluation."""

import json

import numpy as np
import pytest
import yaml

from benchmark.alignment import ALIGNMENT_FILE, read_alignment
from benchmark.paths import adapter_dir, llm_model_dir, search_dir
from methods.eag_rl import stage1
from methods.eag_rl.mcts import Step
from methods.experts.importance import importance_records, write_importance
from methods.llm.backbone import build_backbone, load_backbone
from methods.llm.config import load_llm_config
from tests.wallclock import timing_keys


class CannedProposer:
    """Well-formed steps: the first candidate names the patient's first expert feature and answers right."""

    def __init__(self, generator, final_question, *args):
        self.final_question = final_question
        self.rng = np.random.default_rng(0)

    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def propose(self, requests):
        out = []
        for request in requests:
            label_hint = 0.8 if "positive" in request.prompt else 0.2  # unused by the reward: only shape matters
            steps = []
            for k in range(request.n):
                if request.final_only or k == 1:
                    p = float(self.rng.choice([0.1, 0.9]))
                    steps.append(Step(self.final_question, final=True, features=("Heart Rate", "pH"), probability=p))
                else:
                    steps.append(Step("Is the heart rate high?", f"Heart Rate is {label_hint}."))
            out.append(steps)
        return out


@pytest.fixture
def stage1_workdir(workdir, tiny_model_dir, small_icu):
    params = {
        "metrics": {"bootstrap_resamples": 20},
        "llm": {"threads": 1,
                "backbone": {"source": str(tiny_model_dir), "dir": "models/backbone", "dtype": "float32", "device": "cpu"},
                "lora": {"r": 4, "alpha": 8, "top_layers": 0}, "generation": {"batch_size": 4},
                "methods": {"qd": {"max_new_tokens": 6}}, "evaluation": {"n_patients": 6, "seed": 1}},
        "eag_rl": {"search": {"expert": "concare", "n_patients": 6},
                   "mcts": {"iterations": 3, "branching": 2, "max_depth": 2, "chunk_size": 4},
                   "distill": {"min_confidence": 0.1, "min_alignment": 0.0, "target_positives": 3},
                   "sft": {"max_steps": 2, "batch_size": 2, "learning_rate": 0.01, "warmup_steps": 0, "max_length": 1024}},
    }
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    small_icu.save(workdir / "data" / "cohorts" / "small_icu")
    build_backbone(load_llm_config("params.yaml").backbone)
    for split in ("train", "test"):  # train: the search's guidance; test: the policy's test-time alignment
        part = small_icu.subset(split)
        for task in small_icu.tasks:
            importance = part.salient.astype(float) + 1e-3
            records = importance_records(part, task, np.full(len(part), 0.5),
                                         importance / importance.sum(1, keepdims=True), 3)
            write_importance(workdir / "models" / "experts" / "small_icu" / "concare" / task /
                             f"importance_{split}.jsonl", records)
    return workdir


def test_stage1_end_to_end(stage1_workdir, small_icu, monkeypatch):
    monkeypatch.setattr("methods.eag_rl.proposer.LLMProposer", CannedProposer)
    stage1.run_mcts("small_icu")
    for task in small_icu.tasks:
        folder = search_dir("small_icu", task)
        records = [json.loads(line) for line in (folder / "trajectories.jsonl").read_text().splitlines()]
        summary = json.loads((folder / "summary.json").read_text())
        sft_rows = [json.loads(line) for line in (folder / "sft.jsonl").read_text().splitlines()]
        assert len(records) == 6 and summary["patients_searched"] == 6 and timing_keys(summary) == []
        assert summary["mean_reward_best"] > summary["mean_reward_random"]
        assert sft_rows and all("<Final answer>" in row["completion"] for row in sft_rows)
        assert all((row["probability"] > 0.5) == bool(row["label"]) for row in sft_rows)  # quality filter
    # A second run with the same settings reuses the saved search chunks and gives the same trajectories.
    before = (search_dir("small_icu", "mortality") / "trajectories.jsonl").read_text()
    stage1.run_mcts("small_icu")
    assert (search_dir("small_icu", "mortality") / "trajectories.jsonl").read_text() == before

    stage1.run_sft("small_icu")
    config = load_llm_config("params.yaml")
    for task in small_icu.tasks:
        log = json.loads((llm_model_dir("small_icu", "wo_stage2", task) / "train_log.json").read_text())
        assert len(log["loss"]) == 2 and timing_keys(log) == []
        model, _ = load_backbone(config.backbone, adapter=adapter_dir("small_icu", "wo_stage2", task))
        assert any("lora_" in name for name, _ in model.named_parameters())

    out = stage1.run_eval("small_icu")
    metrics = json.loads((out / "mortality" / "metrics.json").read_text())
    assert metrics["descriptor"]["method"] == "wo_stage2" and metrics["descriptor"]["family"] == "ablation"
    assert metrics["n"] == 6 and timing_keys(metrics) == []
    assert 0.0 <= metrics["mechanism"]["alignment_expert"] <= 1.0 and metrics["mechanism"]["alignment_truth"] is not None
    per_patient = read_alignment(out / "mortality" / ALIGNMENT_FILE)  # the same numbers, one row per patient
    assert len(per_patient) == 6
    for key in ("alignment_expert", "alignment_truth"):
        assert per_patient[key].mean() == pytest.approx(metrics["mechanism"][key])


def test_weights_digest_changes_when_a_model_is_retrained_in_place(tiny_model_dir):
    """The search fingerprint must see new weights at the same path (a re-trained testbed LM)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = stage1.weights_digest(model)
    assert stage1.weights_digest(AutoModelForCausalLM.from_pretrained(tiny_model_dir)) == before
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # one optimiser step's worth of change
    assert stage1.weights_digest(model) != before


def test_code_digest_sees_a_change_of_the_answer_formats(tmp_path, monkeypatch):
    """The QD tags the proposer writes and the parser reads live in methods/llm/formats.py: changing them must
    invalidate a saved search."""
    import methods.llm.formats as formats

    before = stage1._code_digest()
    changed = tmp_path / "formats.py"
    changed.write_text(open(formats.__file__).read().replace('"Important Features"', '"Key Features"'))
    monkeypatch.setattr(formats, "__file__", str(changed))
    assert stage1._code_digest() != before


def test_a_retrained_model_discards_the_saved_search(stage1_workdir, small_icu, monkeypatch):
    """Saved search chunks are reused only for the same weights: a model re-trained at the same path searches anew."""
    monkeypatch.setattr("methods.eag_rl.proposer.LLMProposer", CannedProposer)
    stage1.run_mcts("small_icu", task="mortality")
    stamp = search_dir("small_icu", "mortality") / "search" / "fingerprint.txt"
    first = stamp.read_text()
    monkeypatch.setattr(stage1, "weights_digest", lambda model: "other weights")
    stage1.run_mcts("small_icu", task="mortality")
    assert stamp.read_text() != first


def test_one_task_at_a_time_leaves_the_other_tasks_alone(stage1_workdir, small_icu, monkeypatch):
    """The pipeline runs stage 1 per eag_rl.rl.pairs entry: one task's stages write only that task's folders."""
    from benchmark.config import ConfigError

    monkeypatch.setattr("methods.eag_rl.proposer.LLMProposer", CannedProposer)
    assert len(small_icu.tasks) > 1
    stage1.run_mcts("small_icu", task="mortality")
    stage1.run_sft("small_icu", task="mortality")
    out = stage1.run_eval("small_icu", task="mortality")
    assert (search_dir("small_icu", "mortality") / "sft.jsonl").exists()
    assert (adapter_dir("small_icu", "wo_stage2", "mortality") / "adapter_config.json").exists()
    assert sorted(p.name for p in out.iterdir()) == ["mortality"]
    other = small_icu.tasks[1]
    assert not search_dir("small_icu", other).exists() and not adapter_dir("small_icu", "wo_stage2", other).exists()
    with pytest.raises(ConfigError, match="no task 'nope'.*eag_rl.rl.pairs"):
        stage1.run_mcts("small_icu", task="nope")


def test_missing_expert_file_is_named(stage1_workdir):
    import shutil

    shutil.rmtree(stage1_workdir / "models" / "experts")
    with pytest.raises(FileNotFoundError, match="importance_train.jsonl: importance file not found"):
        stage1.run_mcts("small_icu")


def test_expert_hint_reaches_the_proposer_prompt_only(stage1_workdir, small_icu, tiny_model_dir):
    from methods.llm.backbone import load_tokenizer

    llm = load_llm_config("params.yaml")
    tokenizer = load_tokenizer(str(tiny_model_dir))
    subset = small_icu.subset("train").select(np.arange(2))
    top_k = {str(pid): ["Heart Rate", "pH", "Glucose"] for pid in subset.ids}
    hinted = stage1.proposer_prompts(tokenizer, subset, "mortality", top_k, llm, hint=True)
    plain = stage1.proposer_prompts(tokenizer, subset, "mortality", top_k, llm, hint=False)
    assert all("are Heart Rate, pH and Glucose." in text for text in hinted)
    assert not any("Hint from an expert" in text for text in plain)
    assert stage1.expert_hint_text([]) == "" and stage1.expert_hint_text(["pH"]).endswith("are pH.")
