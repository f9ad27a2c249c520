"""The testbed LM: its label-free corpus, its tokenizer and model, save/load through the backbone path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmark.config import ConfigError
from methods.eag_rl.rewards import attention_alignment
from methods.llm.parsing import parse_answer
from methods.llm.prompting import style_prompt
from methods.llm.testbed import (
    QD_TAGS,
    ArchitectureConfig,
    PretrainingConfig,
    build_model,
    chat_text,
    pretrain,
    prompt_text,
    train_tokenizer,
)
from methods.llm.testbed_corpus import build_corpus

TINY = ArchitectureConfig(vocab_size=400, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, intermediate_size=64, max_position_embeddings=512)


def _texts(documents):
    return [f"{d.system}\n{d.user}\n{d.answer}" for d in documents]


def test_corpus_answers_parse_and_name_cohort_features(small_icu):
    documents = build_corpus([small_icu], answers_per_record=2, seed=1)
    n_train = int((small_icu.split == "train").sum())
    assert len(documents) == n_train * len(small_icu.tasks) * 2
    for document in documents[:40]:
        parsed = parse_answer(document.answer, "qd", small_icu.feature_names)
        assert parsed.parsed and 0.05 <= parsed.probability <= 0.95
        assert 1 <= len(parsed.features) <= 3
        assert set(parsed.features) <= set(small_icu.feature_names)


def test_corpus_vanilla_documents_parse_as_the_label_sft_format(small_icu):
    """Vanilla documents carry {"answer": p}: the format (and the tokens) Label SFT's target is written in."""
    documents = build_corpus([small_icu], answers_per_record=1, seed=1, vanilla_answers_per_record=1)
    n_train = int((small_icu.split == "train").sum())
    assert len(documents) == n_train * len(small_icu.tasks) * 2
    vanilla = documents[1::2]
    assert all(d.answer.startswith('{"answer": 0.') for d in vanilla)
    for document in vanilla[:40]:
        parsed = parse_answer(document.answer, "vanilla")
        assert parsed.parsed and 0.05 <= parsed.probability <= 0.95
    assert all(parse_answer(d.answer, "qd", small_icu.feature_names).parsed for d in documents[0::2][:40])
    assert build_corpus([small_icu], 1, seed=1) == documents[0::2]


def test_corpus_carries_no_label(small_icu):
    """Flipping every label (and dropping the ground truth) leaves every document unchanged."""
    flipped = dataclasses.replace(small_icu, labels=(1 - small_icu.labels).astype(small_icu.labels.dtype),
                                  salient=None, true_risk=None)
    assert build_corpus([small_icu], 2, seed=3) == build_corpus([flipped], 2, seed=3)
    assert (build_corpus([small_icu], 1, seed=3, vanilla_answers_per_record=1)
            == build_corpus([flipped], 1, seed=3, vanilla_answers_per_record=1))


def test_attention_reward_varies_within_a_patients_answers(small_icu):
    """Answers drawn for one patient name different features, so R_att separates them (what GRPO needs)."""
    documents = build_corpus([small_icu], answers_per_record=4, seed=0)
    expert = small_icu.feature_names[:3]
    varying = 0
    groups = [documents[i:i + 4] for i in range(0, 80, 4)]
    for group in groups:
        scores = {attention_alignment(parse_answer(d.answer, "qd").features, expert, small_icu.feature_names)
                  for d in group}
        varying += len(scores) > 1
    assert varying / len(groups) >= 0.5


def test_deviating_features_are_read_from_the_last_observed_value(small_icu):
    from methods.llm.testbed_corpus import deviating_at_last_visit, last_visit_levels

    stats = small_icu.normalisation
    for index in range(10):
        levels = last_visit_levels(small_icu, index)
        for j, level in enumerate(levels):
            values = small_icu.raw[index, :int(small_icu.n_visits[index]), j]
            values = values[np.isfinite(values)]
            z = (values[-1] - stats.mean[j]) / stats.std[j] if values.size else 0.0
            assert level == np.sign(z) * min(int(abs(z)), 3)
        expected = [f"{name} {('+' if level > 0 else '-') * abs(level)}"
                    for name, level in zip(small_icu.feature_names, levels, strict=True) if level]
        assert deviating_at_last_visit(small_icu, index, limit=len(levels)) == expected


