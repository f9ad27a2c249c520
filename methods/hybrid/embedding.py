"""Frozen-LLM text embeddings: what the hybrid baselines take from the backbone.

How a text becomes a vector
---------------------------
The backbone (``llm.backbone``, loaded with :func:`methods.llm.backbone.load_backbone`) reads the plain
text (no chat template: nothing is generated), and the embedding is the **mean over the text's tokens of
the decoder's last hidden state** (padding excluded), in float32. ``embedding.layers`` keeps only the
first N decoder layers (the final RMSNorm is still applied): intermediate layers of decoder LMs are at
least as good sentence representations as the last one, and on a CPU the cost is proportional to N
(measured on the 2-core box, SmolLM2-135M in bf16 on 1 thread, ~360-token records: 0.37 s per record
with all 30 layers, 0.12 s with 10; 800 records then take ~100 s instead of ~5 min).

Texts are embedded one per forward pass by default (``embedding.batch_size: 1``): on the CPU that was as
fast as batches of 8-32 (no padding), and it makes a text's vector independent of which other texts share
its batch, so the same patient gets bit-identical vectors in any cohort (train, test, a perturbed copy).
Larger batches (GPU) are sorted by length to limit padding.

Cache
-----
:func:`embedder_for` keeps one :class:`TextEmbedder` per (backbone, layers, dtype, device) in the process,
and every embedder keeps the vectors it computed keyed by the SHA-256 of the text. A stage that embeds
train, validation and test once per task therefore runs the LLM once per distinct text; the LLM itself
is loaded on the first call that needs it (never at import).

Records
-------
:func:`record_text` is the patient's record as every prompt states it (:mod:`benchmark.serialize`):
visit times, sex, age and one line per feature with unit, reference range and values — without the
persona, the task sentence and the answer instructions, so one embedding serves every task of a data set.
Its keyword arguments go to the serializer (``shuffle_fraction``/``seed`` reorder the feature lines, so a
robustness shuffle reaches the LLM view too).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from benchmark.config import option
from benchmark.data.cohort import Cohort
from benchmark.runtime import LOGGER
from benchmark.serialize import INSTRUCTIONS_HEADING, serialize_patient
from methods.llm.config import BackboneConfig

RECORD_START = "The record has"  # first words of the record part of a serialized prompt
RECORD_END = "\n" + INSTRUCTIONS_HEADING  # what follows the record part


@dataclass
class EmbeddingConfig:
    """How the frozen backbone embeds texts (``hybrid.embedding`` in params.yaml)."""

    layers: int = option(6, minimum=0, help="Decoder layers run (the first N; 0 or more than the model has = all). The embedding is the mean-pooled hidden state after them; cost is proportional to N.")
    batch_size: int = option(1, minimum=1, help="Texts per forward pass. 1 is as fast on a CPU and makes each vector independent of its batch; raise it on a GPU.")
    max_tokens: int = option(1024, minimum=1, help="Texts are truncated to this many tokens (records are ~300-400).")
    decimals: int = option(2, minimum=0, help="Decimals of values and visit times in record texts (as llm.prompt.decimals).")
    progress: bool = option(True, help="Show a tqdm bar while embedding.")


def text_key(text: str) -> str:
    """The cache key of a text: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_text(cohort: Cohort, index: int, decimals: int = 2, **serialize: Any) -> str:
    """The record part of patient ``index``'s prompt (see the module docstring).

    Keyword arguments go to :func:`benchmark.serialize.serialize_patient` (e.g. ``shuffle_fraction``).
    """
    task = cohort.tasks[0] if cohort.tasks else "mortality"  # the task sentence is cut off below
    user = serialize_patient(cohort, index, task, instructions="", decimals=decimals, **serialize).user
    start, end = user.find(RECORD_START), user.find(RECORD_END)
    if start < 0 or end < start:
        raise ValueError(f"patient {cohort.ids[index]}: the serialized prompt no longer has the layout "
                         f"'{RECORD_START} ...{RECORD_END!r}' that record_text cuts; update RECORD_START/RECORD_END")
    return user[start:end]


