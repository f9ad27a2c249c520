"""benchmark/launch.py: the launch section, the accelerate command, and what a non-main rank may write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.config import ConfigError
from benchmark.launch import LaunchConfig, is_main_process, launch_command, load_launch_config, relaunch
from benchmark.runtime import atomic_directory, start_stage

REPO = Path(__file__).resolve().parents[2]
PROFILES = sorted((REPO / "profiles" / "accelerate").glob("*.yaml"))


@pytest.fixture
def single(monkeypatch):
    """A plain process: no launcher variables (whatever the test runner's environment holds)."""
    for name in ("LOCAL_RANK", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def rank1(monkeypatch):
    """Rank 1 of 2 as accelerate's launcher starts it, before any trainer set up accelerate's state."""
    from accelerate import PartialState

    monkeypatch.setattr(PartialState, "_shared_state", {})
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")


def write_params(path: Path, launch: dict | None) -> Path:
    path.write_text(yaml.safe_dump({"launch": launch} if launch is not None else {}))
    return path


def test_defaults_are_one_process(tmp_path):
    config = load_launch_config(write_params(tmp_path / "params.yaml", None))
    assert config == LaunchConfig() and config.processes == 1


def test_unknown_stage_and_missing_accelerate_config_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="launch.stages has \\['mcts'\\]"):
        load_launch_config(write_params(tmp_path / "p.yaml", {"stages": ["mcts"]}))
    with pytest.raises(ConfigError, match="is not a file"):
        load_launch_config(write_params(tmp_path / "p.yaml", {"processes": 2, "accelerate_config": "nope.yaml"}))
    with pytest.raises(ConfigError, match="out of range"):
        load_launch_config(write_params(tmp_path / "p.yaml", {"processes": 0}))


def test_launch_command_reexecutes_the_stage_through_accelerate():
    cmd = launch_command(LaunchConfig(processes=4, accelerate_config="profiles/accelerate/fsdp.yaml"),
                         ["rl", "synthetic_icu", "mortality", "eag_rl"], port=29611)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == "profiles/accelerate/fsdp.yaml"
    assert cmd[cmd.index("--num_processes") + 1] == "4" and cmd[cmd.index("--main_process_port") + 1] == "29611"
    assert cmd[-6:] == ["-m", "eagrl", "rl", "synthetic_icu", "mortality", "eag_rl"]


def test_relaunch_only_training_stages_with_processes_above_one(tmp_path, monkeypatch, single):
    calls = []

    class FakePopen:
        def __init__(self, cmd, start_new_session):
            assert start_new_session  # its own group: an interrupted stage stops every rank
            calls.append(cmd)
            self.pid = -1

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    one = write_params(tmp_path / "one.yaml", {"processes": 1})
    two = write_params(tmp_path / "two.yaml", {"processes": 2, "accelerate_config": str(PROFILES[0]),
                                               "stages": ["rl"]})
    assert relaunch("rl", one, ["rl", "d", "t", "v"]) is None  # one process: the stage runs here
    assert relaunch("label-sft", two, ["label-sft", "d"]) is None  # not among launch.stages
    assert relaunch("evaluate", two, ["evaluate"]) is None  # not a training stage
    assert relaunch("rl", two, ["rl", "d", "t", "v", "--params", str(two)]) == 0
    assert len(calls) == 1 and calls[0][-7:-2] == ["eagrl", "rl", "d", "t", "v"]


def test_a_launched_process_never_launches_again(tmp_path, rank1):
    two = write_params(tmp_path / "two.yaml", {"processes": 2, "accelerate_config": str(PROFILES[0])})
    assert relaunch("rl", two, ["rl"]) is None


def test_main_process_is_rank_zero(single, monkeypatch):
    assert is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert is_main_process()


def test_a_non_main_rank_writes_neither_outputs_nor_stage_logs(tmp_path, rank1):
    assert not is_main_process()
    with atomic_directory(tmp_path / "out") as folder:
        (folder / "adapter.bin").write_text("rank 1")
        assert not folder.is_relative_to(tmp_path)
    start_stage("label_sft@x", 1, {}, log_dir=tmp_path / "logs")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_accelerate_profiles_are_valid_accelerate_configs(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.num_machines == 1 and config.distributed_type.value in {"MULTI_GPU", "FSDP", "DEEPSPEED"}
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert all("#" in line or line.rstrip().endswith(":") for line in lines), "every value carries a comment"


def test_an_interrupted_stage_stops_the_launched_group(tmp_path):
    """SIGTERM to the stage (DVC's cancel) reaches every process of the launched group."""
    from benchmark.launch import run_process_group

    child = tmp_path / "child.py"
    child.write_text("import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    pid_file = tmp_path / "pid"
    script = (f"import signal, subprocess, sys\n"
              f"from benchmark.launch import run_process_group\n"
              f"def stop(*a): raise SystemExit(143)\n"
              f"signal.signal(signal.SIGTERM, stop)\n"
              f"run_process_group([sys.executable, {str(child)!r}, {str(pid_file)!r}], grace_s=5)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], env={"PYTHONPATH": str(REPO)})
    import os
    import signal
    import time

    for _ in range(100):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    grandchild = int(pid_file.read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 143
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)
    assert run_process_group([sys.executable, "-c", "raise SystemExit(3)"]) == 3
