"""``eagrl configure``: the one documented switch that adds real data sets or selects a profile.

It edits ``params.yaml`` in place with a round-trip YAML parser, so comments and order survive and
``git diff params.yaml`` shows exactly what changed; DVC then re-runs only the stages whose params moved.

* ``--tjh PATH`` adds the public TJH cohort (``datasets.tjh``) reading the workbook at PATH.
* ``--mimic-iv DIR`` adds MIMIC-IV (``datasets.mimic_iv``) reading the hosp/icu tables under DIR (or the
  parquet of the paper group's preprocessor).
* ``--profile FILE`` applies a profile first. A complete profile replaces params.yaml. An *overlay* profile
  (every profile in ``profiles/``) names its base with a top-level ``extends: params.yaml`` and holds only
  the keys it changes: mappings merge key by key, any other value (a list, a
  number) replaces the base's; a mapping holding ``_replace: true`` replaces the base's mapping whole (to
  drop keys, e.g. RL variants). The base's comments stay, so every key keeps its explanation.

With TJH configured, ``cross_domain.pairs`` gains ``synthetic_icu`` → ``tjh`` (when synthetic_icu is a data
set); with MIMIC-IV and TJH both configured it gains the paper's ``mimic_iv`` → ``tjh`` and
``eag_rl.rl.pairs`` gains ``{mimic_iv, mortality}`` (the RL variants must be trained on a pair's source to be
evaluated on its target). Entries already there are kept; nothing is removed.
"""

from __future__ import annotations

import argparse
import copy
import shutil
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from benchmark.config import ConfigError, merge_overlay
from benchmark.stage_cli import add_params, stage_parser

TJH_ENTRY = {"source": "tjh"}
MIMIC_ENTRY = {"source": "mimic_iv"}
CROSS_DOMAIN_TASK = "mortality"  # the only task every domain has


def _represent_null(representer, _value):
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _flow(entry: dict[str, str]) -> CommentedMap:
    """A one-line YAML mapping ``{a: b, ...}`` (the style of the lists it joins)."""
    node = CommentedMap(entry)
    node.fa.set_flow_style()
    return node


def _append_once(items, entry: dict[str, str]) -> None:
    if not any(dict(item) == entry for item in items):
        items.append(_flow(entry))


def add_cross_domain_pairs(data) -> None:
    """Add the cross-domain pairs the configured data sets allow (see the module docstring)."""
    datasets = data["datasets"]
    if "tjh" not in datasets:
        return
    section = data.setdefault("cross_domain", CommentedMap())
    pairs = section.setdefault("pairs", [])
    if "synthetic_icu" in datasets:
        _append_once(pairs, {"source": "synthetic_icu", "target": "tjh", "task": CROSS_DOMAIN_TASK})
    if "mimic_iv" in datasets:
        _append_once(pairs, {"source": "mimic_iv", "target": "tjh", "task": CROSS_DOMAIN_TASK})
        rl = data.setdefault("eag_rl", CommentedMap()).setdefault("rl", CommentedMap())
        _append_once(rl.setdefault("pairs", []), {"dataset": "mimic_iv", "task": CROSS_DOMAIN_TASK})


def _last_leaf(mapping) -> tuple[CommentedMap, object] | None:
    """(mapping, key) of the last scalar entry of ``mapping``, descending into nested block mappings."""
    while isinstance(mapping, CommentedMap) and mapping:
        key = list(mapping)[-1]
        if not isinstance(mapping[key], CommentedMap):
            return mapping, key
        mapping = mapping[key]
    return None


def _move_section_comment(parent: CommentedMap, new_key: str) -> None:
    """Keep the comment block that introduces the next top-level section above that section.

    ruamel attaches the lines after a mapping's last entry (a blank line and ``# How predictions are scored``) to
    that entry, so an entry appended after it would land under the next section's comment. The block moves from
    the previous last entry to the appended one; the previous entry keeps its own end-of-line comment.
    """
    keys = list(parent)
    if len(keys) < 2:
        return
    before, after = _last_leaf(parent[keys[-2]]), _last_leaf(parent[new_key])
    if before is None or after is None:
        return
    mapping, key = before
    slots = mapping.ca.items.get(key)
    token = slots[2] if slots and len(slots) > 2 else None
    if token is None or "\n" not in token.value.rstrip("\n"):
        return
    own, rest = token.value.split("\n", 1)
    token.value = own + "\n"
    target, target_key = after
    moved = copy.copy(token)
    moved.value = "\n" + rest
    target.ca.items[target_key] = [None, None, moved, None]


