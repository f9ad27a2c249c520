import subprocess
import sys

import pytest
import yaml
from ruamel.yaml import YAML

from eagrl.cli import build_parser, main
from eagrl.ops.configure import configure
from tests.conftest import REPO


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_stage_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_stage_modules_name_exactly_the_subcommands_they_register():
    import argparse

    from eagrl.cli import STAGE_MODULES, module_of, register

    for module, names in STAGE_MODULES.items():
        subparsers = argparse.ArgumentParser().add_subparsers()
        register(module, subparsers)
        assert tuple(subparsers.choices) == names, module
        assert all(module_of(name) == module for name in names)
    assert module_of("no-such-stage") is None


def test_a_stage_imports_only_its_own_module():
    code = ("import sys; from eagrl.cli import build_parser; parser = build_parser('train-expert'); "
            "action = next(a for a in parser._actions if a.dest == 'command'); "
            "print(sorted(action.choices), 'peft' in sys.modules, 'trl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["['train-expert']", "False", "False"]


def test_an_unknown_stage_is_refused_with_the_full_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-stage"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "train-expert" in err and "rl" in err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "eagrl", "--help"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and "prepare" in out.stdout


def test_configure_adds_tjh_and_keeps_comments(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    from tests.benchmark.data.test_tjh import write_tiny_workbook

    workbook = write_tiny_workbook(tmp_path / "tjh.xlsx")
    configure(params, tjh=str(workbook))
    data = YAML().load(params.read_text())
    assert data["datasets"]["tjh"]["source"] == "tjh"
    assert data["datasets"]["tjh"]["path"] == str(workbook.resolve())
    assert "# global seed" in params.read_text()
    assert "synthetic_icu" in data["datasets"]
    pairs = [dict(p) for p in data["cross_domain"]["pairs"]]
    assert pairs == [{"source": "synthetic_icu", "target": "synthetic_ward", "task": "mortality"},
                     {"source": "synthetic_icu", "target": "tjh", "task": "mortality"}]
    configure(params, tjh=str(workbook))  # idempotent
    assert len(YAML().load(params.read_text())["cross_domain"]["pairs"]) == 2
    # the comment that introduces `metrics:` stays right above it, not above the appended tjh entry (issue 20 item 11)
    lines = params.read_text().splitlines()
    comment = next(i for i, line in enumerate(lines) if line.startswith("# How predictions are scored"))
    assert lines[comment + 1] == "metrics:"
    assert lines.index("  tjh:") < comment
    assert "seed: 43            # a different seed from icu" in params.read_text()


def test_configure_with_mimic_and_tjh_adds_the_papers_pair(tmp_path):
    from eagrl.ops.configure import add_cross_domain_pairs

    data = YAML().load((REPO / "params.yaml").read_text())
    data["datasets"]["tjh"] = {"source": "tjh"}
    data["datasets"]["mimic_iv"] = {"source": "mimic_iv"}
    add_cross_domain_pairs(data)
    pairs = [dict(p) for p in data["cross_domain"]["pairs"]]
    assert {"source": "mimic_iv", "target": "tjh", "task": "mortality"} in pairs
    assert {"dataset": "mimic_iv", "task": "mortality"} in [dict(p) for p in data["eag_rl"]["rl"]["pairs"]]


def test_configure_rejects_missing_path(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    assert main(["configure", "--params", str(params), "--tjh", str(tmp_path / "absent.xlsx")]) == 2
    assert "path not found" in capsys.readouterr().err


def test_configure_rejects_a_corrupt_workbook_now_not_at_repro(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    workbook = tmp_path / "tjh.xlsx"
    workbook.write_bytes(b"not a workbook")
    assert main(["configure", "--params", str(params), "--tjh", str(workbook)]) == 2
    err = capsys.readouterr().err
    assert f"--tjh {workbook}.path: cannot read '{workbook}' as an Excel workbook" in err
    assert "tjh" not in YAML().load(params.read_text())["datasets"]  # params.yaml untouched


def test_prepare_unknown_dataset_is_named(tmp_path, capsys):
    assert main(["prepare", "nope", "--params", str(REPO / "params.yaml"), "--out", str(tmp_path)]) == 2
    assert "data set 'nope'" in capsys.readouterr().err


def test_overlay_profile_merges_onto_its_base_and_keeps_comments(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("profile: default  # name\nllm:\n  evaluation:\n    n_patients: 40  # subset\n    seed: 42\n"
                      "variants:\n  a: {x: 1}\n  b: {x: 2}\n")
    profile = tmp_path / "ci.yaml"
    profile.write_text("extends: params.yaml\nprofile: ci\nllm: {evaluation: {n_patients: 8}}\n"
                       "variants: {_replace: true, b: {x: 3}}\n")
    configure(params, profile=str(profile))
    text = params.read_text()
    data = yaml.safe_load(text)
    assert data["profile"] == "ci" and data["llm"]["evaluation"] == {"n_patients": 8, "seed": 42}
    assert data["variants"] == {"b": {"x": 3}} and "extends" not in data
    assert "# subset" in text  # the base's comments survive


def test_overlay_profile_with_a_missing_base_names_the_field(tmp_path):
    from benchmark.config import ConfigError

    profile = tmp_path / "ci.yaml"
    profile.write_text("extends: nowhere.yaml\nprofile: ci\n")
    (tmp_path / "params.yaml").write_text("profile: default\ndatasets: {}\n")
    with pytest.raises(ConfigError, match="field 'extends'"):
        configure(tmp_path / "params.yaml", profile=str(profile))


def test_an_expected_error_is_one_line_with_status_2_and_debug_shows_the_traceback(tmp_path, capsys):
    from benchmark.config import ConfigError
    from eagrl.cli import main

    missing = tmp_path / "absent.yaml"
    assert main(["verify", "--params", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eagrl verify: error: ") and f"{missing}: file not found" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(ConfigError, match="file not found"):
        main(["verify", "--params", str(missing), "--debug"])
