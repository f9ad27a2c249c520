"""The composite reward of EAG-RL, shared by stage 1 (MCTS trajectory scoring) and stage 2 (RL).

For a parsed answer with probability ŷ and important-feature set C, a patient with label y and the
expert's top-k features C_exp:

* classification: ``R_cls = log(y·ŷ + (1−y)·(1−ŷ)) + Δ``, ``Δ = β·|ŷ − 0.5|`` when ŷ is on the correct
  side of 0.5 (``ŷ > 0.5`` for y = 1, ``ŷ < 0.5`` for y = 0), else 0. ŷ is clipped to ``[ε, 1 − ε]`` so the
  log is bounded by ``log ε``.
* attention alignment: ``R_att = |C ∩ C_exp| / |C ∪ C_exp|`` (Jaccard / IoU). Each listed item is matched
  to the cohort's vocabulary ignoring case, spaces and punctuation; an item that is not a feature name
  but mentions some as whole words ("the most important are Urea and D-D dimer") counts as those
  features; an item that names no feature stays in C as itself, so hallucinated features enlarge the
  union and lower the reward. An empty C scores 0.

Two weightings are selectable (``weighting``):

* ``paper`` — ``R = λ·R_cls + (1 − λ)·R_att`` with λ = 0.6 (paper, Eq. for the composite reward).
* ``released`` — the authors' released code: ``R = 1.0·log-likelihood + 0.5·margin + 0.1·IoU`` where
  margin is ``|ŷ − 0.5|`` on the correct side (the β of Δ is then the margin weight).

**Unparsable output** (no probability could be read) gets the worst reward a parsable answer can get:
a maximally confident wrong answer with no feature overlap — ``λ·log ε`` (paper) or ``log ε``
(released). The policy therefore never gains by emitting garbage instead of a wrong answer.

**Components.** Every reward is ``w_out·outcome + w_att·R_att`` (:func:`component_weights`): the outcome part
is ``R_cls`` (paper) or ``loglik + margin·w`` (released), ``log ε`` for an unparsable answer; stage 2
can normalise the two parts within each group before weighting them (``eag_rl.rl.train.advantage_aggregation``).

``use_attention = False`` drops R_att (the "w/o R_att" ablation and the outcome-only GRPO/DAPO
baselines): the reward is then ``R_cls`` alone (paper) or ``log-likelihood + margin`` (released).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from benchmark.config import option
from methods.llm.parsing import feature_key


@dataclass
class RewardConfig:
    """Settings of the composite reward (params.yaml section ``eag_rl.reward``)."""

    weighting: Literal["paper", "released"] = option(
        "paper", help="'paper': λ·R_cls + (1−λ)·R_att; 'released': 1.0·loglik + 0.5·margin + 0.1·IoU (authors' code).")
    lam: float = option(0.6, help="λ of the paper weighting (share of the classification reward).")
    beta: float = option(0.5, help="β of the correct-side margin bonus Δ = β·|ŷ − 0.5| (paper weighting).")
    released_loglik: float = option(1.0, help="Weight of the log-likelihood term (released weighting).")
    released_margin: float = option(0.5, help="Weight of the margin term (released weighting).")
    released_iou: float = option(0.1, help="Weight of the IoU term (released weighting).")
    epsilon: float = option(1e-4, help="ŷ is clipped to [ε, 1−ε] so log-likelihoods are bounded by log ε.")
    use_attention: bool = option(True, help="False drops R_att (w/o R_att ablation; outcome-only RL baselines).")


@dataclass(frozen=True)
class RewardParts:
    """The reward of one answer and its parts (logged in training curves)."""

    total: float
    outcome: float
    loglik: float
    margin: float
    attention: float
    parsed: bool


def mentioned_features(text: str, vocabulary: Sequence[str]) -> list[str]:
    """The vocabulary's feature names that ``text`` mentions as whole words (case and spacing ignored)."""
    found = []
    for name in vocabulary:
        words = [re.escape(word) for word in name.lower().split()]
        if words and re.search(r"(?<![a-z0-9])" + r"\s+".join(words) + r"(?![a-z0-9])", text.lower()):
            found.append(name)
    return found


def canonical_features(names: Iterable[str], vocabulary: Sequence[str]) -> set[str]:
    """Map LLM-written feature names onto the cohort's names (exact name first, then the names an item
    mentions); items naming no feature are kept, normalised, so they count against the overlap."""
    lookup = {feature_key(v): v for v in vocabulary}
    out = set()
    for name in names:
        key = feature_key(name)
        if not key:
            continue
        if key in lookup:
            out.add(lookup[key])
            continue
        mentioned = mentioned_features(name, vocabulary)
        out.update(mentioned or [f"?{key}"])
    return out


def attention_alignment(predicted: Iterable[str], expert_top_k: Iterable[str], vocabulary: Sequence[str]) -> float:
    """R_att: Jaccard overlap of the LLM's important features with the expert's top-k (0 when C is empty)."""
    c = canonical_features(predicted, vocabulary)
    e = canonical_features(expert_top_k, vocabulary)
    if not c:
        return 0.0
    return len(c & e) / len(c | e)


def classification_terms(probability: float, label: int, epsilon: float) -> tuple[float, float]:
    """(log-likelihood of the label under clipped ŷ, |ŷ − 0.5| if ŷ is on the correct side else 0)."""
    p = min(max(float(probability), epsilon), 1.0 - epsilon)
    loglik = math.log(p if label == 1 else 1.0 - p)
    correct_side = (p > 0.5) if label == 1 else (p < 0.5)
    return loglik, abs(p - 0.5) if correct_side else 0.0


def unparsable_reward(config: RewardConfig) -> float:
    """The documented penalty: the worst reward a parsable answer can get under ``config``."""
    worst = math.log(config.epsilon)
    if config.weighting == "paper":
        return config.lam * worst if config.use_attention else worst
    return config.released_loglik * worst


def component_weights(config: RewardConfig) -> tuple[float, float]:
    """(w_out, w_att) with ``total = w_out·outcome + w_att·R_att`` for every answer under ``config``."""
    if config.weighting == "paper":
        return (config.lam, 1.0 - config.lam) if config.use_attention else (1.0, 0.0)
    return config.released_loglik, (config.released_iou if config.use_attention else 0.0)


def composite_reward(probability: float | None, features: Iterable[str] | None, label: int,
                     expert_top_k: Iterable[str], vocabulary: Sequence[str], config: RewardConfig) -> RewardParts:
    """R for one answer; ``probability=None`` means the answer could not be parsed."""
    if probability is None or not math.isfinite(probability):
        worst = math.log(config.epsilon)  # the outcome part of a maximally confident wrong answer
        return RewardParts(unparsable_reward(config), worst, worst, 0.0, 0.0, False)
    loglik, margin = classification_terms(probability, label, config.epsilon)
    # R_att is measured for every answer (logged for outcome-only variants too) and rewarded only with use_attention.
    attention = attention_alignment(features or [], expert_top_k, vocabulary)
    if config.weighting == "paper":
        outcome = loglik + config.beta * margin
    else:
        outcome = loglik + config.released_margin / config.released_loglik * margin
    w_out, w_att = component_weights(config)
    return RewardParts(w_out * outcome + w_att * attention, outcome, loglik, margin, attention, True)
