from dataclasses import dataclass

import pytest

from methods.eag_rl.mcts import ExpansionRequest, Step
from methods.eag_rl.proposer import (
    LLMProposer,
    parse_final,
    parse_intermediate,
    render_trajectory,
)
from methods.llm.parsing import parse_answer

QUESTION = "What is the probability that the patient dies in hospital?"


@dataclass
class FakeCompletion:
    text: str


class CannedGenerator:
    """Returns canned continuations and records what it was asked."""

    def __init__(self, step_text, final_text):
        self.step_text, self.final_text = step_text, final_text
        self.calls = []

    def generate(self, prompts, params, desc=""):
        self.calls.append((list(prompts), params))
        text = self.final_text if prompts[0].endswith("<Important Features>") else self.step_text
        return [FakeCompletion(text) for _ in prompts for _ in range(params.n)]


def test_parse_intermediate_step():
    step = parse_intermediate("Is the heart rate rising?</Subquestion>\n<Answer>Yes, 88 to 120.</Answer>\n<Sub", QUESTION)
    assert step == Step("Is the heart rate rising?", "Yes, 88 to 120.")


def test_parse_final_step_and_unparsable():
    step = parse_final("Heart Rate, pH</Important Features>\n<Final answer>0.8</Final answer>", QUESTION)
    assert step.final and step.features == ("Heart Rate", "pH") and step.probability == pytest.approx(0.8)
    broken = parse_final("Heart Rate, pH</Important Features>\nI think it is high", QUESTION)
    assert broken.final and broken.probability is None
    unclosed = parse_final("pH</Important Features>\n<Final answer>0.3", QUESTION)
    assert unclosed.probability == pytest.approx(0.3)


def test_early_conclusion_is_a_final_step():
    text = "Overall?</Subquestion><Final subquestion>x</Final subquestion><Important Features>pH</Important Features><Final answer>0.9</Final answer>"
    step = parse_intermediate(text, QUESTION)
    assert step.final and step.probability == pytest.approx(0.9) and step.features == ("pH",)


def test_rendered_trajectory_parses_with_the_qd_parser():
    steps = (Step("Is pH low?", "Yes, 7.21."), Step(QUESTION, final=True, features=("pH", "Heart Rate"), probability=0.74))
    parsed = parse_answer(render_trajectory(steps), "qd")
    assert parsed.parsed and parsed.probability == pytest.approx(0.74)
    assert parsed.features == ["pH", "Heart Rate"]


def test_proposer_batches_and_forces_the_final_step():
    generator = CannedGenerator("Is pH low?</Subquestion>\n<Answer>Yes.</Answer>",
                                "pH</Important Features>\n<Final answer>0.6</Final answer>")
    proposer = LLMProposer(generator, QUESTION)
    proposer.seed(5)
    requests = [ExpansionRequest("P1 ", (), 2, False), ExpansionRequest("P2 ", (), 2, True),
                ExpansionRequest("P3 ", (Step("a", "b"),), 2, False)]
    out = proposer.propose(requests)
    assert [len(c) for c in out] == [2, 2, 2]
    assert not out[0][0].final and out[1][0].final and out[1][0].probability == pytest.approx(0.6)
    assert len(generator.calls) == 2  # one generate per kind of step, all patients together
    step_prompts = generator.calls[0][0]
    assert step_prompts[1] == "P3 <Subquestion>a</Subquestion>\n<Answer>b</Answer>\n<Subquestion>"
    assert generator.calls[1][0][0].endswith("<Important Features>") and QUESTION in generator.calls[1][0][0]
    assert generator.calls[0][1].seed == 5 and generator.calls[1][1].seed == 6


class SlotGenerator:
    """Fills scaffolded slots: records each call's prompts and stop strings, answers by the slot asked."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, params, desc=""):
        self.calls.append((list(prompts), params))
        answers = {"<Subquestion>": "Is pH low?", "<Answer>": "Yes, 7.21.",
                   "<Important Features>": "The key ones are pH and Heart Rate", "0.": "8"}
        slot = next(tag for tag in answers if prompts[0].endswith(tag))
        return [FakeCompletion(answers[slot]) for _ in prompts for _ in range(params.n)]


def test_scaffolded_proposer_writes_the_tags_and_fills_each_slot():
    generator = SlotGenerator()
    proposer = LLMProposer(generator, QUESTION, scaffold=True)
    requests = [ExpansionRequest("P1 ", (), 2, False), ExpansionRequest("P2 ", (), 2, True)]
    out = proposer.propose(requests)
    assert out[0] == [Step("Is pH low?", "Yes, 7.21.")] * 2
    final = out[1][0]
    assert final.final and final.probability == pytest.approx(0.8)
    assert final.features == ("The key ones are pH and Heart Rate",)
    # two calls per step kind: the slot, then (one sample per candidate) the slot after the written tag
    assert len(generator.calls) == 4
    assert [params.n for _, params in generator.calls] == [2, 1, 2, 1]
    assert generator.calls[1][0][0] == "P1 <Subquestion>Is pH low?</Subquestion>\n<Answer>"
    assert generator.calls[2][0][0].endswith("<Important Features>")
    assert generator.calls[3][0][0].endswith("</Important Features>\n<Final answer>0.")
    assert "</Important Features>" in generator.calls[2][1].stop and "\n" in generator.calls[2][1].stop
    assert len({params.seed for _, params in generator.calls}) == 4  # every call samples with its own seed
    rendered = render_trajectory((out[0][0], final))
    assert parse_answer(rendered, "qd").parsed
