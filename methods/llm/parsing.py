"""Reading answers: a probability in [0, 1] and, where given, the important features, from each format.

Formats (:mod:`methods.llm.formats` states them and the instructions that ask for them):

* ``vanilla`` / ``label`` — ``{"answer": p}``; a reply that is nothing but a number is accepted too.
* ``think_answer`` — ``{"think": "...", "answer": p}`` (``think`` may be missing or cut).
* ``qd`` — ``<Final answer> p </Final answer>`` and ``<Important Features> a, b </Important Features>``;
  closing tags are optional (the content then runs to the next tag or the end).

Rules, the same for every format:

* JSON objects may sit inside a Markdown code fence or among other text; the first object holding an
  ``"answer"`` key is used. A truncated object (generation hit ``max_new_tokens``) still yields its
  answer when the ``"answer": <number>`` pair itself is complete.
* The answer must be one number: ``0.7``, ``.7``, ``7e-1``, or a percentage ``70%`` (→ 0.7). A sentence
  inside a QD ``<Final answer>`` is read too when exactly one of its numbers is a probability (``"The probability of death within 30
  days is 0.14"`` → 0.14: 30 is not in [0, 1]) — small models answer in words. A value outside [0, 1]
  (``1.5``, ``-0.1``, ``150%``), words only (``"high"``), an empty answer, several competing
  probabilities (``0.3 or 0.6``) or no answer at all make the reply **unparsable**.
* Unparsable replies get ``probability = None`` and ``parsed = False``; they are never guessed. The
  metrics module scores them by its documented rule (``metrics.unparsable``) and counts them.
* Important features are split on commas, semicolons and new lines, stripped of bullets, numbering,
  quotes and trailing units in parentheses; with a ``vocabulary`` (the cohort's feature names) they are
  mapped to canonical names (case, spacing and punctuation ignored) and unknown names are dropped.
* A feature list that repeats the instructions (an item that is an ellipsis or a piece of
  :data:`methods.llm.formats.QD_PLACEHOLDERS`, e.g. ``...`` or ``comma-separated``) is a copy of the
  prompt, not an answer: it yields no features at all, with or without a vocabulary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from methods.llm.formats import (
    ANSWER_KEY,
    ANY_TAG_RE,
    FEATURES_TAG,
    FINAL_ANSWER_TAG,
    FORMATS,
    QD_PLACEHOLDERS,
    open_tag,
    tag_pattern,
)

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(rf"^\s*({_NUMBER})\s*(%?)\s*$")
_NUMBER_IN_TEXT_RE = re.compile(rf"(?<![\w.])({_NUMBER})(?!\.?\d)(?![A-Za-z_])\s*(%?)")
_ANSWER_PAIR_RE = re.compile(rf"[\"']{ANSWER_KEY}[\"']\s*:\s*[\"']?\s*({_NUMBER}\s*%?)\s*[\"']?\s*(?=[,}}\n])", re.IGNORECASE)
_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_NO_ANSWER = f"no \"{ANSWER_KEY}\" found"


@dataclass(frozen=True)
class ParsedAnswer:
    """What was read from one completion."""

    probability: float | None
    features: list[str] = field(default_factory=list)
    parsed: bool = False
    reason: str = ""  # why parsing failed ('' when parsed)


def _probabilities_in(text: str) -> list[float]:
    """Every number (or percentage) of ``text`` that is a probability in [0, 1]."""
    values = []
    for number, percent in _NUMBER_IN_TEXT_RE.findall(text):
        try:
            value = float(number) / (100.0 if percent else 1.0)
        except ValueError:
            continue
        if 0.0 <= value <= 1.0:
            values.append(value)
    return values


def parse_number(text: str, sentence: bool = False) -> float | None:
    """A probability from text that is exactly one number (or percentage); None when not in [0, 1].

    With ``sentence`` (the content of a QD ``<Final answer>`` tag), a sentence whose numbers hold exactly
    one probability is read too; several competing probabilities stay unparsable.
    """
    match = _NUMBER_RE.match(text.strip().strip("\"'`").strip())
    if not match:
        if not sentence:
            return None
        found = _probabilities_in(text)
        return found[0] if len(found) == 1 else None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    if match.group(2) == "%":
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        return None
    return value


def _json_objects(text: str) -> list[dict]:
    """Every JSON object that decodes somewhere in ``text`` (fenced blocks first, then raw text)."""
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    found: list[dict] = []
    for candidate in candidates:
        for start in (m.start() for m in re.finditer(r"\{", candidate)):
            try:
                value, _ = decoder.raw_decode(candidate[start:])
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _answer_from_value(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if 0.0 <= float(value) <= 1.0 else None
    if isinstance(value, str):
        return parse_number(value)
    return None


def _json_answer(text: str) -> tuple[float | None, str]:
    for obj in _json_objects(text):
        keys = {k.lower(): k for k in obj if isinstance(k, str)}
        if ANSWER_KEY in keys:
            value = _answer_from_value(obj[keys[ANSWER_KEY]])
            return value, "" if value is not None else f"answer {obj[keys[ANSWER_KEY]]!r} is not a probability in [0, 1]"
    pairs = _ANSWER_PAIR_RE.findall(text)  # truncated or slightly malformed JSON
    if pairs:
        value = parse_number(pairs[0])
        return value, "" if value is not None else f"answer {pairs[0]!r} is not a probability in [0, 1]"
    return None, _NO_ANSWER


def _tag_content(text: str, tag: str) -> str | None:
    """Content of the last ``<tag>`` (to its closing tag, the next known tag, or the end)."""
    opening = list(re.finditer(tag_pattern(tag), text, re.IGNORECASE))
    if not opening:
        return None
    rest = text[opening[-1].end():]
    nxt = ANY_TAG_RE.search(rest)
    return (rest[:nxt.start()] if nxt else rest).strip()


def feature_key(name: str) -> str:
    """Comparison key of a feature name: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-zα-ωµμ]", "", name.lower())


