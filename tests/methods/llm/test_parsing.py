"""Answer parsing: every format, garbage, and edge cases."""

from __future__ import annotations

import pytest

from methods.llm.formats import QD_ANSWER_HINT, QD_FEATURES_HINT, answer_instructions
from methods.llm.parsing import is_placeholder, parse_answer, parse_number, split_features

VOCAB = ["Heart Rate", "Oxygen saturation", "D-D dimer", "(%)lymphocyte", "pH"]


@pytest.mark.parametrize("text, expected", [
    ("0.7", 0.7), (".7", 0.7), ("7e-1", 0.7), ("70%", 0.7), ("0", 0.0), ("1", 1.0), ("1.0", 1.0),
    (" 0.25 ", 0.25), ("'0.3'", 0.3),
    ("1.5", None), ("-0.1", None), ("150%", None), ("high", None), ("", None), ("0.3 or 0.6", None),
    ("0.3.4", None), ("nan", None), ("inf", None),
])
def test_parse_number(text, expected):
    assert parse_number(text) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("text, expected", [
    ('{"answer": 0.82}', 0.82),
    ('```json\n{"answer": 0.4}\n```', 0.4),
    ('Sure! {"answer": "0.35"} Hope this helps.', 0.35),
    ('{"Answer": 1}', 1.0),
    ('{"answer": 0.9999999999999999}', 0.9999999999999999),
    ("0.15", 0.15),                     # a bare number is a final answer
    ('{"answer": 0.6,', 0.6),           # truncated object, but the pair is complete
])
def test_vanilla_parses(text, expected):
    answer = parse_answer(text, "vanilla")
    assert answer.parsed and answer.probability == pytest.approx(expected) and answer.reason == ""


@pytest.mark.parametrize("text", [
    "", "   ", "I do not know", "The probability is high.", '{"answer": "high"}', '{"answer": 1.7}',
    '{"answer": -0.2}', '{"answer": true}', '{"answer": {"probability": 0.3}}', '{"prob": 0.3}',
    '{"answer": 0.99999', "The probability of dying is 0.3 and of surviving 0.7", "0.3 0.7",
    "\x00\x01garbage}}{{", '{"answer": null}',
])
def test_vanilla_garbage_is_unparsable(text):
    answer = parse_answer(text, "vanilla")
    assert not answer.parsed and answer.probability is None and answer.reason


def test_think_answer():
    text = '{"think": "SpO2 falls below 90 and HR rises.", "answer": 0.8}'
    assert parse_answer(text, "think_answer").probability == pytest.approx(0.8)
    # The answer may come after a think object that was closed early, or inside a fence with prose around it.
    assert parse_answer('{"think": "x"}\n{"answer": 0.2}', "think_answer").probability == pytest.approx(0.2)
    assert parse_answer('Here:\n```json\n{"think": "a, b", "answer": 0.55}\n```', "think_answer").probability == 0.55
    # Cut inside the reasoning: no answer.
    cut = parse_answer('{"think": "The patient is stable and the oxygen', "think_answer")
    assert not cut.parsed
    # A bare number is not a Think & Answer reply.
    assert not parse_answer("0.4", "think_answer").parsed


QD_REPLY = """<Subquestion>Is the oxygen saturation low?</Subquestion>
<Answer>Yes, it falls to 86 %.</Answer>
<Subquestion>Is the heart rate high?</Subquestion>
<Answer>Yes, above 120 bpm.</Answer>
<Final subquestion>What is the probability that the patient dies?</Final subquestion>
<Important Features>Oxygen saturation, heart rate; D-D Dimer, Temperature</Important Features>
<Final answer>0.75</Final answer>"""


def test_qd_full_reply():
    answer = parse_answer(QD_REPLY, "qd", VOCAB)
    assert answer.parsed and answer.probability == pytest.approx(0.75)
    # Canonical names, in order, unknown ones (Temperature is not in the vocabulary) dropped.
    assert answer.features == ["Oxygen saturation", "Heart Rate", "D-D dimer"]
    assert parse_answer(QD_REPLY, "qd").features == ["Oxygen saturation", "heart rate", "D-D Dimer", "Temperature"]


def test_qd_without_closing_tags_and_case():
    text = "<subquestion> low pH? <answer> yes <important features> pH <final answer> 40%"
    answer = parse_answer(text, "qd", VOCAB)
    assert answer.parsed and answer.probability == pytest.approx(0.4) and answer.features == ["pH"]


