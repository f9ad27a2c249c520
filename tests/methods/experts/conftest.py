"""Tiny expert configs for the tests: a few epochs, hidden sizes of 8, no progress bars."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from methods.experts.config import ExpertsConfig

MODELS = ["logistic", "gru", "transformer", "retain", "adacare", "concare"]
NEURAL = MODELS[1:]

TINY = {
    "gru": {"hidden": 8},
    "transformer": {"hidden": 8, "heads": 2, "layers": 1, "feedforward": 16},
    "retain": {"embedding": 8, "hidden": 8},
    "adacare": {"hidden": 8, "conv_channels": 4},
    "concare": {"hidden": 8, "heads": 2, "feedforward": 8, "time_hidden": 4},
}


def tiny_config(model: str, epochs: int = 2, seed: int = 0, **train):
    """A small, fast config of ``model`` (a LogisticConfig for the floor)."""
    defaults = ExpertsConfig()
    config = getattr(defaults, model)
    if model == "logistic":
        return config
    train_config = dataclasses.replace(config.train, epochs=epochs, seed=seed, progress=False, batch_size=64, **train)
    return dataclasses.replace(config, **TINY[model], train=train_config)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread, as the train_expert stages use (tiny models: more threads only add contention)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def icu_splits(small_icu):
    """(train, val, test) of the small ICU cohort."""
    return small_icu.subset("train"), small_icu.subset("val"), small_icu.subset("test")
