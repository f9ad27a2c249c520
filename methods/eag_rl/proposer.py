"""The LLM side of stage-1 search: proposing Question-Decomposition steps, and rendering trajectories.

The proposer continues the patient's QD prompt (already rendered with the chat template) with the
trajectory so far, in the tags of the QD format (:mod:`methods.llm.formats`):

* an intermediate step is asked for by appending ``<Subquestion>``; the continuation is read up to the
  first ``</Answer>`` — one (subquestion, answer) pair is one action. If the model concludes instead
  (writes ``<Final answer>``), that final step is taken as it is.
* a final step is asked for by appending the final subquestion and ``<Important Features>``; the
  continuation must list the features and give ``<Final answer>p</Final answer>``. If it does not parse,
  the step is kept with ``probability=None`` and scores the unparsable penalty, so the search learns to
  avoid such continuations rather than silently dropping them.

All ``n`` candidates of all requests go to the generator in one call (one batched ``generate``). The
backbone itself proposes by default (self-distillation); any other model can be passed as a teacher.

**Scaffolded proposals** (``scaffold=True``, the default of ``eag_rl.proposer.scaffold``): a small model
rarely closes the QD tags on its own (the 135M default closes a final step in about a quarter of the
samples), and an unclosed step is an unparsable trajectory. The search then writes the tags itself and
lets the model fill each slot, one batched call per slot kind, each slot ending at its closing tag or
at a line break (generation stop strings):

* intermediate step: ``<Subquestion>`` → the sub-question; ``</Subquestion>\n<Answer>`` → the answer;
* final step: ``<Final subquestion>…<Important Features>`` → the feature list;
  ``</Important Features>\n<Final answer>0.`` → the digits of the probability (a probability in [0, 1)
  by construction; no digits = unparsable).

Every trajectory is then well formed by construction (a slot can still hold no number, which scores the
unparsable penalty), so the SFT set teaches the format itself. Two calls per step kind instead of one,
each shorter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from methods.eag_rl.mcts import ExpansionRequest, Step
from methods.llm.formats import (
    ANSWER_TAG,
    FEATURES_TAG,
    FINAL_ANSWER_TAG,
    FINAL_SUBQUESTION_TAG,
    SUBQUESTION_TAG,
    close_tag,
    open_tag,
    qd_final_step,
    tag,
    tag_pattern,
)
from methods.llm.generation import SamplingParams
from methods.llm.parsing import parse_number, split_features


def _between(text: str, opening: str | None, closing: str) -> tuple[str, int] | None:
    """Text from after ``opening`` (or the start) to ``closing``; None when ``closing`` is absent."""
    start = 0
    if opening is not None:
        found = re.search(tag_pattern(opening, "either"), text, re.IGNORECASE)
        if not found:
            return None
        start = found.end()
    end = re.search(tag_pattern(closing, "close"), text[start:], re.IGNORECASE)
    if not end:
        return None
    return text[start:start + end.start()].strip(), start + end.end()


def render_step(step: Step) -> str:
    """One step in the QD tags (the text the policy is trained to write)."""
    if not step.final:
        return f"{tag(SUBQUESTION_TAG, step.subquestion)}\n{tag(ANSWER_TAG, step.answer)}\n"
    probability = "" if step.probability is None else f"{step.probability:.2f}"
    return qd_final_step(step.subquestion, step.features, probability)


def render_trajectory(steps: Sequence[Step]) -> str:
    """A whole trajectory as one QD completion."""
    return "".join(render_step(step) for step in steps)


def final_prefix(question: str) -> str:
    """What is appended to force the final step."""
    return f"{tag(FINAL_SUBQUESTION_TAG, question)}\n{open_tag(FEATURES_TAG)}"


def parse_final(continuation: str, question: str) -> Step:
    """A final step from the text written after :func:`final_prefix` (probability None if unparsable)."""
    listed = _between(continuation, None, FEATURES_TAG)
    features = tuple(split_features(listed[0])) if listed else ()
    answer = _between(continuation, FINAL_ANSWER_TAG, FINAL_ANSWER_TAG)
    if answer is None:  # an unclosed final answer at the end of the text still counts
        found = re.search(tag_pattern(FINAL_ANSWER_TAG, "either") + r"(.*)$", continuation, re.IGNORECASE | re.DOTALL)
        answer = (found.group(1).strip(), 0) if found else None
    probability = parse_number(answer[0], sentence=True) if answer else None
    return Step(question, final=True, features=features, probability=probability)


def parse_intermediate(continuation: str, question: str) -> Step:
    """An intermediate step from the text written after ``<Subquestion>`` (or a final one, if it concluded)."""
    if re.search(tag_pattern(FINAL_ANSWER_TAG, "either"), continuation, re.IGNORECASE):
        opening = open_tag(FEATURES_TAG)
        tail = continuation.split(opening, 1)[-1] if opening in continuation else ""
        return parse_final(tail or continuation, question)
    sub = _between(continuation, None, SUBQUESTION_TAG)
    if sub is None:
        return Step(continuation.strip().split("\n", 1)[0][:200], "")
    answer = _between(continuation[sub[1]:], ANSWER_TAG, ANSWER_TAG)
    text = answer[0] if answer else continuation[sub[1]:].replace(open_tag(ANSWER_TAG), "").strip().split("\n", 1)[0]
    return Step(sub[0], text[:300])


class LLMProposer:
    """A :class:`~methods.eag_rl.mcts.Proposer` backed by a generator (:mod:`methods.llm.generation`)."""

    def __init__(self, generator, final_question: str, step_tokens: int = 48, final_tokens: int = 48,
                 temperature: float = 0.8, top_p: float = 0.95, scaffold: bool = False):
        self.generator = generator
        self.final_question = final_question
        self.step_tokens = step_tokens
        self.final_tokens = final_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.scaffold = scaffold
        self._seed = 0

    def seed(self, seed: int) -> None:
        self._seed = seed

    def _inputs(self, request: ExpansionRequest) -> str:
        prefix = final_prefix(self.final_question) if request.final_only else open_tag(SUBQUESTION_TAG)
        return request.prompt + render_trajectory(request.steps) + prefix

    def _sample(self, prompts: list[str], n: int, max_new_tokens: int, stop: tuple[str, ...] = ()) -> list[str]:
        """``n`` sampled continuations per prompt (prompt-major), one batched call with its own seed."""
        params = SamplingParams(max_new_tokens=max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                seed=self._seed, n=n, stop=stop)
        self._seed += 1  # the next call in this chunk samples differently, reproducibly
        return [c.text for c in self.generator.generate(prompts, params, desc="mcts")]

    def _scaffolded(self, requests: Sequence[ExpansionRequest], n: int, final_only: bool) -> list[list[Step]]:
        """Candidates of ``requests`` with the tags written by the search (module docstring)."""
        heads = [request.prompt + render_trajectory(request.steps) for request in requests]
        if final_only:
            first_prefix, first_stop = final_prefix(self.final_question), (close_tag(FEATURES_TAG), "\n")
            second_prefix = f"{close_tag(FEATURES_TAG)}\n{open_tag(FINAL_ANSWER_TAG)}0."
            second_stop = (close_tag(FINAL_ANSWER_TAG), "\n", " ")
            first_tokens, second_tokens = self.final_tokens, 4
        else:
            first_prefix = open_tag(SUBQUESTION_TAG)
            first_stop = (close_tag(SUBQUESTION_TAG), "\n", open_tag(ANSWER_TAG))
            second_prefix = f"{close_tag(SUBQUESTION_TAG)}\n{open_tag(ANSWER_TAG)}"
            second_stop = (close_tag(ANSWER_TAG), "\n", open_tag(SUBQUESTION_TAG))
            first_tokens = second_tokens = self.step_tokens
        firsts = self._sample([head + first_prefix for head in heads], n, first_tokens, first_stop)
        firsts = [text.strip()[:300] for text in firsts]
        seconds = self._sample([heads[k // n] + first_prefix + first + second_prefix for k, first in enumerate(firsts)],
                               1, second_tokens, second_stop)
        steps: list[Step] = []
        for first, second in zip(firsts, seconds, strict=True):
            if final_only:
                digits = re.match(r"\d+", second.strip())
                steps.append(Step(self.final_question, final=True, features=tuple(split_features(first)),
                                  probability=float("0." + digits.group()) if digits else None))
            else:
                steps.append(Step(first, second.strip()[:300]))
        return [steps[k * n:(k + 1) * n] for k in range(len(requests))]

    def propose(self, requests: Sequence[ExpansionRequest]) -> list[list[Step]]:
        """``request.n`` candidate steps per request, from one batched generate per kind of step (per slot
        kind when scaffolded)."""
        out: list[list[Step]] = [[] for _ in requests]
        for final_only in (False, True):
            chosen = [i for i, r in enumerate(requests) if r.final_only == final_only]
            if not chosen:
                continue
            n = requests[chosen[0]].n
            if any(requests[i].n != n for i in chosen):
                raise ValueError("all requests of one call must ask for the same number of candidates")
            if self.scaffold:
                for i, candidates in zip(chosen, self._scaffolded([requests[i] for i in chosen], n, final_only),
                                         strict=True):
                    out[i] = candidates
                continue
            params = SamplingParams(max_new_tokens=self.final_tokens if final_only else self.step_tokens,
                                    temperature=self.temperature, top_p=self.top_p, seed=self._seed, n=n)
            completions = self.generator.generate([self._inputs(requests[i]) for i in chosen], params, desc="mcts")
            parse = parse_final if final_only else parse_intermediate
            for k, i in enumerate(chosen):
                out[i] = [parse(c.text, self.final_question) for c in completions[k * n:(k + 1) * n]]
            self._seed += 1  # the next call in this chunk samples differently, reproducibly
        return out