@pytest.mark.parametrize("text, reason", [
    ("<Subquestion>Is HR high?</Subquestion><Answer>Yes</Answer>", "no <Final answer>"),
    ("<Final answer>likely</Final answer>", "not a probability"),
    ("<Final answer>1.3</Final answer>", "not a probability"),
    ('{"answer": 0.3}', "no <Final answer>"),
    ("<Final answer></Final answer>", "not a probability"),
])
def test_qd_unparsable(text, reason):
    answer = parse_answer(text, "qd", VOCAB)
    assert not answer.parsed and answer.probability is None and reason in answer.reason


def test_qd_features_kept_when_answer_fails():
    answer = parse_answer("<Important Features>pH, Heart Rate</Important Features><Final answer>?</Final answer>",
                          "qd", VOCAB)
    assert not answer.parsed and answer.features == ["pH", "Heart Rate"]


def test_a_copy_of_the_qd_instructions_names_no_features_and_is_unparsable():
    """The instructions' tags hold '...': a completion that repeats them verbatim answers nothing."""
    instructions = answer_instructions("qd", "mortality")
    for vocabulary in (VOCAB, None):
        copy = parse_answer(instructions, "qd", vocabulary)
        assert copy.features == [] and not copy.parsed and copy.probability is None
    # The hints of the sentence (or of the earlier instructions) written into the tags are copies too.
    hinted = (f"<Important Features>{QD_FEATURES_HINT}</Important Features>"
              f"<Final answer>{QD_ANSWER_HINT}</Final answer>")
    old = ("<Important Features>the most important feature names, comma-separated</Important Features>"
           "<Final answer>the probability, a number between 0 and 1</Final answer>")
    for text in (hinted, old):
        for vocabulary in (VOCAB, None):
            answer = parse_answer(text, "qd", vocabulary)
            assert answer.features == [] and not answer.parsed
    # A list that mixes names with the ellipsis repeats the template: no features either.
    assert parse_answer("<Important Features>pH, ...</Important Features><Final answer>0.4</Final answer>",
                        "qd", VOCAB).features == []
    assert parse_answer("<Important Features>pH, Heart Rate.</Important Features><Final answer>0.4</Final answer>",
                        "qd", VOCAB).features == ["pH", "Heart Rate"]


@pytest.mark.parametrize("item, expected", [("...", True), (" … ", True), ('"..."', True),
                                            ("Comma-separated", True), ("pH", False), ("pH.", False),
                                            ("Heart Rate", False)])
def test_is_placeholder(item, expected):
    assert is_placeholder(item) is expected


def test_split_features_strips_bullets_numbers_and_units():
    text = "1. Heart Rate (Unit: bpm)\n- oxygen  saturation\n* (%)lymphocyte\n2) heart rate"
    assert split_features(text, VOCAB) == ["Heart Rate", "Oxygen saturation", "(%)lymphocyte"]
    assert split_features("", VOCAB) == []


def test_label_format_and_unknown_format():
    assert parse_answer('{"answer": 1}', "label").probability == 1.0
    assert parse_answer('{"answer": 0}', "label").probability == 0.0
    with pytest.raises(ValueError, match="unknown answer format"):
        parse_answer("0.3", "json")


@pytest.mark.parametrize("content, expected", [
    ("The probability that the patient dies before leaving the hospital is 0.14", 0.14),
    ("Death within 30 days: 0.2.", 0.2),
    ("about 14%", 0.14),
    ("0.3 or 0.6", None),
    ("very high", None),
    ("0.3.4", None),
])
def test_qd_final_answer_may_be_a_sentence_with_one_probability(content, expected):
    parsed = parse_answer(f"<Important Features>pH</Important Features><Final answer>{content}</Final answer>", "qd")
    assert parsed.probability == (pytest.approx(expected) if expected is not None else None)
    assert parsed.parsed == (expected is not None)


def test_oxford_comma_list():
    assert split_features("Oxygen saturation, pH, and Glascow coma scale total.") == [
        "Oxygen saturation", "pH", "Glascow coma scale total"]


@pytest.mark.parametrize("style", ["vanilla", "think_answer", "qd"])
@pytest.mark.parametrize("text", ["", "x" * 100_000, "<Important Features>" + "Heart Rate, " * 9_000,
                                  "<Final answer>" * 5_000])
def test_an_empty_or_100kb_completion_is_unparsable_not_an_error(text, style):
    """Issue 20's extra probes: an empty or runaway completion is an unparsable answer (counted, never dropped)."""
    answer = parse_answer(text, style, ["Heart Rate", "pH"])
    assert not answer.parsed and answer.probability is None
