import argparse
import dataclasses

from benchmark.config import describe, option
from benchmark.stage_cli import PARAMS_HELP, add_cohorts, add_dataset, add_params, params_epilog, stage_parser


@dataclasses.dataclass(frozen=True)
class Toy:
    steps: int = option(3, "How many steps.")


def subparsers() -> argparse._SubParsersAction:
    return argparse.ArgumentParser(prog="eagrl").add_subparsers(dest="command")


def test_stage_parser_has_params_description_and_epilog():
    parser = stage_parser(subparsers(), "toy", "One toy stage.", "The toy module.\n\n  kept as written", "the epilog")
    assert parser.parse_args([]).params == "params.yaml"
    assert parser.parse_args(["--params", "p.yaml"]).params == "p.yaml"
    assert parser.description == "The toy module.\n\n  kept as written"
    assert parser.epilog == "the epilog"
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
    assert "\n  kept as written" in parser.format_help()
    params = next(a for a in parser._actions if a.dest == "params")
    assert params.help == PARAMS_HELP == "Params file (default: params.yaml)."


def test_stage_parser_sets_the_summary_and_can_leave_out_params():
    actions = subparsers()
    parser = stage_parser(actions, "toy", "One toy stage.", params=False)
    assert not hasattr(parser.parse_args([]), "params")
    assert [a.help for a in actions._choices_actions] == ["One toy stage."]
    add_params(parser, help="Other help.")
    assert next(a for a in parser._actions if a.dest == "params").help == "Other help."


def test_params_epilog_text():
    assert params_epilog("toy", Toy) == "params.yaml section 'toy':\n" + describe(Toy)
    assert params_epilog("toy.x", Toy, " (a note)") == "params.yaml section 'toy.x' (a note):\n" + describe(Toy)
    assert params_epilog("toy", "  already described") == "params.yaml section 'toy':\n  already described"


def test_dataset_and_cohorts():
    parser = stage_parser(subparsers(), "toy", "One toy stage.")
    add_dataset(parser)
    add_cohorts(parser)
    args = parser.parse_args(["tjh"])
    assert (args.dataset, args.cohorts) == ("tjh", "data/cohorts")
