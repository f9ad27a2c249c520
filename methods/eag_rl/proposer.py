"""The LLM side of stage-1 search: proposing Question-Decomposition steps, and rendering trajectories.

The proposer continues the patient's QD prompt (already rendered with the chat template) with the
trajectory so far, in the tags of the QD format (:func:`benchmark.serialize.answer_instructions`):

* an intermediate step is asked for by appending ``<Subquestion>``; the continuation is read up to the
  first ``</Answer>`` — one (subquestion, answer) pair is one action. If the model concludes instead
  (writes ``<Final answer>``), that final step is taken as it is.
* a final step is asked for by appending the final subquestion and ``<Important Features>``; the
  continuation must list the features and give ``<Final answer>p</Final answer>``. If it does not parse,
  the step is kept with ``probability=None`` and scores the unparsable penalty, so the search learns to
  avoid such continuations rather than silently dropping them.

All ``n`` candidates of all requests go to the generator in one call (one batched ``generate``). The
backbone itself proposes by default (self-distillation); any other model can be passed as a teacher.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from methods.eag_rl.mcts import ExpansionRequest, Step
from methods.llm.generation import SamplingParams
from methods.llm.parsing import parse_number, split_features

_TAG = r"<\s*/?\s*{}\s*>"


def _between(text: str, opening: str | None, closing: str) -> tuple[str, int] | None:
    """Text from after ``opening`` (or the start) to ``closing``; None when ``closing`` is absent."""
    start = 0
    if opening is not None:
        found = re.search(_TAG.format(re.escape(opening)), text, re.IGNORECASE)
        if not found:
            return None
        start = found.end()
    end = re.search(r"<\s*/\s*" + re.escape(closing) + r"\s*>", text[start:], re.IGNORECASE)
    if not end:
        return None
    return text[start:start + end.start()].strip(), start + end.end()


def render_step(step: Step) -> str:
    """One step in the QD tags (the text the policy is trained to write)."""
    if not step.final:
        return f"<Subquestion>{step.subquestion}</Subquestion>\n<Answer>{step.answer}</Answer>\n"
    probability = "" if step.probability is None else f"{step.probability:.2f}"
    return (f"<Final subquestion>{step.subquestion}</Final subquestion>\n"
            f"<Important Features>{', '.join(step.features)}</Important Features>\n"
            f"<Final answer>{probability}</Final answer>")


def render_trajectory(steps: Sequence[Step]) -> str:
    """A whole trajectory as one QD completion."""
    return "".join(render_step(step) for step in steps)


def final_prefix(question: str) -> str:
    """What is appended to force the final step."""
    return f"<Final subquestion>{question}</Final subquestion>\n<Important Features>"


def parse_final(continuation: str, question: str) -> Step:
    """A final step from the text written after :func:`final_prefix` (probability None if unparsable)."""
    listed = _between(continuation, None, "Important Features")
    features = tuple(split_features(listed[0])) if listed else ()
    answer = _between(continuation, "Final answer", "Final answer")
    if answer is None:  # an unclosed final answer at the end of the text still counts
        found = re.search(_TAG.format("Final answer") + r"(.*)$", continuation, re.IGNORECASE | re.DOTALL)
        answer = (found.group(1).strip(), 0) if found else None
    probability = parse_number(answer[0], sentence=True) if answer else None
    return Step(question, final=True, features=features, probability=probability)


def parse_intermediate(continuation: str, question: str) -> Step:
    """An intermediate step from the text written after ``<Subquestion>`` (or a final one, if it concluded)."""
    if re.search(_TAG.format("Final answer"), continuation, re.IGNORECASE):
        tail = continuation.split("<Important Features>", 1)[-1] if "<Important Features>" in continuation else ""
        return parse_final(tail or continuation, question)
    sub = _between(continuation, None, "Subquestion")
    if sub is None:
        return Step(continuation.strip().split("\n", 1)[0][:200], "")
    answer = _between(continuation[sub[1]:], "Answer", "Answer")
    text = answer[0] if answer else continuation[sub[1]:].replace("<Answer>", "").strip().split("\n", 1)[0]
    return Step(sub[0], text[:300])


class LLMProposer:
    """A :class:`~methods.eag_rl.mcts.Proposer` backed by a generator (:mod:`methods.llm.generation`)."""

    def __init__(self, generator, final_question: str, step_tokens: int = 48, final_tokens: int = 48,
                 temperature: float = 0.8, top_p: float = 0.95):
        self.generator = generator
        self.final_question = final_question
        self.step_tokens = step_tokens
        self.final_tokens = final_tokens
        self.temperature = temperature
        self.top_p = top_p
        self._seed = 0

    def seed(self, seed: int) -> None:
        self._seed = seed

    def _inputs(self, request: ExpansionRequest) -> str:
        prefix = final_prefix(self.final_question) if request.final_only else "<Subquestion>"
        return request.prompt + render_trajectory(request.steps) + prefix

    def propose(self, requests: Sequence[ExpansionRequest]) -> list[list[Step]]:
        """``request.n`` candidate steps per request, from one batched generate per kind of step."""
        out: list[list[Step]] = [[] for _ in requests]
        for final_only in (False, True):
            chosen = [i for i, r in enumerate(requests) if r.final_only == final_only]
            if not chosen:
                continue
            n = requests[chosen[0]].n
            if any(requests[i].n != n for i in chosen):
                raise ValueError("all requests of one call must ask for the same number of candidates")
            params = SamplingParams(max_new_tokens=self.final_tokens if final_only else self.step_tokens,
                                    temperature=self.temperature, top_p=self.top_p, seed=self._seed, n=n)
            completions = self.generator.generate([self._inputs(requests[i]) for i in chosen], params, desc="mcts")
            parse = parse_final if final_only else parse_intermediate
            for k, i in enumerate(chosen):
                out[i] = [parse(c.text, self.final_question) for c in completions[k * n:(k + 1) * n]]
            self._seed += 1  # the next call in this chunk samples differently, reproducibly
        return out
