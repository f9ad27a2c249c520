"""Prompt serialization: spans point at the right text, shuffling keeps every line, NaN rendering."""

from __future__ import annotations

import re

import numpy as np
import pytest

from benchmark.serialize import (
    INSTRUCTIONS_HEADING,
    feature_line,
    format_value,
    patient_seed,
    serialize_cohort,
    serialize_patient,
    shuffled_order,
)

INSTRUCTIONS = "Reply with one number."  # the harness closes a prompt with whatever instructions it is given
LINE = re.compile(r"^- (?P<name>.+) \(Unit: (?P<unit>.*)\. Reference range: (?P<range>.*)\.\): \[(?P<values>.*)\]$")


def feature_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if LINE.match(line)]


def test_spans_cover_exactly_each_feature_line(small_icu):
    prompt = serialize_patient(small_icu, 0, "mortality", instructions=INSTRUCTIONS)
    assert set(prompt.spans) == set(small_icu.feature_names)
    for spec in small_icu.features:
        (start, end), = prompt.spans[spec.name]
        line = prompt.text[start:end]
        match = LINE.match(line)
        assert match, line
        assert match["name"] == spec.name and match["unit"] == spec.unit and match["range"] == spec.reference_range
        # The span is a whole line: a newline (or the start) before it, a newline after it.
        assert prompt.text[start - 1] == "\n" and prompt.text[end] == "\n"


def test_values_in_line_are_the_patients_raw_values(small_icu):
    i = 3
    prompt = serialize_patient(small_icu, i, "mortality", instructions=INSTRUCTIONS, decimals=2)
    n = int(small_icu.n_visits[i])
    for j, spec in enumerate(small_icu.features):
        (start, end), = prompt.spans[spec.name]
        values = LINE.match(prompt.text[start:end])["values"].split(", ")
        assert len(values) == n
        for text, raw in zip(values, small_icu.raw[i, :n, j], strict=True):
            if np.isnan(raw):
                assert text == "NaN"
            else:
                assert float(text) == pytest.approx(raw, abs=0.005)


def test_layout_order_persona_task_times_sex_age_features_instructions(small_icu):
    prompt = serialize_patient(small_icu, 1, "readmission", instructions=INSTRUCTIONS)
    text = prompt.text
    positions = [text.index(prompt.system), text.index("Task:"), text.index("after admission"),
                 text.index("- Sex:"), text.index("- Age:"), min(s[0][0] for s in prompt.spans.values()),
                 text.index(INSTRUCTIONS)]
    assert positions == sorted(positions)
    assert "readmitted" in text
    assert prompt.text == prompt.system + "\n\n" + prompt.user


def test_nan_rendering_and_number_format():
    assert format_value(float("nan")) == "NaN"
    assert format_value(None) == "NaN"
    assert format_value(37.20000076) == "37.2"
    assert format_value(94.0) == "94"
    assert format_value(0.384, 2) == "0.38"
    assert format_value(-0.001, 2) == "0"
    from benchmark.data.cohort import FeatureSpec

    spec = FeatureSpec("pH", "/", "7.35 - 7.45", "lab")
    assert feature_line(spec, [float("nan"), 7.4, float("nan")]) == \
        "- pH (Unit: /. Reference range: 7.35 - 7.45.): [NaN, 7.4, NaN]"


def test_missing_values_show_as_nan_in_prompt(small_icu):
    real = np.arange(small_icu.raw.shape[1])[None, :] < small_icu.n_visits[:, None]
    missing = np.isnan(small_icu.raw) & real[:, :, None]  # (patient, visit, feature) measured nowhere
    i, t, j = (int(v[0]) for v in np.nonzero(missing))
    prompt = serialize_patient(small_icu, i, "mortality", instructions=INSTRUCTIONS)
    line = prompt.text[slice(*prompt.spans[small_icu.features[j].name][0])]
    assert line.split(": [")[1].rstrip("]").split(", ")[t] == "NaN"


