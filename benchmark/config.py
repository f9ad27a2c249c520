"""Typed configuration: ``params.yaml`` sections turned into dataclasses with a help string per field.

Every stage reads its section of ``params.yaml`` through :func:`from_mapping`, which refuses unknown keys
and wrong types with a message that names the file, the key and the fix, instead of failing deep inside a
stage. Dataclass fields carry their documentation in ``metadata["help"]`` (see :func:`option`), which
:func:`describe` renders for ``eagrl <stage> --help`` and for the README.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


def option(default: Any = dataclasses.MISSING, help: str = "", minimum: float | None = None,  # noqa: A002
           maximum: float | None = None, **kwargs: Any) -> Any:
    """A dataclass field with a help string and optional inclusive bounds (checked by :func:`from_mapping`);
    mutable defaults are wrapped in a factory automatically."""
    metadata = {"help": help, "minimum": minimum, "maximum": maximum}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def check_bounds(field: dataclasses.Field, value: Any, where: str) -> None:
    """A number outside its field's ``minimum`` / ``maximum`` is an error naming the key, the range and the fix."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    low, high = field.metadata.get("minimum"), field.metadata.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f"between {low} and {high}" if low is not None and high is not None
                  else f">= {low}" if low is not None else f"<= {high}")
        raise ConfigError(f"{where}.{field.name}: {value!r} is out of range; it must be {bounds} "
                          f"({field.metadata.get('help', 'see params.yaml')})")


# Every top-level section of params.yaml and the profiles (``extends``: the profile overlay's base file).
SECTIONS = ("extends", "profile", "seed", "runtime", "launch", "datasets", "metrics", "experts", "testbed", "hybrid", "llm",
            "eag_rl", "robustness", "cross_domain",  # the pipeline's stages, in their order
            "report", "paper", "regress")  # the reports and tools


@dataclasses.dataclass(frozen=True, eq=False)
class Params(Mapping[str, Any]):
    """A params file parsed once: its top-level sections and ``source``, the file they came from.

    ``eagrl <stage>`` reads it once (:func:`eagrl.cli.main`) and passes it down; every section loader takes
    it. A section read from it is a deep copy, so no stage can change what the next reader sees: one parse
    behaves exactly as one parse per reader did. ``str(params)`` is ``source``, the file every
    :class:`ConfigError` names (``f"{params}: llm.threads: ..."``).
    """

    data: Mapping[str, Any]
    source: str | Path = DEFAULT_PARAMS

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self.data[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __str__(self) -> str:
        return str(self.source)


ParamsSource = Params | str | Path  # a parsed params file, or the path of one (read by load_params)


def load_params(params: ParamsSource = DEFAULT_PARAMS) -> Params:
    """The params file ``params`` as :class:`Params`: a path is read and checked (a missing or malformed
    file is reported with its path); a :class:`Params` is returned as it is, never read again."""
    if isinstance(params, Params):
        return params
    path = Path(params)
    if not path.exists():
        raise ConfigError(f"{path}: file not found (run from the repository root, or pass --params PATH)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        import difflib

        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, SECTIONS, 1))
                 else repr(key) for key in unknown]
        raise ConfigError(f"{path}: unknown top-level section(s) {', '.join(hints)}; the sections are "
                          f"{sorted(SECTIONS)} (a misspelt section would be ignored: fix or remove it)")
    return Params(data, params)


def section(params: Mapping[str, Any], dotted: str, source: str | Path = DEFAULT_PARAMS) -> Any:
    """Return ``params[a][b]`` for ``dotted='a.b'``, with an error naming the missing key."""
    node: Any = params
    walked: list[str] = []
    for key in dotted.split("."):
        walked.append(key)
        if not isinstance(node, Mapping) or key not in node:
            raise ConfigError(f"{source}: missing key '{'.'.join(walked)}' (see the comments in params.yaml)")
        node = node[key]
    return node


def select_datasets(configured: Iterable[str], wanted: Iterable[str] | None, where: str | Path = DEFAULT_PARAMS) -> list[str]:
    """The configured data sets restricted to ``wanted`` (``None`` = all of them), in configured order.

    Report functions take such a filter so that one data set's tables (e.g. ``results/tjh/``) come from the
    same code as the full tables. A wanted name that is not configured is an error naming the file and fix.
    """
    configured = list(configured)
    if wanted is None:
        return configured
    wanted = list(wanted)
    unknown = [name for name in wanted if name not in configured]
    if unknown:
        raise ConfigError(f"{where}: data set(s) {unknown} not under 'datasets' (configured: {configured}); "
                          f"add them (e.g. `eagrl configure --tjh PATH`) or drop them from the filter")
    return [name for name in configured if name in wanted]


def _accepts(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(annotation):
        return isinstance(value, dict)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def from_mapping(cls: type[T], data: dict[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types.

    ``where`` names the place the mapping came from (``"params.yaml: data.synthetic_icu"``) so that every
    error tells the user exactly what to edit. Nested dataclass fields are built recursively.
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)} "
            f"(fix the spelling or remove them)"
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key '{name}' ({field.metadata.get('help', '')})")
            continue
        value = data[name]
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
            value = from_mapping(annotation, value, f"{where}.{name}")
        elif not _accepts(annotation, value):
            raise ConfigError(
                f"{where}.{name}: expected {getattr(annotation, '__name__', annotation)}, got {value!r} "
                f"({field.metadata.get('help', 'see params.yaml')})"
            )
        if isinstance(value, int) and annotation is float:
            value = float(value)
        check_bounds(field, value, where)
        kwargs[name] = value
    return cls(**kwargs)


REPLACE = "_replace"  # in an overlay mapping: this mapping replaces the base's instead of merging into it


def merge_overlay(base, overlay, where: str = "") -> None:
    """Deep-merge ``overlay`` into ``base`` in place: mappings key by key, anything else replaces.

    The one override rule of the suite: profiles over params.yaml (``extends:``) and ``llm.finetuned``
    over the ``llm`` section. A mapping with ``_replace: true`` replaces the base's mapping whole.
    """
    for key, value in overlay.items():
        if isinstance(value, dict) and value.get(REPLACE):
            base[key] = type(value)((k, v) for k, v in value.items() if k != REPLACE)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_overlay(base[key], value, f"{where}{key}.")
        else:
            base[key] = value


def overlaid(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A new mapping: ``base`` with ``overlay`` merged over it by :func:`merge_overlay`; neither is changed."""
    merged = copy.deepcopy(dict(base))
    merge_overlay(merged, copy.deepcopy(dict(overlay)))
    return merged


def to_mapping(config: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass (for logs and metadata)."""
    return dataclasses.asdict(config)


def describe(cls: type) -> str:
    """One line per field: name, default and help string (used in ``--help`` epilogs)."""
    lines = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default = repr(field.default)
        elif field.default_factory is not dataclasses.MISSING:
            default = repr(field.default_factory())
        else:
            default = "(required)"
        lines.append(f"  {field.name} = {default}\n      {field.metadata.get('help', '')}")
    return "\n".join(lines)
