"""EHR → prompt text, with the character span of every feature line (DESIGN §3, "Prompt").

The layout follows the structured-EHR prompts of this literature (persona, task, visit times, sex, age,
one line per feature with its unit and reference range, then the answer instructions)::

    <persona>                                       <- the system message when a chat template is used

    Task: Assess the patient's record below and estimate the probability that the patient dies before ...
    The record has 3 visits, at days 0.23, 0.51, 1.65 after admission. Each feature below lists one value
    per visit, in that order; NaN marks a value that was not measured.
    Patient:
    - Sex: female
    - Age: 70 years
    Clinical features over time:
    - Heart Rate (Unit: bpm. Reference range: 60 - 100.): [NaN, 69, 67]
    - ...
    Answer format:
    <answer instructions>

The wording was chosen so that the 135M default backbone follows the Vanilla format (shorter variants
were tried and made it answer in prose); on a 2-core CPU every prompt token costs prefill time.

:class:`Prompt` keeps the persona (``system``) and the rest (``user``) apart, so a chat template can put
them in their own messages; ``spans`` index into ``text`` (= ``system + SEPARATOR + user``) and
:meth:`Prompt.spans_in` moves them into any rendering that contains ``user`` verbatim (e.g. the
chat-templated string). The LLM-attention module maps these spans to tokens through the tokenizer's
offsets.

Robustness: ``shuffle_fraction`` moves a seeded random subset of the feature lines (that fraction of
them, rounded) to each other's places by a cyclic shift, so every chosen line really changes place
and every line is still present; 0 is the identity.

The answer instructions that close a prompt are the LLM methods' (:mod:`methods.llm.formats`, the one home
of the answer formats): :func:`serialize_patient` takes them as text and knows no prompting style.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from benchmark.data.cohort import Cohort, FeatureSpec

SEPARATOR = "\n\n"
INSTRUCTIONS_HEADING = "Answer format:"  # the full layout's line before the answer instructions
Layout = Literal["full", "compact"]
LAYOUTS: tuple[str, ...] = ("full", "compact")

PERSONAS = {
    "icu": "You are an experienced ICU physician who predicts clinical outcomes from longitudinal patient records.",
    "ward": ("You are an experienced physician treating hospitalised COVID-19 patients who predicts clinical "
             "outcomes from longitudinal laboratory records."),
    "generic": "You are an experienced physician who predicts clinical outcomes from longitudinal patient records.",
}

# What the probability is *of*, per task (used in the task description and the answer instructions).
OUTCOMES = {
    "mortality": "the patient dies before leaving the hospital",
    "readmission": "the patient is readmitted (or dies) within 30 days after discharge",
}


def persona_for(domain: str) -> str:
    """The persona sentence for a cohort domain: ICU-like (icu, mimic*) or ward-like (ward, tjh)."""
    domain = domain.lower()
    if "icu" in domain or "mimic" in domain:
        return PERSONAS["icu"]
    if "ward" in domain or "tjh" in domain or "covid" in domain:
        return PERSONAS["ward"]
    return PERSONAS["generic"]


def outcome_of(task: str) -> str:
    """The outcome phrase of ``task``; unknown tasks get a neutral phrase naming the task."""
    return OUTCOMES.get(task, f"the outcome '{task}' occurs")


def task_description(task: str) -> str:
    """One sentence saying what to predict."""
    return f"Assess the patient's record below and estimate the probability that {outcome_of(task)}."


@dataclass(frozen=True)
class Prompt:
    """A serialized patient: persona (``system``), the rest (``user``) and the span of each feature line.

    ``spans[feature]`` lists ``(start, end)`` character offsets into :attr:`text`; ``text[start:end]`` is
    the feature's whole line (from ``"- "`` to the closing ``"]"``, newline excluded).
    """

    id: str
    system: str
    user: str
    spans: dict[str, list[tuple[int, int]]]
    feature_order: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The whole prompt as one string (persona, blank line, user part)."""
        return self.system + SEPARATOR + self.user

    @property
    def user_offset(self) -> int:
        """Where :attr:`user` starts inside :attr:`text`."""
        return len(self.system) + len(SEPARATOR)

    def spans_in(self, rendered: str) -> dict[str, list[tuple[int, int]]]:
        """The spans moved into ``rendered``, a string that contains :attr:`user` verbatim exactly once.

        Used after a chat template wraps the messages; raises ``ValueError`` when ``user`` is not found
        (a template that rewrites message content cannot be mapped back to features).
        """
        position = rendered.find(self.user)
        if position < 0:
            raise ValueError(f"prompt {self.id}: the user message does not occur verbatim in the rendered text")
        shift = position - self.user_offset
        return {name: [(start + shift, end + shift) for start, end in spans] for name, spans in self.spans.items()}


