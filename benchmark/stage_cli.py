"""The command-line boilerplate every stage's ``register(subparsers)`` shares (see :mod:`eagrl.cli`).

One job: build a stage's ``eagrl <stage>`` subcommand the same way everywhere: its help line, the stage
module's docstring as description, the params.yaml section it reads as epilog, ``--params``, and the
positional data set and ``--cohorts`` that many stages take. Each stage still adds its own arguments.

``--params`` is parsed once: :func:`read_params` (called by :func:`eagrl.cli.main`) replaces the path with
the :class:`benchmark.config.Params` it names, which the handler passes down to every section loader.
"""

from __future__ import annotations

import argparse

from benchmark.config import describe, load_params
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


def add_params(parser: argparse.ArgumentParser, help: str = PARAMS_HELP, read: bool = True) -> None:
    """Add ``--params``, the params file the stage reads (default: params.yaml). With ``read`` the stage's
    handler gets it parsed (:func:`read_params`); without, as the path given (a stage that writes the file,
    reads it elsewhere, or does without it)."""
    parser.add_argument("--params", default="params.yaml", help=help)
    parser.set_defaults(read_params=read)


def read_params(args: argparse.Namespace) -> argparse.Namespace:
    """Parse ``args.params`` once, in place, where the stage asked for it (:func:`add_params`): the handler
    then gets a :class:`benchmark.config.Params`, and a missing or malformed file is reported before it runs."""
    if getattr(args, "read_params", False):
        args.params = load_params(args.params)
    return args


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
