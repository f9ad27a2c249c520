"""The ``eagrl`` command: one subcommand per pipeline stage, so that dvc.yaml is a thin list of commands.

Each stage module exposes ``register(subparsers)``; adding a stage means adding its module to
``STAGE_MODULES``. ``eagrl <stage> --help`` documents the stage and its parameters.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.config import ConfigError

# Modules that contribute subcommands, in the order of the pipeline.
STAGE_MODULES = [
    "benchmark.configure",
    "benchmark.prepare",
    "benchmark.report",
    "benchmark.evaluate",
    "methods.experts.stage",
    "methods.experts.report",
    "methods.llm.backbone",
    "methods.hybrid.stage",
    "methods.llm.sft",
    "methods.llm.evaluation",
    "methods.eag_rl.stage1",
    "methods.eag_rl.rl",
    "benchmark.robustness",
    "benchmark.cross_domain",
    "benchmark.shift_report",
    "benchmark.main_table",
    "benchmark.ablations",
    "benchmark.paper.verify",
    "benchmark.results_index",
    "benchmark.regress",
    "benchmark.runtime_report",
    "benchmark.tjh_tables",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered stage."""
    parser = argparse.ArgumentParser(
        prog="eagrl",
        description="EAG-RL reproducibility suite: every pipeline stage as a subcommand (see dvc.yaml).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>")
    for module_name in STAGE_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``eagrl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        args.handler(args)
    except ConfigError as error:
        print(f"eagrl {args.command}: configuration error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