def format_value(value: float, decimals: int = 2) -> str:
    """A measured value as prompt text: ``NaN`` when missing, else rounded with trailing zeros removed."""
    if value is None or not np.isfinite(value):
        return "NaN"
    rounded = round(float(value), decimals)
    if rounded == 0:
        rounded = 0.0  # no "-0"
    return np.format_float_positional(rounded, trim="-")


def feature_line(spec: FeatureSpec, values: Sequence[float], decimals: int = 2) -> str:
    """``- <name> (Unit: <u>. Reference range: <r>.): [v1, v2, ...]`` for one feature's visit values."""
    rendered = ", ".join(format_value(v, decimals) for v in values)
    return f"- {spec.name} (Unit: {spec.unit}. Reference range: {spec.reference_range}.): [{rendered}]"


def shuffled_order(n: int, fraction: float, rng: np.random.Generator) -> list[int]:
    """A permutation of ``range(n)`` that moves ``round(fraction * n)`` positions (0 = identity).

    The chosen positions are shifted cyclically among themselves in a random order, so each chosen line
    lands somewhere else (a single chosen line cannot move and stays put).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"shuffle fraction must be in [0, 1], got {fraction}")
    order = list(range(n))
    k = int(round(fraction * n))
    if k < 2:
        return order
    chosen = rng.choice(n, size=k, replace=False)
    for source, target in zip(chosen, np.roll(chosen, 1), strict=True):
        order[int(target)] = int(source)
    return order


def _static_value(cohort: Cohort, index: int, name: str) -> float:
    names = [n.lower() for n in cohort.static_names]
    if name not in names:
        return float("nan")
    return float(cohort.static[index, names.index(name)])


def _sex_text(value: float) -> str:
    if not np.isfinite(value):
        return "unknown"
    return "male" if value >= 0.5 else "female"


def patient_seed(seed: int, patient_id: str) -> np.random.Generator:
    """A generator seeded by (``seed``, patient id): stable whatever subset or order the patient is in."""
    return np.random.default_rng([seed, zlib.crc32(str(patient_id).encode("utf-8"))])


DEVIATION_STEPS = 3  # |z| >= 1, 2, 3 train standard deviations: one to three marks


def deviation_level(value: float, mean: float, std: float) -> int:
    """The signed number of whole train standard deviations ``value`` lies from the train mean, capped at
    ±:data:`DEVIATION_STEPS`; 0 when missing or closer than one standard deviation."""
    if not np.isfinite(value):
        return 0
    z = (value - mean) / std
    return int(np.sign(z)) * min(int(abs(z)), DEVIATION_STEPS)


def deviation_flag(level: int) -> str:
    """The compact layout's mark of a deviation level: ``' ++'`` two standard deviations above the train mean,
    ``' -'`` one below, ``''`` within one."""
    return "" if level == 0 else " " + ("+" if level > 0 else "-") * abs(level)


def compact_line(spec: FeatureSpec, values: Sequence[float], mean: float, std: float, decimals: int = 2) -> str:
    """``- <name>: v1, v2 ++, ...``: the compact layout's feature line. No unit and no range (fewer tokens);
    instead each value carries one to three marks (``+`` above, ``-`` below) per whole train standard deviation
    it lies from the cohort's train mean (:func:`deviation_level`), which a small LM trained by the pipeline
    reads where it cannot learn to compare decimals. The marks grade how far a value is from the typical
    patient, as the H/HH flags of a lab report grade it against a reference range."""
    return f"- {spec.name}: " + ", ".join(
        format_value(v, decimals) + deviation_flag(deviation_level(v, mean, std)) for v in values)


def compact_head(cohort: Cohort, index: int, task: str, decimals: int = 2) -> str:
    """The compact layout's lines before the features: task, visit days, sex and age."""
    n_visits = int(cohort.n_visits[index])
    times = ", ".join(format_value(t, decimals) for t in cohort.times[index, :n_visits])
    sex = _sex_text(_static_value(cohort, index, "sex"))
    age = format_value(_static_value(cohort, index, "age"), 0)
    return (f"Task: {task_description(task)}\n"
            f"Visits at days {times}. Sex {sex}, age {age}.\n")


