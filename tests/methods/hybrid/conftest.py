"""Hybrid tests run on the LLM layer's tiny random model (never the 135M backbone) and tiny DL sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from methods.hybrid.config import load_hybrid_config
from methods.hybrid.embedding import clear_embedders
from methods.llm.backbone import build_backbone
from methods.llm.config import BackboneConfig
from tests.methods.llm.conftest import tiny_model_dir, workdir  # noqa: F401

TINY = {"hybrid_fusion": {"hidden": 8, "projection": 4}, "hybrid_retriever": {"hidden": 8}}


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory, tiny_model_dir) -> BackboneConfig:  # noqa: F811
    """llm.backbone for the tiny model: a built folder (manifest only) pointing at it, float32 on the CPU."""
    config = BackboneConfig(source=str(tiny_model_dir), dir=str(tmp_path_factory.mktemp("hybrid") / "backbone"),
                            dtype="float32", device="cpu")
    build_backbone(config)
    return config


def tiny_params(backbone: BackboneConfig, epochs: int = 2) -> dict:
    """A params mapping with the tiny backbone, few epochs and small models."""
    return {
        "llm": {"backbone": dataclasses.asdict(backbone)},
        "experts": {"top_k": 2, "train": {"epochs": epochs, "batch_size": 64, "progress": False, "seed": 0}},
        "hybrid": {"embedding": {"progress": False}, "descriptions": {"max_new_tokens": 6}, **TINY},
    }


def tiny_config(model: str, backbone: BackboneConfig, epochs: int = 2):
    """The config object of hybrid ``model`` built through load_hybrid_config from :func:`tiny_params`."""
    return load_hybrid_config(tiny_params(backbone, epochs), "test params").model(model)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread, as the train_hybrid stages use."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def fresh_embedders():
    """No embedder (nor cached vector) from an earlier test, and none left behind."""
    clear_embedders()
    yield
    clear_embedders()