_ITEM_SPLIT_RE = re.compile(r"[,;\n]")
_ELLIPSIS_RE = re.compile(r"\s*[\"'`]?\s*(?:\.{2,}|\u2026)\s*[\"'`]?\s*")
_PLACEHOLDER_KEYS = frozenset(key for phrase in QD_PLACEHOLDERS for part in (phrase, *_ITEM_SPLIT_RE.split(phrase))
                              if (key := feature_key(part)))


def is_placeholder(item: str) -> bool:
    """Whether one listed item repeats the QD instructions (an ellipsis or a piece of their placeholder text)."""
    return bool(_ELLIPSIS_RE.fullmatch(item)) or feature_key(item) in _PLACEHOLDER_KEYS


def split_features(text: str, vocabulary: Sequence[str] | None = None) -> list[str]:
    """The feature names listed in ``text`` (see module docstring), de-duplicated in order; none when the
    list repeats the instructions (:func:`is_placeholder`), so a copied prompt never names features."""
    out: list[str] = []
    canonical = {feature_key(v): v for v in vocabulary} if vocabulary else None
    items = _ITEM_SPLIT_RE.split(text)
    if any(is_placeholder(item) for item in items):
        return []
    for item in items:
        item = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", item).strip().strip("\"'`.").strip()
        item = re.sub(r"^(?:and|or)\s+", "", item, flags=re.IGNORECASE)  # "a, b, and c"
        item = re.sub(r"\s*\((?:unit|reference)[^)]*\)?\s*$", "", item, flags=re.IGNORECASE).strip()
        if not item:
            continue
        if canonical is not None:
            name = canonical.get(feature_key(item))
            if name is None:
                continue
            item = name
        if item not in out:
            out.append(item)
    return out


def parse_answer(text: str, fmt: str, vocabulary: Sequence[str] | None = None) -> ParsedAnswer:
    """Parse one completion in format ``fmt`` (one of ``FORMATS``); see the module docstring for the rules."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown answer format '{fmt}'; expected one of {FORMATS}")
    if text is None or not text.strip():
        return ParsedAnswer(None, [], False, "empty completion")
    features: list[str] = []
    if fmt == "qd":
        content = _tag_content(text, FINAL_ANSWER_TAG)
        listed = _tag_content(text, FEATURES_TAG)
        if listed is not None:
            features = split_features(listed, vocabulary)
        if content is None:
            return ParsedAnswer(None, features, False, f"no {open_tag(FINAL_ANSWER_TAG)} tag")
        value = parse_number(content, sentence=True)
        if value is None:
            return ParsedAnswer(None, features, False, f"final answer {content[:40]!r} is not a probability in [0, 1]")
        return ParsedAnswer(value, features, True, "")
    value, reason = _json_answer(text)
    if value is None and fmt in ("vanilla", "label") and reason == _NO_ANSWER:
        value = parse_number(text)  # a bare number is a final answer too
        reason = "" if value is not None else reason
    return ParsedAnswer(value, features, value is not None, reason)


def parse_all(texts: Sequence[str], fmt: str, vocabulary: Sequence[str] | None = None) -> list[ParsedAnswer]:
    """:func:`parse_answer` for many completions."""
    return [parse_answer(t, fmt, vocabulary) for t in texts]