def serialize_patient(cohort: Cohort, index: int, task: str, *, instructions: str, decimals: int = 2,
                      shuffle_fraction: float = 0.0, seed: int = 0, persona: str | None = None,
                      layout: str = "full") -> Prompt:
    """The prompt of patient ``index`` of ``cohort`` for ``task``, closed by the answer ``instructions``.

    ``instructions`` is the text that asks for an answer format (the LLM methods write it:
    :func:`methods.llm.formats.answer_instructions`), and ``persona`` replaces the domain's persona.
    ``shuffle_fraction`` and ``seed`` control the robustness
    shuffle of feature lines (seeded per patient id, see :func:`shuffled_order`). ``layout`` 'full' is
    the layout of the module docstring; 'compact' keeps the same facts but one short line per feature
    (``- Respiratory rate: 24 +, 31 ++, 19``, each value marked by its distance from the train mean instead of the
    range, :func:`compact_line`) and no ``Answer format:`` line: about a third of the tokens, for the testbed
    LM that is trained on this layout (:mod:`methods.llm.testbed`).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown prompt layout '{layout}'; expected one of {LAYOUTS}")
    n_visits = int(cohort.n_visits[index])
    times = ", ".join(format_value(t, decimals) for t in cohort.times[index, :n_visits])
    visit_word = "visit" if n_visits == 1 else "visits"
    day_word = "day" if n_visits == 1 else "days"
    system = persona if persona is not None else persona_for(cohort.domain)
    compact = layout == "compact"
    head = compact_head(cohort, index, task, decimals) if compact else (
        f"Task: {task_description(task)}\n"
        f"The record has {n_visits} {visit_word}, at {day_word} {times} after admission. Each feature below lists "
        f"one value per visit, in that order; NaN marks a value that was not measured.\n"
        f"Patient:\n"
        f"- Sex: {_sex_text(_static_value(cohort, index, 'sex'))}\n"
        f"- Age: {format_value(_static_value(cohort, index, 'age'), 0)} years\n"
        f"Clinical features over time:\n"
    )
    order = shuffled_order(len(cohort.features), shuffle_fraction,
                           patient_seed(seed, str(cohort.ids[index])))
    offset = len(system) + len(SEPARATOR) + len(head)
    lines: list[str] = []
    spans: dict[str, list[tuple[int, int]]] = {}
    for j in order:
        spec = cohort.features[j]
        values = cohort.raw[index, :n_visits, j]
        line = (compact_line(spec, values, cohort.normalisation.mean[j], cohort.normalisation.std[j], decimals)
                if compact else feature_line(spec, values, decimals))
        spans[spec.name] = [(offset, offset + len(line))]
        lines.append(line)
        offset += len(line) + 1
    tail = ("" if compact else INSTRUCTIONS_HEADING + "\n") + instructions
    user = head + "\n".join(lines) + "\n" + tail
    return Prompt(id=str(cohort.ids[index]), system=system, user=user, spans=spans,
                  feature_order=[cohort.features[j].name for j in order])


def serialize_cohort(cohort: Cohort, task: str, **kwargs) -> list[Prompt]:
    """:func:`serialize_patient` for every patient of ``cohort`` (same keyword arguments)."""
    return [serialize_patient(cohort, i, task, **kwargs) for i in range(len(cohort))]
