"""The testbed LM's pretraining text: every train record in the QD prompt, with a label-free QD answer.

The testbed LM (:mod:`methods.llm.testbed`) is a small causal LM that the pipeline trains itself, so that
EAG-RL can run hundreds of real RL steps on a 2-core CPU. It has to learn two things before any
method touches it: to read the record serialization of :mod:`benchmark.serialize`, and to write a
well-formed Question-Decomposition answer. It must *not* learn the outcome: every LLM method
(Label SFT, stage 1, the RL variants) starts from it, and a base model that already knew the label
would hide what those methods add. So each answer here is built from the record alone::

    <Subquestion>Out of range at the last visit?</Subquestion>
    <Answer>Heart Rate high, pH low</Answer>                      <- read off the record (true)
    <Final subquestion>What is the probability that ...?</Final subquestion>
    <Important Features>Glucose, Heart Rate</Important Features>  <- 1 to top_k names, uniformly random
    <Final answer>0.37</Final answer>                             <- rises with the named features out of range

The prompt is :func:`benchmark.serialize.serialize_patient` in the given layout (the testbed uses
'compact'); the answer is short because every generated token costs RL time on a CPU.

* The sub-answer is a true statement about the values: the model learns to look at ranges. The compact
  layout flags each out-of-range value (H/L, :func:`benchmark.serialize.range_flag`), as a lab report does:
  without the flags the testbed LM did not learn to compare decimals with ranges (measured, README).
* The important features are a uniformly random subset of the cohort's features, drawn per answer:
  the base policy names real features, never instruction text, and sampled completions of one patient
  name different sets, so the attention reward R_att varies within a GRPO group from the first step.
  Which features matter is left for expert guidance (stage 1) and R_att (stage 2) to teach.
* The probability encodes one clinical prior and nothing else: it rises with the share of the *named*
  features that are out of their reference range at the last visit,
  ``p = 0.1 + 0.7 · (abnormal named / named) + U(−0.05, 0.05)``. A pretrained LLM brings such a prior
  (abnormal values mean risk); the testbed gets it from its corpus. It makes the answer depend on which
  features are named, which is the premise of EAG-RL: naming the features that drive the patient's risk
  (the expert's top-k) should give a better prediction. Whether R_att gets the policy there faster than
  the outcome reward alone is what the RL comparison measures.

A Vanilla document (``vanilla_answers_per_record``) is the record in the Vanilla prompt with the same
prior over all features as ``{"answer": 0.37}``: the answer format Label SFT's target is written in. Without
it, the tokens of ``"answer"`` never occur in the corpus, and a LoRA adapter on the attention could not
learn to write them (Label SFT was 100 % unparsable on synthetic_icu at 31ba28b).

Nothing here reads a label, the true risk or the salient set (a test checks that answers do not change
when labels do). Only the train split is used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.data.cohort import Cohort
from benchmark.serialize import format_value, outcome_of, patient_seed, reference_bounds, serialize_patient

SUBQUESTION = "Out of range at the last visit?"


@dataclass(frozen=True)
class Document:
    """One pretraining example: the QD prompt's persona and user text, and the assistant's answer."""

    id: str
    system: str
    user: str
    answer: str


def out_of_range_features(cohort: Cohort, index: int) -> list[str]:
    """Names of the features whose last observed value lies outside their reference range."""
    return [item.rsplit(" ", 1)[0] for item in abnormal_at_last_visit(cohort, index, limit=len(cohort.features))]


def abnormal_at_last_visit(cohort: Cohort, index: int, limit: int = 3) -> list[str]:
    """``"<name> high"`` / ``"<name> low"`` for the first ``limit`` features whose last observed value is out of
    their reference range, in the cohort's feature order."""
    found: list[str] = []
    n_visits = int(cohort.n_visits[index])
    for j, spec in enumerate(cohort.features):
        bounds = reference_bounds(spec)
        observed = cohort.raw[index, :n_visits, j]
        observed = observed[np.isfinite(observed)]
        if bounds is None or observed.size == 0:
            continue
        value = float(observed[-1])
        if value < bounds[0] or value > bounds[1]:
            side = "low" if value < bounds[0] else "high"
            found.append(f"{spec.name} {side}")
        if len(found) == limit:
            break
    return found


def prior_probability(share: float, rng: np.random.Generator) -> float:
    """The corpus's one clinical prior: ``0.1 + 0.7 · share + U(−0.05, 0.05)``, clipped to [0.05, 0.95], 2 decimals;
    ``share`` is the share of out-of-range features among those considered."""
    return round(min(max(0.1 + 0.7 * share + float(rng.uniform(-0.05, 0.05)), 0.05), 0.95), 2)


def qd_answer(cohort: Cohort, index: int, task: str, rng: np.random.Generator, top_k: int = 3) -> str:
    """A label-free QD answer for patient ``index`` (see the module docstring); ``rng`` draws its features
    and its probability."""
    abnormal = abnormal_at_last_visit(cohort, index)
    out_of_range = set(out_of_range_features(cohort, index))
    names = cohort.feature_names
    k = int(rng.integers(1, min(top_k, len(names)) + 1))
    chosen = [names[j] for j in sorted(rng.choice(len(names), size=k, replace=False))]
    probability = prior_probability(sum(name in out_of_range for name in chosen) / k, rng)
    return (f"<Subquestion>{SUBQUESTION}</Subquestion>\n"
            f"<Answer>{', '.join(abnormal) if abnormal else 'None'}</Answer>\n"
            f"<Final subquestion>What is the probability that {outcome_of(task)}?</Final subquestion>\n"
            f"<Important Features>{', '.join(chosen)}</Important Features>\n"
            f"<Final answer>{format_value(probability, 2)}</Final answer>")


def vanilla_answer(cohort: Cohort, index: int, rng: np.random.Generator) -> str:
    """A label-free Vanilla answer ``{"answer": p}`` for patient ``index``: the QD answer's prior over every
    feature, ``p = 0.1 + 0.7 · (out-of-range features / features) + U(−0.05, 0.05)``."""
    probability = prior_probability(len(out_of_range_features(cohort, index)) / len(cohort.features), rng)
    return json.dumps({"answer": probability})


def build_corpus(cohorts: Sequence[Cohort], answers_per_record: int, seed: int, top_k: int = 3,
                 decimals: int = 2, layout: str = "compact", vanilla_answers_per_record: int = 0) -> list[Document]:
    """Every (train patient, task) of ``cohorts`` as a QD prompt with ``answers_per_record`` label-free answers,
    and as a Vanilla prompt with ``vanilla_answers_per_record`` (the answer format Label SFT writes).

    Draws are seeded per (seed, cohort, patient id, task), so a patient's documents do not depend on the
    other patients or on the order of the cohorts.
    """
    documents: list[Document] = []
    for cohort in cohorts:
        train = cohort.subset("train")
        for index in range(len(train)):
            for task in train.tasks:
                prompt = serialize_patient(train, index, task, "qd", decimals=decimals, layout=layout)
                rng = patient_seed(seed, f"{cohort.name}/{prompt.id}/{task}")
                for _ in range(answers_per_record):
                    documents.append(Document(prompt.id, prompt.system, prompt.user,
                                              qd_answer(train, index, task, rng, top_k)))
                if vanilla_answers_per_record:
                    vanilla = serialize_patient(train, index, task, "vanilla", decimals=decimals, layout=layout)
                    for _ in range(vanilla_answers_per_record):
                        documents.append(Document(vanilla.id, vanilla.system, vanilla.user,
                                                  vanilla_answer(train, index, rng)))
    return documents
