"""The LLM baselines of the paper and what they share: method registry, patient subsets, prompts.

=================  ======================  ================  =======================================
key                name in the paper       prompt style      answer (:mod:`methods.llm.formats`)
=================  ======================  ================  =======================================
``vanilla``        Vanilla                 ``vanilla``       ``{"answer": p}``
``think_answer``   Think & Answer          ``think_answer``  ``{"think": ..., "answer": p}``
``qd``             Question Decomposition  ``qd``            ``<Subquestion>``/``<Answer>`` pairs,
                                                             ``<Final subquestion>``,
                                                             ``<Important Features>``, ``<Final answer>``
``label_sft``      Label SFT               ``vanilla``       ``{"answer": 0|1}`` after LoRA SFT on labels
=================  ======================  ================  =======================================

Base policy: ``base_policy_<key>`` (``base_policy_vanilla``, ``base_policy_think_answer``,
``base_policy_qd``) is the prompting method ``<key>`` run, untrained, on the backbone the fine-tuned
methods start from (``llm.finetuned``: the testbed LM by default). It is the paper's "base model" of the
same backbone as EAG-RL, so claims C2, C4 and C5 compare EAG-RL with its own starting point; result
tables name it ``<key>`` with that backbone (:attr:`Method.reported_key`). ``llm.base_policy`` lists the
ones the pipeline runs.

Prompts: :func:`style_prompt` closes the record of :mod:`benchmark.serialize` with the instructions of a
prompting style (:func:`methods.llm.formats.answer_instructions`).

Patients: :func:`stratified_subset` draws a seeded subset that keeps the label's prevalence (or balances
it), so every method is scored on the same patients and the small CPU subset is not all-negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.config import ConfigError
from benchmark.data.cohort import Cohort
from benchmark.serialize import Prompt, serialize_patient
from methods.llm.chat import Rendered, render_all
from methods.llm.config import EvaluationConfig, PromptConfig
from methods.llm.formats import answer_instructions


@dataclass(frozen=True)
class Method:
    """One LLM baseline: its key, its name in the paper, its prompt style and answer format."""

    key: str
    name: str
    style: str
    answer_format: str
    family: str = "prompting"  # family in the result tables (benchmark/descriptor.py)
    trained: bool = False
    base_policy: bool = False  # a prompting method run on the fine-tuned methods' backbone (llm.finetuned)

    @property
    def reported_key(self) -> str:
        """The method name the result tables give: ``vanilla`` for ``base_policy_vanilla`` (its backbone tells them apart)."""
        return self.key.removeprefix(BASE_POLICY_PREFIX) if self.base_policy else self.key

    @property
    def on_finetuned_backbone(self) -> bool:
        """Whether the method runs on ``llm.finetuned``'s backbone: every trained method, and the base policy."""
        return self.trained or self.base_policy


BASE_POLICY_PREFIX = "base_policy_"


METHODS: dict[str, Method] = {
    "vanilla": Method("vanilla", "Vanilla", "vanilla", "vanilla"),
    "think_answer": Method("think_answer", "Think & Answer", "think_answer", "think_answer"),
    "qd": Method("qd", "Question Decomposition", "qd", "qd"),
    "label_sft": Method("label_sft", "Label SFT", "vanilla", "label", family="finetune", trained=True),
}
PROMPTING_METHODS = tuple(k for k, m in METHODS.items() if not m.trained)
METHODS.update({f"{BASE_POLICY_PREFIX}{key}": Method(f"{BASE_POLICY_PREFIX}{key}", METHODS[key].name, METHODS[key].style,
                                                     METHODS[key].answer_format, base_policy=True)
                for key in PROMPTING_METHODS})
BASE_POLICY_METHODS = tuple(k for k, m in METHODS.items() if m.base_policy)


def get_method(key: str | Method) -> Method:
    """The method named ``key`` (a :class:`Method` is returned as is); the error lists the known ones.

    Methods defined elsewhere (EAG-RL policies, RL baselines, ablations) pass their own :class:`Method`,
    e.g. ``Method("eag_rl", "EAG-RL", "qd", "qd", family="eag_rl", trained=True)``.
    """
    if isinstance(key, Method):
        return key
    if key not in METHODS:
        raise ConfigError(f"unknown LLM method '{key}'; choose one of {sorted(METHODS)}, or pass a "
                          f"methods.llm.prompting.Method(key, name, style, answer_format, family, trained) for a "
                          f"method defined outside the LLM layer")
    return METHODS[key]


def stratified_indices(labels: np.ndarray, n: int, seed: int, balance: bool = False) -> np.ndarray:
    """Sorted positions of a seeded subset of ``n`` patients, stratified by ``labels``.

    Each class gets its share of ``n`` (rounded, at least one patient per class when both exist);
    ``balance`` gives both classes ``n / 2`` (capped by what exists). ``n <= 0`` or ``n >= len`` keeps all.
    """
    labels = np.asarray(labels).astype(int)
    total = len(labels)
    if n <= 0 or n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if balance:
        n_pos = min(len(positives), n // 2)
    else:
        n_pos = int(round(n * len(positives) / total))
        if len(positives) and len(negatives):
            n_pos = min(max(n_pos, 1), n - 1)
    n_neg = min(len(negatives), n - n_pos)
    n_pos = min(len(positives), n - n_neg)
    chosen = np.concatenate([rng.choice(positives, n_pos, replace=False), rng.choice(negatives, n_neg, replace=False)])
    return np.sort(chosen)


def evaluation_subset(cohort: Cohort, task: str, config: EvaluationConfig) -> Cohort:
    """The patients LLM methods are evaluated on for ``task`` (``llm.evaluation``)."""
    split = cohort.subset(config.split)
    return split.select(stratified_indices(split.label(task), config.n_patients, config.seed))


def style_prompt(cohort: Cohort, index: int, task: str, style: str, *, layout: str = "full",
                 instructions: str | None = None, **kwargs) -> Prompt:
    """The prompt of patient ``index`` in prompting ``style``: :func:`benchmark.serialize.serialize_patient`
    closed by the style's answer instructions in ``layout``, or by ``instructions`` when given (e.g. with an
    expert hint). Other keyword arguments go to the serializer."""
    if instructions is None:
        instructions = answer_instructions(style, task, layout)
    return serialize_patient(cohort, index, task, instructions=instructions, layout=layout, **kwargs)


def build_prompts(cohort: Cohort, task: str, style: str, config: PromptConfig, **kwargs) -> list[Prompt]:
    """Prompts of every patient of ``cohort`` in ``style`` (:func:`style_prompt`; extra keyword arguments go
    to it)."""
    return [style_prompt(cohort, i, task, style, decimals=config.decimals, layout=config.layout, **kwargs)
            for i in range(len(cohort))]


def rendered_prompts(tokenizer, cohort: Cohort, task: str, style: str, config: PromptConfig,
                     **kwargs) -> list[Rendered]:
    """Prompts of ``cohort`` rendered for ``tokenizer`` (chat template per ``config``)."""
    return render_all(tokenizer, build_prompts(cohort, task, style, config, **kwargs), config.chat_template)
