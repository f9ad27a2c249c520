"""The frozen LLM as a knowledge retriever: one short description per feature and task, generated once.

For every dynamic feature of the cohort the backbone answers, greedily and briefly, the question of
``hybrid.descriptions.prompt``; the default is::

    Explain briefly what {feature} ({unit}, reference range {reference_range}) indicates about the risk
    that {outcome}.

with ``{outcome}`` the task's outcome phrase of :mod:`benchmark.serialize` (e.g. "the patient dies before
leaving the hospital"). The question is the user message and the data set's persona the system message
of the tokenizer's chat template (:func:`methods.llm.chat.render`); generation is greedy with
``max_new_tokens`` (:class:`methods.llm.generation.HFGenerator`), so the texts are a function of the
backbone, the prompt and the features.

What is embedded is :func:`knowledge_text`: the feature's name, unit and reference range followed by the
generated description, so that every feature's knowledge vector identifies the feature even when the
small default backbone writes little of substance.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.config import ConfigError, option
from benchmark.data.cohort import Cohort, FeatureSpec
from benchmark.serialize import Prompt, outcome_of, persona_for
from methods.llm.config import BackboneConfig

DEFAULT_PROMPT = ("Explain briefly what {feature} ({unit}, reference range {reference_range}) indicates about the "
                  "risk that {outcome}.")


@dataclass
class DescriptionConfig:
    """How the per-feature knowledge texts are generated (``hybrid.descriptions`` in params.yaml)."""

    prompt: str = option(DEFAULT_PROMPT, help="Question asked once per feature and task; placeholders {feature}, {unit}, {reference_range}, {kind}, {outcome}.")
    max_new_tokens: int = option(48, minimum=1, help="Greedy tokens per description (a sentence or two).")
    batch_size: int = option(16, minimum=1, help="Questions per generate call (one call per task covers 8 features).")
    chat_template: bool = option(True, help="Wrap the question (and the persona) in the tokenizer's chat template.")


def question(spec: FeatureSpec, task: str, template: str = DEFAULT_PROMPT) -> str:
    """The question about feature ``spec`` for ``task``; an unknown placeholder names the field to fix."""
    try:
        return template.format(feature=spec.name, unit=spec.unit, reference_range=spec.reference_range,
                               kind=spec.kind, outcome=outcome_of(task))
    except (KeyError, IndexError) as error:
        raise ConfigError(f"hybrid.descriptions.prompt: unknown placeholder {error}; use {{feature}}, {{unit}}, "
                          f"{{reference_range}}, {{kind}} or {{outcome}}") from error


def knowledge_text(spec: FeatureSpec, description: str) -> str:
    """What is embedded for one feature: name, unit and reference range, then the LLM's description."""
    return f"{spec.name} (Unit: {spec.unit}. Reference range: {spec.reference_range}.): {description.strip()}"


def generate_descriptions(cohort: Cohort, task: str, backbone: BackboneConfig, config: DescriptionConfig,
                          generator=None) -> list[str]:
    """One generated description per dynamic feature of ``cohort`` (feature order), for ``task``.

    ``generator`` is any object with the :class:`~methods.llm.generation.HFGenerator` interface (tests
    pass one on a tiny model); by default the backbone is loaded for this call and released after it.
    """
    from methods.llm.chat import render
    from methods.llm.generation import HFGenerator, SamplingParams

    if generator is None:
        from methods.llm.backbone import load_backbone

        model, tokenizer = load_backbone(backbone)
        generator = HFGenerator(model, tokenizer, config.batch_size, progress=False)
    persona = persona_for(cohort.domain)
    prompts = [render(generator.tokenizer, Prompt(spec.name, persona, question(spec, task, config.prompt), {}),
                      config.chat_template).text for spec in cohort.features]
    completions = generator.generate(prompts, SamplingParams(max_new_tokens=config.max_new_tokens),
                                     desc=f"descriptions/{task}")
    return [c.text.strip() for c in completions]
