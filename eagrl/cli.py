"""The ``eagrl`` command: one subcommand per pipeline stage, so that dvc.yaml is a thin list of commands.

Each stage module exposes ``register(subparsers)``; adding a stage means adding its module and the
subcommand names it registers to ``STAGE_MODULES`` (``eagrl <stage>`` imports only that module). ``eagrl <stage> --help`` documents the stage and its parameters.
The harness's stages that run methods they do not import (``TAKES_METHODS``) get them from
:data:`eagrl.registry.METHODS`: ``register(subparsers, methods)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.config import ConfigError
from benchmark.runtime import terminate_as_exit

# Modules that contribute subcommands, in the order of the pipeline, with the subcommands each registers.
# The names let ``eagrl <stage>`` import only that stage's module: every stage of `dvc repro` is its own
# process, and importing every module (torch, transformers, peft, trl, sklearn) costs ~3 s per stage.
# tests/eagrl/test_cli.py checks that these names are exactly what each module registers.
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "eagrl.ops.configure": ("configure",),
    "benchmark.prepare": ("prepare",),
    "benchmark.reports.cohorts": ("report-cohorts",),
    "benchmark.evaluate": ("evaluate",),
    "methods.experts.stage": ("train-expert",),
    "methods.experts.report": ("report-experts",),
    "methods.llm.backbone": ("build-backbone",),
    "methods.llm.testbed": ("pretrain-testbed",),
    "methods.hybrid.stage": ("train-hybrid",),
    "methods.llm.sft": ("label-sft",),
    "methods.llm.evaluation": ("llm-eval", "report-llm"),
    "methods.eag_rl.stage1": ("mcts", "sft-stage1", "eval-stage1"),
    "methods.eag_rl.rl": ("rl",),
    "benchmark.experiments.robustness": ("robustness-dl", "robustness-llm"),
    "benchmark.experiments.cross_domain": ("cross-domain",),
    "benchmark.reports.shift": ("report-robustness", "report-cross-domain"),
    "benchmark.reports.main": ("report-main",),
    "benchmark.reports.ablations": ("report-ablations",),
    "benchmark.reports.rl_training": ("report-rl-training",),
    "benchmark.reports.rl_comparison": ("report-rl-comparison",),
    "benchmark.reports.paper.verify": ("verify",),
    "benchmark.reports.summary": ("report-summary",),
    "benchmark.reports.index": ("report-index",),
    "eagrl.ops.regress": ("regress",),
    "eagrl.ops.runtime_report": ("runtime-report",),
    "eagrl.ops.tjh_tables": ("tjh-tables",),
}
# Harness modules whose stages run or read methods (benchmark.protocol.Methods), passed in here.
TAKES_METHODS = {"benchmark.reports.cohorts", "benchmark.experiments.robustness", "benchmark.experiments.cross_domain", "benchmark.reports.ablations"}


def module_of(command: str) -> str | None:
    """The module that registers ``command``, or None for an unknown name."""
    return next((module for module, commands in STAGE_MODULES.items() if command in commands), None)


def register(module_name: str, subparsers: argparse._SubParsersAction) -> None:
    """Add the subcommands of ``module_name`` (with the registry's methods where its stages need them)."""
    module = importlib.import_module(module_name)
    if module_name in TAKES_METHODS:
        # here, not at the top: any other stage imports only the method families it runs (its dvc.yaml deps)
        from eagrl.registry import METHODS

        module.register(subparsers, METHODS)
    else:
        module.register(subparsers)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every registered stage, or only ``command``'s module when it is a known stage."""
    parser = argparse.ArgumentParser(
        prog="eagrl",
        description="EAG-RL reproducibility suite: every pipeline stage as a subcommand (see dvc.yaml).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>")
    only = module_of(command) if command else None
    for module_name in [only] if only else STAGE_MODULES:
        register(module_name, subparsers)
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """The errors a user's input or settings cause (each message names the file, the field and the fix):
    reported as one line with exit status 2, never as a traceback (unless ``--debug``)."""
    from benchmark.data.cohort import CohortError
    from benchmark.descriptor import DescriptorError
    from benchmark.evaluate import PredictionsError

    return ConfigError, CohortError, DescriptorError, PredictionsError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``eagrl`` console script (``--debug`` anywhere: show the traceback of an error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    given = list(argv)  # as given (--debug included): what a relaunch under accelerate passes on
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    terminate_as_exit()
    try:
        from benchmark.launch import relaunch
        from benchmark.stage_cli import read_params

        read_params(args)  # --params parsed once; the stage gets the object (benchmark.config.Params)
        launched = relaunch(args.command, getattr(args, "params", "params.yaml"), given)  # launch.processes > 1
        if launched is not None:
            return launched
        args.handler(args)
    except expected_errors() as error:
        if debug:
            raise
        message = " ".join(str(error).split())  # one line, whatever the message's own line breaks
        print(f"eagrl {args.command}: error: {message} (rerun with --debug for the traceback)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
