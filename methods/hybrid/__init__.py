"""Hybrid baselines: a frozen LLM as prior or knowledge retriever, a deep-learning model predicting.

The paper's motivation for these baselines: hybrids use the LLM only as a source of representations or
knowledge, so the prediction is the DL model's, with its weaknesses (e.g. to feature-order shuffling).

``HYBRIDS`` maps a model name (``hybrid.models`` in params.yaml, ``eagrl train-hybrid DATASET MODEL``) to
its class; both are :class:`methods.experts.base.Expert` subclasses, so they train, predict, explain and
load exactly like the experts (``eagrl.registry.load_model(path)`` finds both)::

    hybrid_fusion     (a) frozen-LLM embedding of the serialized record ⊕ GRU      methods.hybrid.fusion
    hybrid_retriever  (b) LLM feature descriptions → knowledge vectors → attention  methods.hybrid.retriever

Modules: ``embedding`` (frozen-backbone text embeddings + cache), ``descriptions`` (the per-feature
knowledge texts), ``fusion``, ``retriever``, ``config`` (the ``hybrid`` params section), ``stage``
(``eagrl train-hybrid``). Nothing here loads the LLM at import time.
"""

from __future__ import annotations

from methods.experts.base import Expert
from methods.hybrid.fusion import HybridFusionExpert
from methods.hybrid.retriever import HybridRetrieverExpert

HYBRIDS: dict[str, type[Expert]] = {cls.name: cls for cls in (HybridFusionExpert, HybridRetrieverExpert)}

__all__ = ["HYBRIDS", "HybridFusionExpert", "HybridRetrieverExpert"]