def test_zero_shuffle_is_identity(small_icu):
    plain = serialize_patient(small_icu, 5, "mortality", instructions=INSTRUCTIONS)
    shuffled = serialize_patient(small_icu, 5, "mortality", instructions=INSTRUCTIONS, shuffle_fraction=0.0, seed=9)
    assert plain == shuffled
    assert plain.feature_order == small_icu.feature_names


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_shuffle_keeps_every_line_and_moves_the_chosen_fraction(small_icu, fraction):
    plain = serialize_patient(small_icu, 7, "mortality", instructions=INSTRUCTIONS)
    shuffled = serialize_patient(small_icu, 7, "mortality", instructions=INSTRUCTIONS, shuffle_fraction=fraction,
                                 seed=3)
    assert sorted(feature_lines(plain.text)) == sorted(feature_lines(shuffled.text))
    moved = sum(a != b for a, b in zip(plain.feature_order, shuffled.feature_order, strict=True))
    assert moved == round(fraction * len(small_icu.features))
    # Spans follow the lines to their new places.
    for name in small_icu.feature_names:
        (start, end), = shuffled.spans[name]
        assert LINE.match(shuffled.text[start:end])["name"] == name
    # Everything outside the feature block is unchanged.
    assert shuffled.text.split("Clinical features over time:")[0] == plain.text.split("Clinical features over time:")[0]


def test_shuffle_is_seeded_per_patient(small_icu):
    a = serialize_patient(small_icu, 2, "mortality", instructions=INSTRUCTIONS, shuffle_fraction=0.75, seed=1)
    b = serialize_patient(small_icu, 2, "mortality", instructions=INSTRUCTIONS, shuffle_fraction=0.75, seed=1)
    c = serialize_patient(small_icu, 2, "mortality", instructions=INSTRUCTIONS, shuffle_fraction=0.75, seed=2)
    assert a == b
    assert a.feature_order != c.feature_order or a.feature_order != serialize_patient(
        small_icu, 2, "mortality", instructions=INSTRUCTIONS, shuffle_fraction=0.75, seed=4).feature_order
    # The same patient shuffles the same way inside any subset.
    sub = small_icu.select(np.array([9, 2]))
    again = serialize_patient(sub, 1, "mortality", instructions=INSTRUCTIONS, shuffle_fraction=0.75, seed=1)
    assert again.feature_order == a.feature_order


def test_shuffled_order_edge_cases():
    rng = patient_seed(0, "x")
    assert shuffled_order(6, 0.1, rng) == list(range(6))  # one chosen line cannot move
    order = shuffled_order(6, 1.0, patient_seed(0, "x"))
    assert sorted(order) == list(range(6)) and all(o != i for i, o in enumerate(order))
    with pytest.raises(ValueError):
        shuffled_order(6, 1.5, rng)


def test_instructions_close_the_prompt_and_are_required(small_ward):
    full = serialize_patient(small_ward, 0, "mortality", instructions=INSTRUCTIONS)
    assert full.text.endswith("\n" + INSTRUCTIONS_HEADING + "\n" + INSTRUCTIONS)
    compact = serialize_patient(small_ward, 0, "mortality", instructions=INSTRUCTIONS, layout="compact")
    assert compact.text.endswith("\n" + INSTRUCTIONS) and INSTRUCTIONS_HEADING not in compact.text
    with pytest.raises(TypeError):  # the harness knows no prompting style: a style name is not instructions
        serialize_patient(small_ward, 0, "mortality", "vanilla")


def test_spans_in_rendered_text(small_icu):
    prompt = serialize_patient(small_icu, 0, "mortality", instructions=INSTRUCTIONS)
    rendered = "<sys>" + prompt.system + "</sys><user>" + prompt.user + "</user>"
    spans = prompt.spans_in(rendered)
    for name, [(start, end)] in spans.items():
        (s0, e0), = prompt.spans[name]
        assert rendered[start:end] == prompt.text[s0:e0]
    with pytest.raises(ValueError):
        prompt.spans_in("unrelated text")


def test_serialize_cohort_one_prompt_per_patient(small_ward):
    prompts = serialize_cohort(small_ward.select(np.arange(5)), "mortality", instructions=INSTRUCTIONS)
    assert [p.id for p in prompts] == list(small_ward.ids[:5])
    assert "COVID-19" in prompts[0].system
