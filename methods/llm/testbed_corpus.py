"""The testbed LM's pretraining text: every train record in the QD prompt, with a label-free QD answer.

The testbed LM (:mod:`methods.llm.testbed`) is a small causal LM that the pipeline trains itself, so that
EAG-RL can run hundreds of real RL steps on a 2-core CPU. It has to learn two things before any
method touches it: to read the record serialization of :mod:`benchmark.serialize`, and to write a
well-formed Question-Decomposition answer. It must *not* learn the outcome: every LLM method
(Label SFT, stage 1, the RL variants) starts from it, and a base model that already knew the label
would hide what those methods add. So each answer here is built from the record alone, in the QD format of
:mod:`methods.llm.formats`::

    <Subquestion>Far from typical at the last visit?</Subquestion>
    <Answer>Heart Rate ++, pH -</Answer>                          <- read off the record (true)
    <Final subquestion>What is the probability that ...?</Final subquestion>
    <Important Features>Glucose, Heart Rate, pH</Important Features>  <- min_k to top_k names, at random
    <Final answer>0.37</Final answer>                             <- rises with how deranged the named features are

The prompt is :func:`methods.llm.prompting.style_prompt` in the given layout (the testbed uses
'compact'); the answer is short because every generated token costs RL time on a CPU.

* The sub-answer is a true statement about the values: the model learns to look at them. The compact
  layout marks each value with its distance from the train mean in whole train standard deviations
  (``+``/``++``/``+++`` above, ``-``/``--``/``---`` below, :func:`benchmark.serialize.deviation_level`), as a
  lab report grades its flags: without marks the testbed LM did not learn to compare decimals (measured).
* The important features are a uniformly random subset of the cohort's features (``min_k`` to ``top_k`` of
  them; the testbed names ``top_k``, the size of the expert's list) in random order, drawn per answer: the
  base policy names real features, never instruction text, no feature is favoured by its place in the record,
  and sampled completions of one patient name different sets, so the attention reward R_att varies within a
  GRPO group from the first step. Which features matter is left for expert guidance
  (stage 1) and R_att (stage 2) to teach.
* The probability encodes one clinical prior and nothing else: it rises with how far the *named* features
  are from typical at the last visit, ``p = 0.1 + 0.8 · min(1, mean |level| / 2) + U(−0.05, 0.05)``
  (:func:`prior_probability`). A pretrained LLM brings such a prior (deranged values mean risk); the testbed
  gets it from its corpus. It makes the prediction depend on which features are named, the premise of
  EAG-RL: on synthetic_icu mortality this prior over the expert's (ConCare's) top-3 ranks the test patients
  at AUROC 0.76, over 3 random features at 0.62 (mean of 20 draws), over all features at 0.72 (measured on
  the cohort, outside the LM). Naming the features that drive the patient's risk therefore gives a better
  prediction; whether R_att gets the policy there better than the outcome reward alone is what the RL
  comparison measures. (A binary out-of-range prior, the design before, ranked them at 0.56-0.59 whatever
  was named: the reference ranges do not match the generator's physiology, and nothing could be learned.)

A Vanilla document (``vanilla_answers_per_record``) is the record in the Vanilla prompt with the same
prior over all features as ``{"answer": 0.37}``: the answer format Label SFT's target is written in. Without
it, the tokens of ``"answer"`` never occur in the corpus, and a LoRA adapter on the attention could not
learn to write them (Label SFT was 100 % unparsable on synthetic_icu at 31ba28b).

Nothing here reads a label, the true risk or the salient set (a test checks that answers do not change
when labels do). Only the train split is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.data.cohort import Cohort
from benchmark.serialize import deviation_level, format_value, patient_seed
from methods.llm.formats import (
    ANSWER_TAG,
    SUBQUESTION_TAG,
    feature_items,
    final_question,
    json_answer,
    marked_feature,
    qd_final_step,
    tag,
)
from methods.llm.prompting import style_prompt

SUBQUESTION = "Far from typical at the last visit?"
PRIOR_FULL_LEVEL = 2  # a mean deviation level of 2 among the named features gives the top of the prior


@dataclass(frozen=True)
class Document:
    """One pretraining example: the QD prompt's persona and user text, and the assistant's answer."""

    id: str
    system: str
    user: str
    answer: str


def last_visit_levels(cohort: Cohort, index: int) -> list[int]:
    """Per feature, the signed deviation level (:func:`benchmark.serialize.deviation_level`) of its last
    observed value, 0 when never observed: what the compact layout's marks say about the last visit."""
    n_visits = int(cohort.n_visits[index])
    levels = []
    for j in range(len(cohort.features)):
        observed = cohort.raw[index, :n_visits, j]
        observed = observed[np.isfinite(observed)]
        levels.append(deviation_level(float(observed[-1]), cohort.normalisation.mean[j], cohort.normalisation.std[j])
                      if observed.size else 0)
    return levels