def test_compact_layout_is_shorter_and_keeps_feature_spans(small_icu):
    full = style_prompt(small_icu, 0, "mortality", "qd")
    compact = style_prompt(small_icu, 0, "mortality", "qd", layout="compact")
    assert len(compact.text) < 0.6 * len(full.text)
    for name, [(start, end)] in compact.spans.items():
        assert compact.text[start:end].startswith(f"- {name}: ")
    with pytest.raises(ValueError, match="layout"):
        style_prompt(small_icu, 0, "mortality", "qd", layout="tiny")


def test_compact_layout_marks_each_value_by_its_distance_from_the_train_mean(small_icu):
    """One to three marks per whole train standard deviation (+ above, - below); the marks of the last values
    are the corpus' sub-answer, so the testbed LM can read it off the record."""
    from benchmark.serialize import deviation_flag, deviation_level
    from methods.llm.testbed_corpus import deviating_at_last_visit

    assert [deviation_level(v, 10.0, 2.0) for v in (10.0, 11.9, 12.0, 5.9, 3.0, 40.0, np.nan)] == [0, 0, 1, -2, -3, 3, 0]
    assert [deviation_flag(level) for level in (0, 2, -1)] == ["", " ++", " -"]
    for index in range(10):
        text = style_prompt(small_icu, index, "mortality", "qd", layout="compact").user
        marked = []
        for line in text.splitlines():
            if line.startswith("- ") and ": " in line:
                name, values = line[2:].split(": ", 1)
                last = [v for v in values.split(", ") if v != "NaN"][-1].split(" ")
                if len(last) == 2:
                    marked.append(f"{name} {last[1]}")
        assert marked == deviating_at_last_visit(small_icu, index, limit=len(small_icu.features))


def test_tokenizer_keeps_tags_whole_and_digits_apart(small_icu):
    documents = build_corpus([small_icu.select(np.arange(20))], 1, seed=0)
    tokenizer = train_tokenizer(_texts(documents), 400)
    for tag in QD_TAGS:
        assert len(tokenizer(tag, add_special_tokens=False).input_ids) == 1
    assert len(tokenizer("137", add_special_tokens=False).input_ids) == 3
    text = chat_text(documents[0], tokenizer)
    assert text.startswith("<|im_start|>system\n") and text.rstrip().endswith("<|im_end|>")
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False).input_ids) == text
    with pytest.raises(ConfigError, match="vocab_size"):
        train_tokenizer(_texts(documents), 100)


@pytest.mark.slow
def test_pretrained_testbed_round_trips_through_the_backbone_loader(small_icu, tmp_path):
    """Two Trainer steps lower the loss' start; save_pretrained → load_backbone gives the same logits."""
    import torch

    from methods.llm.backbone import build_backbone, load_backbone
    from methods.llm.config import BackboneConfig

    documents = build_corpus([small_icu.select(np.arange(30))], 1, seed=0)
    tokenizer = train_tokenizer(_texts(documents), 400)
    model = build_model(tokenizer, TINY, seed=0)
    texts = [chat_text(d, tokenizer) for d in documents]
    prompts = [prompt_text(d, tokenizer) for d in documents]
    losses = pretrain(model, tokenizer, texts, PretrainingConfig(max_steps=3, batch_size=4, warmup_steps=0,
                                                                  progress=False), tmp_path / "trainer", prompts)
    assert len(losses) == 3 and all(np.isfinite(losses))
    model.save_pretrained(tmp_path / "testbed")
    tokenizer.save_pretrained(tmp_path / "testbed")
    config = BackboneConfig(source=str(tmp_path / "testbed"), dir=str(tmp_path / "built"), dtype="float32",
                            device="cpu")
    build_backbone(config)
    loaded, loaded_tokenizer = load_backbone(config)
    ids = tokenizer(texts[0], return_tensors="pt", add_special_tokens=False).input_ids
    assert loaded_tokenizer(texts[0], add_special_tokens=False).input_ids == ids[0].tolist()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded(ids).logits)


def test_too_long_documents_are_a_config_error(small_icu, tmp_path):
    documents = build_corpus([small_icu.select(np.arange(10))], 1, seed=0)
    tokenizer = train_tokenizer(_texts(documents), 400)
    model = build_model(tokenizer, TINY, seed=0)
    with pytest.raises(ConfigError, match="max_length"):
        pretrain(model, tokenizer, [chat_text(d, tokenizer) for d in documents],
                 PretrainingConfig(max_length=20), tmp_path)


