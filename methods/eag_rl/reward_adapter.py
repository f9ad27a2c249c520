"""The composite reward as TRL reward functions: QD completions in, their composite rewards out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from methods.eag_rl.config import RLConfig
from methods.eag_rl.rewards import RewardConfig, component_weights, composite_reward
from methods.llm.parsing import parse_answer


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or the content of the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


class CompositeReward:
    """TRL reward function: :func:`methods.eag_rl.rewards.composite_reward` of each QD completion.

    Reads the dataset columns ``label`` (0/1) and ``expert_top_k`` (the expert's top-k feature names).
    Each completion is parsed with ``parse_answer(text, "qd")`` *without* a vocabulary, so the raw
    ``<Important Features>`` names reach the reward, which maps them to the cohort's names and counts
    hallucinated ones against the IoU. The parts (log-likelihood, margin, IoU, parse rate) are logged
    through TRL's ``log_metric`` hook as ``reward_parts/*``.

    ``part`` selects what the function returns: ``"total"`` (the composite reward) or one of its two
    components, ``"outcome"`` and ``"attention"`` (:func:`~methods.eag_rl.rewards.component_weights`), for
    TRL's ``normalize_then_sum`` aggregation; ``log_parts = False`` leaves the logging to a sibling function.
    """

    PARTS = ("total", "outcome", "attention")

    def __init__(self, config: RewardConfig, vocabulary: Sequence[str], name: str = "composite",
                 part: str = "total", log_parts: bool = True):
        if part not in self.PARTS:
            raise ValueError(f"CompositeReward part must be one of {self.PARTS}, got '{part}'")
        self.config = config
        self.vocabulary = list(vocabulary)
        self.part = part
        self.log_parts = log_parts
        self.__name__ = name  # TRL names the reward's metrics after it
        self.last_parts: list = []  # RewardParts of the last call (the trainer's per-trajectory R_att)

    def score(self, texts: Sequence[str], labels: Sequence[int], expert_top_k: Sequence[Sequence[str]]):
        """The :class:`~methods.eag_rl.rewards.RewardParts` of each completion."""
        parts = []
        for text, label, top_k in zip(texts, labels, expert_top_k, strict=True):
            parsed = parse_answer(text, "qd")
            probability = parsed.probability if parsed.parsed else None
            parts.append(composite_reward(probability, parsed.features, int(label), list(top_k),
                                          self.vocabulary, self.config))
        return parts

    def __call__(self, prompts, completions, label, expert_top_k, log_metric=None, **kwargs) -> list[float]:
        parts = self.score([completion_text(c) for c in completions], label, expert_top_k)
        self.last_parts = parts
        if self.log_parts and log_metric is not None and parts:
            n = len(parts)
            log_metric("reward_parts/total", sum(p.total for p in parts) / n)
            log_metric("reward_parts/loglik", sum(p.loglik for p in parts) / n)
            log_metric("reward_parts/margin", sum(p.margin for p in parts) / n)
            log_metric("reward_parts/attention", sum(p.attention for p in parts) / n)
            log_metric("reward_parts/parsed", sum(p.parsed for p in parts) / n)
        return [getattr(p, self.part) for p in parts]


def reward_functions(rewards: RewardConfig, config: RLConfig, vocabulary: Sequence[str]):
    """(TRL reward functions, their weights): the composite reward as one function, or under
    ``normalize_then_sum`` with R_att rewarded its outcome and attention parts as two (weights w_out, w_att)."""
    if config.advantage_aggregation == "normalize_then_sum" and rewards.use_attention:
        return ([CompositeReward(rewards, vocabulary, name="outcome", part="outcome"),
                 CompositeReward(rewards, vocabulary, name="attention", part="attention", log_parts=False)],
                list(component_weights(rewards)))
    return [CompositeReward(rewards, vocabulary, name="composite")], [1.0]
