"""The command-line boilerplate every stage's ``register(subparsers)`` shares (see :mod:`eagrl.cli`).

One job: build a stage's ``eagrl <stage>`` subcommand the same way everywhere: its help line, the stage
module's docstring as description, the params.yaml section it reads as epilog, ``--params``, and the
positional data set and ``--cohorts`` that many stages take. Each stage still adds its own arguments.
"""

from __future__ import annotations

import argparse

from benchmark.config import describe
from benchmark.paths import COHORTS

PARAMS_HELP = "Params file (default: params.yaml)."
DATASET_HELP = "Name of a data set under 'datasets' in params.yaml."
COHORTS_HELP = "Folder of the prepared cohorts."


def stage_parser(subparsers: argparse._SubParsersAction, name: str, summary: str, doc: str | None = None,
                 epilog: str | None = None, params: bool = True) -> argparse.ArgumentParser:
    """Add subcommand ``name``: ``summary`` in ``eagrl --help``, ``doc`` (the stage module's ``__doc__``) and
    ``epilog`` (e.g. :func:`params_epilog`) in ``eagrl <name> --help``, kept as written, and ``--params``
    (see :func:`add_params`) unless ``params`` is false (a stage that reads no params file, or one that adds
    ``--params`` itself, after other options)."""
    parser = subparsers.add_parser(name, help=summary, description=doc, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    if params:
        add_params(parser)
    return parser


def add_params(parser: argparse.ArgumentParser, help: str = PARAMS_HELP) -> None:
    """Add ``--params``, the params file the stage reads (default: params.yaml)."""
    parser.add_argument("--params", default="params.yaml", help=help)


def params_epilog(section: str, config: type | str, note: str = "") -> str:
    """The epilog that documents params.yaml section ``section``: "params.yaml section '<section>'<note>:"
    then one line per field of the config dataclass ``config`` (:func:`benchmark.config.describe`), or
    ``config`` itself when it is already that text (a section with its own describer)."""
    text = config if isinstance(config, str) else describe(config)
    return f"params.yaml section '{section}'{note}:\n{text}"


def add_dataset(parser: argparse.ArgumentParser, help: str = DATASET_HELP) -> None:
    """Add the positional ``dataset``: the name of a data set under 'datasets' in params.yaml."""
    parser.add_argument("dataset", help=help)


def add_cohorts(parser: argparse.ArgumentParser, help: str = COHORTS_HELP) -> None:
    """Add ``--cohorts``, the folder of the prepared cohorts (default: data/cohorts, stage ``prepare``'s output)."""

    parser.add_argument("--cohorts", default=str(COHORTS), help=help)