def test_probability_rises_with_how_deranged_the_named_features_are(small_icu):
    """The corpus' one prior: p = 0.1 + 0.8 x min(1, mean |level| of the named features / 2) + U(-0.05, 0.05)."""
    from methods.llm.testbed_corpus import last_visit_levels, qd_answer

    rng = np.random.default_rng(0)
    names = small_icu.feature_names
    orders = set()
    for index in range(30):
        parsed = parse_answer(qd_answer(small_icu, index, "mortality", rng), "qd", names)
        levels = last_visit_levels(small_icu, index)
        mean_level = np.mean([abs(levels[names.index(name)]) for name in parsed.features])
        assert abs(parsed.probability - (0.1 + 0.8 * min(1.0, mean_level / 2))) <= 0.05 + 0.005
        orders.add(tuple(parsed.features) == tuple(sorted(parsed.features, key=names.index)))
    assert orders == {True, False}  # named in random order, not the record's


def test_min_features_sets_how_many_features_an_answer_names(small_icu):
    """min_k = 1: 1..top_k names, every count drawn; min_k = top_k: always top_k distinct names."""
    from methods.llm.testbed_corpus import qd_answer

    def counts(min_k):
        rng = np.random.default_rng(0)
        return {len(set(parse_answer(qd_answer(small_icu, index, "mortality", rng, min_k=min_k), "qd",
                                     small_icu.feature_names).features)) for index in range(40)}

    assert counts(1) == {1, 2, 3}
    assert counts(3) == {3}


def test_a_share_of_answers_names_the_deviating_features(small_icu):
    """deviating_share: that share of answers names the sub-answer's deviating features (record order, at most
    top_k); the rest draw their features at random."""
    from methods.llm.testbed import sub_answer_items
    from methods.llm.testbed_corpus import qd_answer

    def copies(share):
        rng, same, total = np.random.default_rng(0), 0, 0
        for index in range(len(small_icu)):
            answer = qd_answer(small_icu, index, "mortality", rng, deviating_share=share)
            deviating = [item.rsplit(" ", 1)[0] for item in sub_answer_items(answer)]
            if deviating:
                total += 1
                same += parse_answer(answer, "qd", small_icu.feature_names).features == deviating
        return same / total

    assert copies(1.0) == 1.0
    assert 0.4 < copies(0.5) < 0.65
    assert copies(0.0) < 0.15


def test_answer_only_labels_mask_the_prompt(small_icu):
    from methods.llm.testbed import answer_only_labels

    documents = build_corpus([small_icu.select(np.arange(5))], 1, seed=0)
    tokenizer = train_tokenizer(_texts(documents), 400)
    full = [tokenizer(chat_text(d, tokenizer), add_special_tokens=False).input_ids for d in documents]
    prompts = [tokenizer(prompt_text(d, tokenizer), add_special_tokens=False).input_ids for d in documents]
    for ids, prompt, labels in zip(full, prompts, answer_only_labels(full, prompts), strict=True):
        assert len(labels) == len(ids) and labels[:len(prompt)] == [-100] * len(prompt)
        answer = tokenizer.decode(labels[len(prompt):])
        assert answer.startswith("<Subquestion>") and "<Final answer>" in answer
    with pytest.raises(ValueError, match="prefix"):
        answer_only_labels([full[0]], [prompts[1]])


def test_sub_answer_items_read_the_first_answer():
    from methods.llm.testbed import sub_answer_items

    text = ("<Subquestion>Far from typical at the last visit?</Subquestion>\n<Answer>Heart Rate ++, pH -</Answer>\n"
            "<Important Features>pH</Important Features>\n<Answer>Glucose +</Answer>")
    assert sub_answer_items(text) == ["Heart Rate ++", "pH -"]
    assert sub_answer_items("<Answer>None</Answer>") == [] and sub_answer_items("no tags") == []


@pytest.mark.slow
def test_probe_measures_whether_the_lm_reads_the_record(small_icu):
    """An untrained LM cannot read: its sub-answers score no better than the best constant answer."""
    from methods.llm.testbed import ProbeConfig, probe

    documents = build_corpus([small_icu.select(np.arange(20))], 1, seed=0)
    tokenizer = train_tokenizer(_texts(documents), 400)
    model = build_model(tokenizer, TINY, seed=0)
    rows = probe(model, tokenizer, [small_icu], ProbeConfig(n_patients=6, samples=2, max_new_tokens=8), 2)
    assert {row["task"] for row in rows} == set(small_icu.tasks)
    for row in rows:
        assert row["subanswer_jaccard"] <= row["subanswer_constant"] <= 1.0
        assert 0 < row["distinct_subanswers"] <= 1.0
        assert row["probability_auroc"] is None or 0.0 <= row["probability_auroc"] <= 1.0
