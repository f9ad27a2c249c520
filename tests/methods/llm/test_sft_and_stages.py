"""LoRA SFT through TRL on CPU, the Label SFT stage, the llm-eval stage and the LLM report, on a tiny model."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.config import ConfigError, from_mapping
from benchmark.evaluate import read_predictions
from methods.llm.backbone import build_backbone, load_backbone
from methods.llm.config import LLMConfig, LoRASettings, PromptConfig
from methods.llm.prompting import METHODS, Method, build_prompts, evaluation_subset, stratified_indices
from methods.llm.sft import TrainSettings, label_answer, label_scores, sft_records, train_lora_sft
from tests.wallclock import timing_keys


def tiny_config(model_dir, root) -> LLMConfig:
    """An ``llm`` section for the tiny model, sized for seconds."""
    return from_mapping(LLMConfig, {
        "threads": 1,
        "backbone": {"source": str(model_dir), "dir": str(root / "backbone"), "dtype": "float32", "device": "cpu"},
        "lora": {"r": 4, "alpha": 8, "top_layers": 0},
        "generation": {"batch_size": 4},
        "methods": {"vanilla": {"max_new_tokens": 4}, "think_answer": {"max_new_tokens": 4},
                    "qd": {"max_new_tokens": 4}, "label_sft": {"max_new_tokens": 4}},
        "evaluation": {"n_patients": 6, "seed": 1},
        "label_sft": {"n_train": 8, "max_steps": 2, "batch_size": 2, "learning_rate": 0.01, "warmup_steps": 0,
                      "max_length": 1024},
    }, "test")


def test_lora_sft_changes_adapters_only(tmp_path, tiny_model_dir, small_icu):
    from transformers import AutoModelForCausalLM

    from methods.llm.backbone import load_tokenizer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = load_tokenizer(str(tiny_model_dir))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    prompts = build_prompts(small_icu.select(np.arange(4)), "mortality", "vanilla", PromptConfig())
    records = sft_records(tokenizer, prompts, [label_answer(y) for y in (0, 1, 1, 0)])
    assert records[0]["prompt"][0]["role"] == "system" and records[0]["completion"][0]["content"] == '{"answer": 0}'
    log = train_lora_sft(model, tokenizer, records, TrainSettings(max_steps=3, batch_size=2, learning_rate=0.01,
                                                                  warmup_steps=0, max_length=1024),
                         LoRASettings(r=4, alpha=8, top_layers=0), tmp_path / "adapter", progress=False)
    assert len(log["loss"]) == 3 and all(np.isfinite(log["loss"])) and timing_keys(log) == []  # time: the log
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # PEFT starts B at zero: training moved it
    unchanged = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                 for k, v in model.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(unchanged[k], v) for k, v in base.items() if k in unchanged)
    assert (tmp_path / "adapter" / "adapter_config.json").exists()


def test_sequences_longer_than_max_length_are_refused(tmp_path, tiny_model_dir, small_icu):
    """Truncation would cut the answer off the end of a record: the run stops and names the setting to raise."""
    from transformers import AutoModelForCausalLM

    from methods.llm.backbone import load_tokenizer
    from methods.llm.sft import record_lengths

    tokenizer = load_tokenizer(str(tiny_model_dir))
    prompts = build_prompts(small_icu.select(np.arange(3)), "mortality", "vanilla", PromptConfig())
    for use_template in (True, False):
        records = sft_records(tokenizer, prompts, [label_answer(y) for y in (0, 1, 0)], use_template=use_template)
        lengths = record_lengths(tokenizer, records)
        assert all(n > 20 for n in lengths)
        with pytest.raises(ConfigError, match=rf"llm.label_sft.max_length = 20: 3 of 3 .*longest {max(lengths)} tokens"):
            train_lora_sft(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer, records,
                           TrainSettings(max_steps=1, batch_size=2, max_length=20),
                           LoRASettings(r=4, alpha=8, top_layers=0), tmp_path / "adapter", progress=False,
                           length_key="llm.label_sft.max_length")
    assert not (tmp_path / "adapter").exists()


def test_plain_records_without_chat_template(tiny_model_dir, small_icu):
    from methods.llm.backbone import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    prompts = build_prompts(small_icu.select(np.arange(2)), "mortality", "vanilla", PromptConfig())
    records = sft_records(tokenizer, prompts, ["a", "b"], use_template=False)
    assert records[1] == {"prompt": prompts[1].text + "\n\n", "completion": "b"}
    with pytest.raises(ValueError):
        sft_records(tokenizer, prompts, ["a"])


class WritingLM(torch.nn.Module):
    """A scripted causal LM with the Hugging Face forward signature: after ``prompt`` it writes ``answers[prompt]``.

    At a context that is a prompt followed by the start of its answer, the answer's next token gets logit
    ``margin`` and every other token 0; elsewhere the distribution is uniform. Only the last position's
    logits are computed (``logits_to_keep=1``, as the readouts ask).
    """

    def __init__(self, tokenizer, answers: dict[str, str], margin: float = 4.0):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # a parameter, so the readout finds the device
        self.vocabulary, self.margin = len(tokenizer), margin
        self.paths = [tokenizer(p + a, add_special_tokens=False).input_ids for p, a in answers.items()]

    def forward(self, input_ids, attention_mask, logits_to_keep=0, **_):
        assert logits_to_keep == 1
        logits = torch.zeros(len(input_ids), 1, self.vocabulary)
        for row, (ids, mask) in enumerate(zip(input_ids.tolist(), attention_mask.tolist(), strict=True)):
            context = [token for token, keep in zip(ids, mask, strict=True) if keep]
            for path in self.paths:
                if len(path) > len(context) and path[:len(context)] == context:
                    logits[row, 0, path[len(context)]] = self.margin
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def rendered_patients(tiny_model_dir, small_icu):
    """Six rendered Vanilla prompts (3 positives, 3 negatives) and their labels, with the tiny tokenizer."""
    from methods.llm.backbone import load_tokenizer
    from methods.llm.chat import render

    tokenizer = load_tokenizer(str(tiny_model_dir))
    labels = small_icu.label("mortality")
    chosen = np.concatenate([np.flatnonzero(labels == 1)[:3], np.flatnonzero(labels == 0)[:3]])
    prompts = [render(tokenizer, p).text
               for p in build_prompts(small_icu.select(chosen), "mortality", "vanilla", PromptConfig())]
    return tokenizer, prompts, labels[chosen]


def test_expected_digits_ranks_a_model_that_writes_decimals(rendered_patients):
    """A model writing 0.8... for positives and 0.1... for negatives: the decimals carry the answer."""
    from benchmark.metrics import auroc

    tokenizer, prompts, labels = rendered_patients
    model = WritingLM(tokenizer, {p: json.dumps({"answer": 0.83 if y else 0.12}) for p, y in zip(prompts, labels, strict=True)})
    scores = label_scores(model, tokenizer, prompts, "expected_digits", batch_size=4, progress=False)
    assert np.all((scores > 0) & (scores < 1)) and auroc(labels, scores) == 1.0
    weights = np.exp([model.margin if d == 8 else 0.0 for d in range(10)])  # by hand, for a positive patient
    assert scores[0] == pytest.approx(float(weights @ np.arange(10) / 10 / weights.sum()))
    # Such a model writes "0" first for every patient: the label token cannot tell them apart.
    flat = label_scores(model, tokenizer, prompts, "first_token", progress=False)
    assert np.allclose(flat, flat[0]) and flat[0] < 0.5


def test_first_token_ranks_a_model_that_writes_the_label(rendered_patients):
    """A model that writes {"answer": 1} / {"answer": 0} by label (what Label SFT teaches)."""
    from benchmark.metrics import auroc

    tokenizer, prompts, labels = rendered_patients
    model = WritingLM(tokenizer, {p: label_answer(y) for p, y in zip(prompts, labels, strict=True)}, margin=2.0)
    scores = label_scores(model, tokenizer, prompts, "first_token", progress=False)
    assert np.all((scores > 0) & (scores < 1)) and auroc(labels, scores) == 1.0
    assert scores[labels == 1] == pytest.approx(1 / (1 + np.exp(-2.0)))
    with pytest.raises(ValueError, match="no model readout"):
        label_scores(model, tokenizer, prompts, "parsed")


def test_stratified_indices():
    labels = np.array([1] * 10 + [0] * 40)
    idx = stratified_indices(labels, 10, seed=0)
    assert len(idx) == 10 and labels[idx].sum() == 2 and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, stratified_indices(labels, 10, seed=0))
    assert not np.array_equal(idx, stratified_indices(labels, 10, seed=1))
    assert labels[stratified_indices(labels, 10, seed=0, balance=True)].sum() == 5
    assert labels[stratified_indices(labels, 4, seed=0)].sum() == 1  # at least one of each class
    assert len(stratified_indices(labels, 0, seed=0)) == 50


def test_label_sft_and_llm_eval_stages_end_to_end(workdir, tiny_model_dir, small_icu):
    from methods.llm.evaluation import evaluate_task, report, run_method
    from methods.llm.generation import generator_for
    from methods.llm.sft import train_label_sft

    config = tiny_config(tiny_model_dir, workdir)
    build_backbone(config.backbone)
    small_icu.save(workdir / "cohorts" / "small_icu")

    adapters = train_label_sft("small_icu", cohort_root=workdir / "cohorts", out_root=workdir / "label_sft",
                               config=config)
    for task in small_icu.tasks:
        log = json.loads((adapters / task / "train_log.json").read_text())
        assert log["patients"] == 8 and log["positives"] == 4 and len(log["loss"]) == 2
        assert timing_keys(log) == []
        saved = json.loads((adapters / task / "adapter" / "adapter_config.json").read_text())
        assert saved["target_modules"] == sorted(saved["target_modules"])  # not PEFT's set order (PYTHONHASHSEED)
        model, _ = load_backbone(config.backbone, adapter=adapters / task / "adapter")
        assert any("lora_" in n for n, _ in model.named_parameters())

    for method in ("vanilla", "qd", "label_sft"):
        out = run_method("small_icu", method, cohort_root=workdir / "cohorts", out_root=workdir / "outputs",
                         adapter_root=workdir / "label_sft", config=config)
        for task in small_icu.tasks:
            frame = read_predictions(out / task / "predictions.csv")
            expected = evaluation_subset(small_icu, task, config.evaluation)
            assert list(frame["id"]) == list(expected.ids) and list(frame["label"]) == list(expected.label(task))
            assert "completion" in frame and frame.loc[~frame["parsed"], "probability"].isna().all()
            metrics = json.loads((out / task / "metrics.json").read_text())
            assert metrics["n"] == 6 and metrics["parse_failures"] == int((~frame["parsed"]).sum())
            assert {"auroc", "auprc"} <= set(metrics["worst_case"])  # the 0.5 rule's lower bound, always on record
            assert metrics["descriptor"] == {"dataset": "small_icu", "task": task, "method": method,
                                             "family": METHODS[method].family, "backbone": str(tiny_model_dir),
                                             "condition": "standard", "train_dataset": None}
            assert metrics["run"]["new_tokens"] > 0 and timing_keys(metrics) == []
    # A method defined outside the layer (e.g. an EAG-RL policy) passes its own Method.
    custom = Method("custom_policy", "Custom policy", "qd", "qd", family="ablation", trained=True)
    metrics = evaluate_task(small_icu, "mortality", custom, config, generator_for(config, None),
                            workdir / "outputs" / "small_icu" / "custom_policy" / "mortality", condition="shuffle:0.5",
                            shuffle_fraction=0.5, seed=3)
    assert metrics["descriptor"]["method"] == "custom_policy" and metrics["descriptor"]["family"] == "ablation"
    assert metrics["descriptor"]["condition"] == "shuffle:0.5" and metrics["run"]["max_new_tokens"] == 4
    with pytest.raises(ConfigError, match="pass a methods.llm.prompting.Method"):
        evaluate_task(small_icu, "mortality", "no_such_method", config, None, workdir / "x")

    paths = report(workdir / "outputs", workdir / "results" / "llm")
    table = pd.read_csv(paths[1])
    assert len(table) == 3 * len(small_icu.tasks) + 1
    assert set(table["method"]) == {"Vanilla", "Question Decomposition", "Label SFT", "Custom policy"}
    assert table["auroc_worst_case"].str.contains("±").all()
    assert timing_keys(json.loads(paths[2].read_text())) == []


def test_llm_eval_writes_the_same_bytes_twice(workdir, tiny_model_dir, small_icu):
    """No wall-clock time in predictions.csv / metrics.json: a re-run leaves every DVC hash as it was."""
    from methods.llm.evaluation import run_method

    config = tiny_config(tiny_model_dir, workdir)
    build_backbone(config.backbone)
    small_icu.save(workdir / "cohorts" / "small_icu")
    runs = [run_method("small_icu", "vanilla", cohort_root=workdir / "cohorts", out_root=workdir / name, config=config)
            for name in ("first", "second")]
    files = [{p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} for run in runs]
    assert {p.name for p in files[0]} == {"predictions.csv", "metrics.json", "alignment.csv"} and files[0].keys() == files[1].keys()
    assert [p for p in files[0] if files[0][p] != files[1][p]] == []


def test_adapter_config_module_lists_are_sorted(tmp_path):
    """PEFT saves target_modules in set order, which PYTHONHASHSEED changes: the file is rewritten sorted, so the
    same settings give the same bytes (and DVC hash)."""
    from methods.llm.sft import sort_module_lists

    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"target_modules": ["v_proj", "q_proj", "k_proj"], "r": 4, "modules_to_save": None}))
    sort_module_lists(path)
    once = path.read_text()
    assert json.loads(once) == {"target_modules": ["k_proj", "q_proj", "v_proj"], "r": 4, "modules_to_save": None}
    path.write_text(json.dumps({"r": 4, "modules_to_save": None, "target_modules": ["q_proj", "k_proj", "v_proj"]}))
    sort_module_lists(path)
    assert path.read_text() == once
