"""Record texts and frozen-LLM embeddings: content, shape, determinism, cache, layer cut."""

from __future__ import annotations

import dataclasses

import numpy as np

from methods.hybrid.embedding import EmbeddingConfig, TextEmbedder, embedder_for, record_text, record_texts


def test_record_text_is_the_task_free_record(small_icu):
    text = record_text(small_icu, 0)
    assert text.startswith("The record has") and "Answer format" not in text and "Task:" not in text
    assert "You are" not in text  # no persona
    lines = [line for line in text.splitlines() if line.startswith("- ") and "(Unit:" in line]
    assert [line[2:line.index(" (Unit:")] for line in lines] == small_icu.feature_names


def test_record_text_shuffle_reorders_feature_lines(small_icu):
    plain = record_text(small_icu, 3)
    shuffled = record_text(small_icu, 3, shuffle_fraction=1.0, seed=1)
    assert shuffled != plain and sorted(shuffled.splitlines()) == sorted(plain.splitlines())


def test_embeddings_shaped_deterministic_and_batch_independent(small_icu, tiny_backbone, fresh_embedders):
    texts = record_texts(small_icu.select(np.arange(5)))
    config = EmbeddingConfig(progress=False)
    first = TextEmbedder(tiny_backbone, config).embed(texts)
    assert first.shape == (5, 32) and first.dtype == np.float32 and np.isfinite(first).all()
    assert not np.allclose(first[0], first[1])
    again = TextEmbedder(tiny_backbone, config).embed(texts[::-1])[::-1]  # fresh model, other order
    np.testing.assert_array_equal(first, again)
    alone = TextEmbedder(tiny_backbone, config).embed(texts[2:3])
    np.testing.assert_array_equal(first[2:3], alone)


def test_cache_embeds_each_text_once(small_icu, tiny_backbone, fresh_embedders):
    texts = record_texts(small_icu.select(np.arange(4)))
    embedder = embedder_for(tiny_backbone, EmbeddingConfig(progress=False))
    calls = []
    embedder.embed(texts[:1])  # loads the model
    embedder.decoder.register_forward_hook(lambda module, args, output: calls.append(1))
    embedder.embed(texts + texts)
    assert len(calls) == 3 and len(embedder.cache) == 4
    embedder.embed(texts)
    assert len(calls) == 3
    assert embedder_for(tiny_backbone, EmbeddingConfig(progress=False)) is embedder


def test_layer_cut_changes_the_representation(small_icu, tiny_backbone, fresh_embedders):
    texts = record_texts(small_icu.select(np.arange(2)))
    one = TextEmbedder(tiny_backbone, EmbeddingConfig(layers=1, progress=False))
    full = TextEmbedder(tiny_backbone, dataclasses.replace(EmbeddingConfig(progress=False), layers=0))
    vectors_one, vectors_full = one.embed(texts), full.embed(texts)
    assert one.layers_used == 1 and full.layers_used == 2
    assert not np.allclose(vectors_one, vectors_full)