def configure(params_path: str | Path = "params.yaml", tjh: str | None = None, mimic_iv: str | None = None,
              profile: str | None = None) -> None:
    """Apply the requested switches to ``params_path``."""
    params_path = Path(params_path)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the style of params.yaml, so the diff shows only what changed
    yaml.width = 4096  # do not re-wrap long flow mappings
    yaml.representer.add_representer(type(None), _represent_null)  # `key: null` stays `key: null`, not `key:`
    if profile:
        apply_profile(profile, params_path, yaml)
    if tjh is None and mimic_iv is None:
        return
    data = yaml.load(params_path.read_text())
    if not isinstance(data.get("datasets"), dict):
        raise ConfigError(f"{params_path}: no 'datasets' mapping to add TJH / MIMIC-IV to; restore it from git")
    datasets = data["datasets"]
    for flag, key, entry, value in (("--tjh", "tjh", TJH_ENTRY, tjh), ("--mimic-iv", "mimic_iv", MIMIC_ENTRY, mimic_iv)):
        if value is None:
            continue
        if not Path(value).exists():
            raise ConfigError(f"{flag} {value}: path not found")
        if key == "mimic_iv":  # fail now, not inside `dvc repro`: hosp/ + icu/ tables present, or a .parquet
            from benchmark.data.mimic_iv import check_input

            check_input(value)
        if key == "tjh":  # likewise: a corrupt workbook, missing columns or bad outcomes are reported now
            from benchmark.data.tjh import read_workbook

            read_workbook(value, where=f"{flag} {value}")
        existing = datasets.get(key)
        if isinstance(existing, CommentedMap):  # update in place: its comments (and the section comment) stay
            existing["path"] = str(Path(value).resolve())
            continue
        current = CommentedMap(existing or entry)
        current["path"] = str(Path(value).resolve())
        datasets[key] = current
        _move_section_comment(datasets, key)
    add_cross_domain_pairs(data)
    with params_path.open("w") as handle:
        yaml.dump(data, handle)


def apply_profile(profile: str | Path, params_path: Path, yaml: YAML | None = None) -> None:
    """Write the profile's parameters to ``params_path`` (complete file, or overlay on its ``extends`` base)."""
    profile = Path(profile)
    if not profile.exists():
        raise ConfigError(f"{profile}: profile file not found (see profiles/ and docs/profiles.md)")
    yaml = yaml or YAML()
    overlay = yaml.load(profile.read_text()) or {}
    base_name = overlay.pop("extends", None) if isinstance(overlay, dict) else None
    if base_name is None:
        shutil.copyfile(profile, params_path)
        return
    base_path = Path(base_name) if Path(base_name).is_absolute() else params_path.parent / base_name
    if not base_path.exists():
        raise ConfigError(f"{profile}: field 'extends' names {base_name}, which does not exist next to "
                          f"{params_path}; name the base params file relative to it (usually params.yaml)")
    base = yaml.load(base_path.read_text())
    merge_overlay(base, overlay)
    with params_path.open("w") as handle:
        yaml.dump(base, handle)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = stage_parser(subparsers, "configure", "Add TJH / MIMIC-IV or select a profile (edits params.yaml).", __doc__,
                          params=False)
    add_params(parser, read=False)  # the file this stage writes
    parser.add_argument("--tjh", help="Path to time_series_375_prerpocess_en.xlsx.")
    parser.add_argument("--mimic-iv", help="Folder of MIMIC-IV (hosp/ and icu/) or the preprocessor's parquet.")
    parser.add_argument("--profile", help="A profile file to copy over params.yaml first.")
    parser.set_defaults(handler=lambda args: configure(args.params, args.tjh, args.mimic_iv, args.profile))
