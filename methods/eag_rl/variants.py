"""One stage-2 variant's run settings from ``eag_rl.rl``: its resolved config, seeds, reward and guiding expert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.config import ConfigError, from_mapping, overlaid, to_mapping
from methods.eag_rl.config import SECTION, RLConfig, RLSection
from methods.eag_rl.rewards import RewardConfig


def resolve_variant(section: RLSection, variant: str, source: str | Path = "params.yaml") -> RLConfig:
    """The shared settings with ``variant``'s overrides applied by the suite's one override rule
    (:func:`benchmark.config.merge_overlay`: ``reward`` overrides merge key-wise, other keys replace)."""
    if variant not in section.variants:
        raise ConfigError(f"{source}: unknown RL variant '{variant}'; {SECTION}.rl.variants defines "
                          f"{sorted(section.variants)}")
    merged = overlaid(to_mapping(section.train), section.variants[variant] or {})
    return from_mapping(RLConfig, merged, f"{source}: {SECTION}.rl.variants.{variant}")


def variant_seeds(section: RLSection, config: RLConfig, source: str | Path = "params.yaml") -> list[int]:
    """The training seeds of a variant: the first ``n_seeds`` of ``eag_rl.rl.seeds`` (all when 0)."""
    if not section.seeds or len(set(section.seeds)) != len(section.seeds):
        raise ConfigError(f"{source}: {SECTION}.rl.seeds must be a non-empty list of distinct integers, got {section.seeds}")
    if config.n_seeds < 0 or config.n_seeds > len(section.seeds):
        raise ConfigError(f"{source}: n_seeds = {config.n_seeds} but {SECTION}.rl.seeds has {len(section.seeds)} seeds")
    return list(section.seeds[:config.n_seeds or len(section.seeds)])


def reward_config(params: dict[str, Any], config: RLConfig, source: str | Path = "params.yaml") -> RewardConfig:
    """The shared ``eag_rl.reward`` settings (stage 1's) with the variant's ``reward`` overrides."""
    base = (params.get(SECTION) or {}).get("reward") or {}
    if not isinstance(base, dict):
        raise ConfigError(f"{source}: '{SECTION}.reward' must be a mapping")
    return from_mapping(RewardConfig, overlaid(base, config.reward), f"{source}: {SECTION}.reward (+ variant overrides)")


def guiding_expert(params: dict[str, Any], config: RLConfig) -> str:
    """The variant's ``expert``, else stage 1's (``eag_rl.search.expert``), else ConCare."""
    if config.expert:
        return config.expert
    return str(((params.get(SECTION) or {}).get("search") or {}).get("expert") or "concare")
