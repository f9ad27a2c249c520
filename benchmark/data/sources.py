"""The registry of cohort sources: a ``source`` name in params.yaml → its config class and builder.

A builder takes the typed config, the data set's name and a ``where`` string for error messages, and
returns a :class:`~benchmark.data.cohort.Cohort`. Adding a source means one module under
``benchmark/data`` and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmark.config import ConfigError, from_mapping
from benchmark.data.cohort import Cohort


@dataclass(frozen=True)
class Source:
    """A cohort source: the dataclass of its settings and the function that builds the cohort."""

    config_class: type
    build: Callable[[Any, str, str], Cohort]


def _synthetic() -> Source:
    from benchmark.data.synthetic import SyntheticConfig, generate

    return Source(SyntheticConfig, lambda config, name, where: generate(config, name, where))


def _tjh() -> Source:
    from benchmark.data.tjh import TJHConfig, build_tjh

    return Source(TJHConfig, build_tjh)


def _mimic_iv() -> Source:
    from benchmark.data.mimic_iv import MimicIVConfig, build_mimic_iv

    return Source(MimicIVConfig, build_mimic_iv)


SOURCES: dict[str, Callable[[], Source]] = {"synthetic": _synthetic, "tjh": _tjh, "mimic_iv": _mimic_iv}


def build_cohort(name: str, settings: dict[str, Any], where: str) -> tuple[Cohort, Any]:
    """Build data set ``name`` from its params entry; returns the cohort and the typed config."""
    if not isinstance(settings, dict) or "source" not in settings:
        raise ConfigError(f"{where}: each data set needs a 'source' (one of {sorted(SOURCES)})")
    source_name = settings["source"]
    if source_name not in SOURCES:
        raise ConfigError(f"{where}.source: unknown source '{source_name}'; choose one of {sorted(SOURCES)}")
    source = SOURCES[source_name]()
    config = from_mapping(source.config_class, settings, where)
    return source.build(config, name, where), config
