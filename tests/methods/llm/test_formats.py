"""The answer formats: the instructions ask for them, and what every writer writes the readers read back."""

from __future__ import annotations

import re

import numpy as np
import pytest

from methods.eag_rl.mcts import Step
from methods.eag_rl.proposer import final_prefix, parse_final, render_trajectory
from methods.eag_rl.spans import important_features_span
from methods.llm.formats import (
    ANY_TAG_RE,
    COMPACT_QD_INSTRUCTIONS,
    FEATURES_TAG,
    FINAL_ANSWER_TAG,
    NO_ITEMS,
    QD_ANSWER_HINT,
    QD_FEATURES_HINT,
    QD_TAGS,
    STYLES,
    answer_instructions,
    close_tag,
    feature_items,
    final_question,
    json_answer,
    marked_feature,
    open_tag,
    qd_final_step,
    read_feature_items,
    tag,
    tag_pattern,
)
from methods.llm.parsing import parse_answer
from methods.llm.prompting import style_prompt
from methods.llm.sft import label_answer
from methods.llm.testbed import QD_TAGS as TAG_TOKENS
from methods.llm.testbed import sub_answer_items
from methods.llm.testbed_corpus import qd_answer, vanilla_answer


def test_every_style_closes_its_prompt_and_unknown_style_fails(small_ward):
    for style in STYLES:
        prompt = style_prompt(small_ward, 0, "mortality", style)
        assert prompt.text.endswith("Answer format:\n" + answer_instructions(style, "mortality"))
    compact = style_prompt(small_ward, 0, "mortality", "qd", layout="compact")
    assert compact.text.endswith("\n" + COMPACT_QD_INSTRUCTIONS)
    assert style_prompt(small_ward, 0, "mortality", "qd", instructions="X").text.endswith("\nX")
    with pytest.raises(ValueError, match="unknown prompting style"):
        answer_instructions("cot", "mortality")


def test_qd_instructions_show_every_tag_empty_and_say_what_they_hold():
    qd = answer_instructions("qd", "mortality")
    # Every answer tag is shown empty ('...'): a small model copies whatever a tag holds.
    shown = dict(re.findall(r"<([A-Za-z ]+)>(.*?)</\1>", qd))
    assert set(shown) == {"Subquestion", "Answer", "Final subquestion", "Important Features", "Final answer"}
    assert shown.pop("Final subquestion") == final_question("mortality")
    assert shown == dict.fromkeys(["Subquestion", "Answer", "Important Features", "Final answer"], "...")
    assert QD_FEATURES_HINT in qd and QD_ANSWER_HINT in qd
    assert all(name in COMPACT_QD_INSTRUCTIONS for name in QD_TAGS if name != "Final subquestion")
    assert '"think"' in answer_instructions("think_answer", "mortality")
    assert '{"answer": <probability>}' in answer_instructions("vanilla", "readmission")


def test_json_answers_read_back():
    for value in (0, 1, 0.37):
        assert json_answer(value) == f'{{"answer": {value}}}'
        assert parse_answer(json_answer(value), "vanilla").probability == value
    assert parse_answer(label_answer(1), "label").probability == 1.0
    assert parse_answer(label_answer(0), "label").parsed


def test_tags_and_patterns():
    assert tag(FEATURES_TAG, "pH") == "<Important Features>pH</Important Features>"
    assert (open_tag(FINAL_ANSWER_TAG), close_tag(FINAL_ANSWER_TAG)) == ("<Final answer>", "</Final answer>")
    assert re.fullmatch(tag_pattern(FEATURES_TAG), "< important features >", re.IGNORECASE)
    assert not re.fullmatch(tag_pattern(FEATURES_TAG), "</Important Features>")
    assert re.fullmatch(tag_pattern(FEATURES_TAG, "close"), "< / Important Features>")
    either = tag_pattern(FEATURES_TAG, "either")
    assert all(re.fullmatch(either, t) for t in ("<Important Features>", "</Important Features>"))
    assert [m.group() for m in ANY_TAG_RE.finditer("<Answer>x</answer><Final answer>")] == \
        ["<Answer>", "</answer>", "<Final answer>"]
    assert TAG_TOKENS == tuple(t for name in QD_TAGS for t in (open_tag(name), close_tag(name)))


def test_feature_lists_round_trip():
    items = ["Heart Rate ++", "pH -"]
    assert feature_items(items) == "Heart Rate ++, pH -" and read_feature_items(feature_items(items)) == items
    assert feature_items([]) == NO_ITEMS and read_feature_items(feature_items([])) == []
    assert [marked_feature("pH", level) for level in (0, 2, -1)] == ["pH", "pH ++", "pH -"]


def test_final_step_reads_back_through_parser_spans_and_proposer():
    text = qd_final_step(final_question("mortality"), ["Heart Rate", "pH"], "0.37")
    answer = parse_answer(text, "qd", ["Heart Rate", "pH", "Glucose"])
    assert answer.parsed and answer.probability == 0.37 and answer.features == ["Heart Rate", "pH"]
    start, end = important_features_span(text)
    assert text[start:end] == "Heart Rate, pH"
    question = final_question("mortality")
    assert text.startswith(final_prefix(question))  # what the proposer appends, the model continues
    step = parse_final(text[len(final_prefix(question)):], question)
    assert step.features == ("Heart Rate", "pH") and step.probability == 0.37


def test_proposer_trajectories_read_back():
    steps = [Step("Is the heart rate high?", "Yes"),
             Step(final_question("readmission"), final=True, features=("pH",), probability=0.2)]
    answer = parse_answer(render_trajectory(steps), "qd")
    assert answer.parsed and answer.probability == 0.2 and answer.features == ["pH"]


def test_testbed_corpus_answers_read_back(small_icu):
    names = small_icu.feature_names
    train = small_icu.subset("train")
    for index in range(5):
        text = qd_answer(train, index, "mortality", np.random.default_rng(index), top_k=3)
        answer = parse_answer(text, "qd", names)
        assert answer.parsed and 1 <= len(answer.features) <= 3
        assert text.endswith(tag(FINAL_ANSWER_TAG, str(answer.probability)))
        said = sub_answer_items(text)
        assert all(item.rsplit(" ", 1)[0] in names and set(item.rsplit(" ", 1)[1]) <= {"+", "-"} for item in said)
        assert parse_answer(vanilla_answer(train, index, np.random.default_rng(index)), "vanilla").parsed
