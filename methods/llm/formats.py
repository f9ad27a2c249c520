"""The LLM answer formats, stated once: what the prompts ask for, the corpus and the SFT targets write, and the
parsers read.

Vanilla and Label SFT (``vanilla`` / ``label``) answer one JSON object; Think & Answer adds its reasoning::

    {"answer": 0.37}                        <- json_answer(0.37); Label SFT's target is json_answer(1)
    {"think": "<reasoning>", "answer": 0.37}

Question Decomposition (``qd``) answers in tags (:data:`QD_TAGS`), one ``<Subquestion>``/``<Answer>`` pair per
sub-question, then the final step::

    <Subquestion>Far from typical at the last visit?</Subquestion>
    <Answer>Heart Rate ++, pH -</Answer>                            <- feature_items: names with their marks
    <Final subquestion>What is the probability that the patient dies before leaving the hospital?</Final subquestion>
    <Important Features>Heart Rate, pH</Important Features>         <- feature_items: comma-separated names
    <Final answer>0.37</Final answer>

The marks (``++``, ``-``) are the compact record's deviation marks (:func:`benchmark.serialize.deviation_flag`):
a sub-answer names a feature as the record marks it. :func:`answer_instructions` is the closing text of a prompt
that asks for each format; readers find tags with :func:`tag_pattern` and :data:`ANY_TAG_RE` (spaces inside the
brackets, any case, closing tags optional; see :mod:`methods.llm.parsing`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from benchmark.serialize import deviation_flag, outcome_of

STYLES: tuple[str, ...] = ("vanilla", "think_answer", "qd")  # prompting styles: the instructions they end with
FORMATS: tuple[str, ...] = ("vanilla", "label", "think_answer", "qd")  # answer formats the parser reads

ANSWER_KEY = "answer"  # the JSON key of the probability (Vanilla, Label SFT, Think & Answer)
THINK_KEY = "think"  # the JSON key of Think & Answer's reasoning

SUBQUESTION_TAG = "Subquestion"
ANSWER_TAG = "Answer"
FINAL_SUBQUESTION_TAG = "Final subquestion"
FEATURES_TAG = "Important Features"
FINAL_ANSWER_TAG = "Final answer"
QD_TAGS: tuple[str, ...] = (SUBQUESTION_TAG, ANSWER_TAG, FINAL_SUBQUESTION_TAG, FEATURES_TAG, FINAL_ANSWER_TAG)

ITEM_SEPARATOR = ", "  # between the features of a list (sub-answer, Important Features)
NO_ITEMS = "None"  # a sub-answer that names no feature

# What the QD answer tags hold, said in a sentence outside them (see answer_instructions).
QD_FEATURES_HINT = "list 1-3 names of the clinical features above, comma-separated"
QD_ANSWER_HINT = "one number between 0 and 1"
# Text that the QD instructions show (or showed, before the hints moved out of the tags) where an answer
# belongs: an answer that repeats it is a copy of the instructions, not an answer (methods.llm.parsing).
QD_PLACEHOLDERS = ("...", QD_FEATURES_HINT, QD_ANSWER_HINT, "the most important feature names, comma-separated",
                   "the probability, a number between 0 and 1")
# The compact layout's QD instructions: the testbed LM learns the format from its corpus, so the prompt only
# names it. No tag holds prose that a model could copy as an answer.
COMPACT_QD_INSTRUCTIONS = (f"Reply in QD tags: {SUBQUESTION_TAG}, {ANSWER_TAG}, {FEATURES_TAG} (1-3 feature names), "
                           f"{FINAL_ANSWER_TAG} (a probability).")

# Any QD tag, opening or closing: where the content of a tag whose closing tag is missing ends.
ANY_TAG_RE = re.compile(r"</?\s*(?:" + "|".join(re.escape(t) for t in QD_TAGS) + r")\s*>", re.IGNORECASE)


def open_tag(name: str) -> str:
    """``<name>``."""
    return f"<{name}>"


def close_tag(name: str) -> str:
    """``</name>``."""
    return f"</{name}>"


def tag(name: str, content: str) -> str:
    """``<name>content</name>``."""
    return f"{open_tag(name)}{content}{close_tag(name)}"


def tag_pattern(name: str, kind: str = "open") -> str:
    """Regex source of tag ``name`` as readers accept it (spaces inside the brackets): ``kind`` 'open',
    'close' or 'either'."""
    slash = {"open": "", "close": r"/\s*", "either": r"/?\s*"}[kind]
    return rf"<\s*{slash}{re.escape(name)}\s*>"


def json_answer(value: float | int) -> str:
    """The Vanilla answer ``{"answer": value}`` (Label SFT's target with an int label)."""
    return json.dumps({ANSWER_KEY: value})


def final_question(task: str) -> str:
    """The final subquestion of a QD answer for ``task``."""
    return f"What is the probability that {outcome_of(task)}?"


def feature_items(items: Sequence[str]) -> str:
    """A list of features as an answer writes it: comma-separated, :data:`NO_ITEMS` when empty."""
    return ITEM_SEPARATOR.join(items) if items else NO_ITEMS


def read_feature_items(content: str) -> list[str]:
    """The features of a list that :func:`feature_items` wrote, stripped; [] for :data:`NO_ITEMS` or nothing."""
    items = [item.strip() for item in content.split(ITEM_SEPARATOR.strip())]
    return [item for item in items if item and item != NO_ITEMS]


def marked_feature(name: str, level: int) -> str:
    """A feature named with the record's deviation marks of ``level``: ``"Heart Rate ++"``."""
    return f"{name}{deviation_flag(level)}"


def qd_final_step(question: str, features: Sequence[str], probability: str) -> str:
    """The final QD step: final subquestion, important features and final answer, one tag per line."""
    return (f"{tag(FINAL_SUBQUESTION_TAG, question)}\n"
            f"{tag(FEATURES_TAG, ITEM_SEPARATOR.join(features))}\n"
            f"{tag(FINAL_ANSWER_TAG, probability)}")


def _qd_instructions(task: str) -> str:
    """The full layout's QD instructions: the tags shown holding ``...``, then what they hold, in a sentence."""
    return ("Break the question into a few short sub-questions, answer each one, then answer the final "
            "question. Use exactly these tags:\n"
            f"{tag(SUBQUESTION_TAG, '...')}\n"
            f"{tag(ANSWER_TAG, '...')}\n"
            "(one pair per sub-question)\n"
            f"{tag(FINAL_SUBQUESTION_TAG, final_question(task))}\n"
            f"{tag(FEATURES_TAG, '...')}\n"
            f"{tag(FINAL_ANSWER_TAG, '...')}\n"
            f"In {FEATURES_TAG}, {QD_FEATURES_HINT}; in {FINAL_ANSWER_TAG}, {QD_ANSWER_HINT}.")


def answer_instructions(style: str, task: str, layout: str = "full") -> str:
    """The closing instructions of prompting ``style`` for ``task`` (the prompt's text after ``Answer format:``).

    * ``vanilla`` — the final answer only, as ``{"answer": p}``.
    * ``think_answer`` — Think & Answer: ``{"think": "...", "answer": p}``.
    * ``qd`` — Question Decomposition: ``<Subquestion>``/``<Answer>`` pairs, then ``<Final subquestion>``,
      ``<Important Features>`` (comma-separated feature names) and ``<Final answer>``. The tags are shown
      holding ``...`` and what they hold is said in a sentence after them (no tag holds copyable prose:
      the 135M default copied the earlier in-tag descriptions verbatim into 38-39 of 40 answers). In the
      'compact' layout, one line that names the tags (:data:`COMPACT_QD_INSTRUCTIONS`).
    """
    outcome = outcome_of(task)
    if style == "vanilla":
        return (f"Reply with the final answer only, without explanation: a JSON object with one key, \"{ANSWER_KEY}\", "
                f"whose value is a number between 0 and 1, the probability that {outcome}.\n"
                f"Format: {{\"{ANSWER_KEY}\": <probability>}}")
    if style == "think_answer":
        return (f"Reply with a JSON object with two keys: \"{THINK_KEY}\", your short step-by-step reasoning about the "
                f"trends and the values outside their reference ranges, and \"{ANSWER_KEY}\", a number between 0 "
                f"and 1, "
                f"the probability that {outcome}.\n"
                f"Format: {{\"{THINK_KEY}\": \"<reasoning>\", \"{ANSWER_KEY}\": <probability>}}")
    if style == "qd":
        return COMPACT_QD_INSTRUCTIONS if layout == "compact" else _qd_instructions(task)
    raise ValueError(f"unknown prompting style '{style}'; expected one of {STYLES}")