def deviating_at_last_visit(cohort: Cohort, index: int, limit: int = 3) -> list[str]:
    """``"<name> ++"`` / ``"<name> -"`` for the first ``limit`` features whose last observed value lies at least one
    train standard deviation from the train mean, in the cohort's feature order: the true sub-answer."""
    return deviating_items(cohort.feature_names, last_visit_levels(cohort, index), limit)


def deviating_items(names: Sequence[str], levels: Sequence[int], limit: int) -> list[str]:
    """``"<name> <marks>"`` for the first ``limit`` features with a nonzero level (see :func:`deviating_at_last_visit`)."""
    return [marked_feature(name, level) for name, level in zip(names, levels, strict=True) if level][:limit]


def prior_probability(mean_level: float, rng: np.random.Generator) -> float:
    """The corpus's one clinical prior: ``0.1 + 0.8 · min(1, mean_level / 2) + U(−0.05, 0.05)``, clipped to
    [0.05, 0.95], 2 decimals; ``mean_level`` is the mean absolute deviation level of the features considered."""
    share = min(1.0, mean_level / PRIOR_FULL_LEVEL)
    return round(min(max(0.1 + 0.8 * share + float(rng.uniform(-0.05, 0.05)), 0.05), 0.95), 2)


def qd_answer(cohort: Cohort, index: int, task: str, rng: np.random.Generator, top_k: int = 3,
              deviating_share: float = 0.0, min_k: int = 1) -> str:
    """A label-free QD answer for patient ``index`` (see the module docstring); ``rng`` draws whether its important
    features are the deviating ones (with probability ``deviating_share``, when there are any) or a random set,
    their order and its probability."""
    levels = last_visit_levels(cohort, index)
    names = cohort.feature_names
    deviating = deviating_items(names, levels, top_k)
    if deviating_share > 0 and rng.uniform() < deviating_share and deviating:  # no draw at 0: the stream stays as before
        chosen = [j for j, level in enumerate(levels) if level][:top_k]
    else:
        k = int(rng.integers(min(min_k, top_k, len(names)), min(top_k, len(names)) + 1))
        chosen = [int(j) for j in rng.choice(len(names), size=k, replace=False)]
    probability = prior_probability(float(np.mean([abs(levels[j]) for j in chosen])), rng)
    return (f"{tag(SUBQUESTION_TAG, SUBQUESTION)}\n{tag(ANSWER_TAG, feature_items(deviating))}\n"
            + qd_final_step(final_question(task), [names[j] for j in chosen], format_value(probability, 2)))


def vanilla_answer(cohort: Cohort, index: int, rng: np.random.Generator) -> str:
    """A label-free Vanilla answer ``{"answer": p}`` for patient ``index``: the QD answer's prior over every
    feature (:func:`prior_probability` of the mean absolute deviation level of all features)."""
    probability = prior_probability(float(np.mean(np.abs(last_visit_levels(cohort, index)))), rng)
    return json_answer(probability)


def build_corpus(cohorts: Sequence[Cohort], answers_per_record: int, seed: int, top_k: int = 3,
                 decimals: int = 2, layout: str = "compact", vanilla_answers_per_record: int = 0,
                 deviating_share: float = 0.0, min_k: int = 1) -> list[Document]:
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
                prompt = style_prompt(train, index, task, "qd", decimals=decimals, layout=layout)
                rng = patient_seed(seed, f"{cohort.name}/{prompt.id}/{task}")
                for _ in range(answers_per_record):
                    documents.append(Document(prompt.id, prompt.system, prompt.user,
                                              qd_answer(train, index, task, rng, top_k, deviating_share, min_k)))
                if vanilla_answers_per_record:
                    vanilla = style_prompt(train, index, task, "vanilla", decimals=decimals, layout=layout)
                    for _ in range(vanilla_answers_per_record):
                        documents.append(Document(vanilla.id, vanilla.system, vanilla.user,
                                                  vanilla_answer(train, index, rng)))
    return documents