def record_texts(cohort: Cohort, decimals: int = 2, **serialize: Any) -> list[str]:
    """:func:`record_text` of every patient of ``cohort``."""
    return [record_text(cohort, i, decimals, **serialize) for i in range(len(cohort))]


class TextEmbedder:
    """Mean-pooled hidden states of a frozen backbone, with a per-text cache (module docstring)."""

    def __init__(self, backbone: BackboneConfig, config: EmbeddingConfig, model=None, tokenizer=None) -> None:
        self.backbone = backbone
        self.config = config
        self.model, self.tokenizer = model, tokenizer
        self.cache: dict[str, np.ndarray] = {}
        self.dim: int | None = None
        self.layers_used: int | None = None
        if model is not None:
            self._prepare()

    def _load(self) -> None:
        from methods.llm.backbone import load_backbone

        self.model, self.tokenizer = load_backbone(self.backbone)
        self._prepare()

    def _prepare(self) -> None:
        """Keep the decoder only, cut to ``config.layers`` layers; frozen, eval mode."""
        from torch import nn

        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else self.model
        layers = getattr(decoder, "layers", None)
        if isinstance(layers, nn.ModuleList) and 0 < self.config.layers < len(layers):
            decoder.layers = nn.ModuleList(list(layers)[: self.config.layers])
        self.layers_used = len(decoder.layers) if isinstance(getattr(decoder, "layers", None), nn.ModuleList) else None
        for parameter in decoder.parameters():
            parameter.requires_grad_(False)
        self.decoder = decoder.eval()
        self.dim = int(self.model.config.hidden_size)
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def embed(self, texts: Sequence[str], desc: str = "embed") -> np.ndarray:
        """(len(texts), hidden) float32 embeddings; texts already in the cache are not recomputed."""
        keys = [text_key(t) for t in texts]
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self.cache and key not in todo:
                todo[key] = text
        if todo:
            self._compute(todo, desc)
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.stack([self.cache[k] for k in keys]).astype(np.float32)

    def _compute(self, todo: dict[str, str], desc: str) -> None:
        import torch

        if self.model is None:
            self._load()
        device = next(self.decoder.parameters()).device
        lengths = {k: len(self.tokenizer(t, add_special_tokens=False).input_ids) for k, t in todo.items()}
        order = sorted(todo, key=lambda k: (-lengths[k], k))  # deterministic, little padding
        size = max(1, self.config.batch_size)
        started = time.perf_counter()
        bar = tqdm(total=len(order), desc=desc, unit="text", disable=not self.config.progress, leave=False)
        with torch.inference_mode():
            for start in range(0, len(order), size):
                batch = order[start:start + size]
                encoded = self.tokenizer([todo[k] for k in batch], return_tensors="pt", padding=True, truncation=True,
                                         max_length=self.config.max_tokens, add_special_tokens=False).to(device)
                hidden = self.decoder(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                                      use_cache=False).last_hidden_state.float()
                mask = encoded["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                for key, vector in zip(batch, pooled.cpu().numpy(), strict=True):
                    self.cache[key] = vector.astype(np.float32)
                bar.update(len(batch))
        bar.close()
        LOGGER.info("%s: embedded %d texts (%d tokens on average) with %s decoder layers in %.1f s", desc, len(order),
                    int(np.mean(list(lengths.values()))), self.layers_used, time.perf_counter() - started)


_EMBEDDERS: dict[tuple, TextEmbedder] = {}


def embedder_for(backbone: BackboneConfig, config: EmbeddingConfig) -> TextEmbedder:
    """The process-wide :class:`TextEmbedder` of this backbone and layer count (its cache is shared)."""
    key = (backbone.source, backbone.dir, backbone.dtype, backbone.device, config.layers, config.max_tokens)
    embedder = _EMBEDDERS.get(key)
    if embedder is None:
        embedder = _EMBEDDERS[key] = TextEmbedder(backbone, config)
    embedder.config = config  # batch size / progress may differ between callers; vectors do not
    return embedder


def clear_embedders() -> None:
    """Forget every loaded embedder and its cache (tests; frees the backbone's memory)."""
    _EMBEDDERS.clear()
