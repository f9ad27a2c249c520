"""Runtime report: per-stage wall time and peak memory parsed from a (fake, tiny) dvc-like run."""

from __future__ import annotations

import json
import sys
import textwrap

from eagrl.ops.runtime_report import measure, runtime_report
from tests.conftest import REPO

# Prints DVC's stage lines; the 'big' stage runs a child process holding ~80 MB for a moment.
FAKE = textwrap.dedent("""
    import subprocess, sys, time
    print("Stage 'prepare@a' didn't change, skipping", flush=True)
    print("Running stage 'small':", flush=True)
    time.sleep(0.3)
    print("Running stage 'big':", flush=True)
    subprocess.run([sys.executable, "-c", "import time; b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.0)"])
    print("Use `dvc push` to send your updates to remote storage.", flush=True)
""")


def test_measure_splits_time_and_memory_by_stage(tmp_path):
    script = tmp_path / "fake_dvc.py"
    script.write_text(FAKE)
    run = measure([sys.executable, str(script)], tmp_path, interval=0.05, echo=False)
    assert run.returncode == 0
    assert [(s.stage, s.status) for s in run.stages] == [("prepare@a", "skipped"), ("small", "ran"), ("big", "ran")]
    small, big = run.stages[1], run.stages[2]
    assert 0.25 <= small.wall_s < 2.0
    assert big.wall_s >= 0.9
    assert big.peak_rss_mb >= 75 > small.peak_rss_mb
    assert run.peak_rss_mb >= big.peak_rss_mb
    assert run.wall_s >= small.wall_s + big.wall_s


def test_report_files(tmp_path):
    script = tmp_path / "fake_dvc.py"
    script.write_text(FAKE)
    noop = tmp_path / "noop.py"
    noop.write_text("print(\"Stage 'small' didn't change, skipping\")\n")
    path = runtime_report(f"{sys.executable} {script}", f"{sys.executable} {noop}", tmp_path / "results",
                          interval=0.05, goal_minutes=30, goal_gb=6, cwd=tmp_path, echo=False)
    text = path.read_text()
    assert "| big " in text and "| skipped " in text
    assert "goal ≤ 30 min: met" in text and "goal ≤ 6 GB: met" in text
    assert "nothing changed" in text and "0 stage(s) re-ran" in text
    data = json.loads((tmp_path / "results/runtime.json").read_text())
    assert [s["stage"] for s in data["run"]["stages"]] == ["prepare@a", "small", "big"]
    assert data["noop"]["stages"][0]["status"] == "skipped"


def test_persisted_outputs_are_removed_before_the_forced_run(tmp_path):
    """A resumable output (persist: true) would make the forced run cheaper than a clean clone's: it goes first."""
    import yaml
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "search": {"cmd": "true", "outs": [{"outputs/search": {"persist": True}}, "outputs/summary.json"]}}}))
    (tmp_path / "outputs" / "search").mkdir(parents=True)
    (tmp_path / "outputs" / "search" / "chunk-0.json").write_text("{}")
    (tmp_path / "outputs" / "summary.json").write_text("{}")
    script = tmp_path / "fake_dvc.py"
    script.write_text(FAKE)
    path = runtime_report(f"{sys.executable} {script}", None, tmp_path / "results", interval=0.05, cwd=tmp_path,
                          echo=False)
    assert not (tmp_path / "outputs" / "search").exists() and (tmp_path / "outputs" / "summary.json").exists()
    assert "Removed first, as a clean clone lacks them: `outputs/search`" in path.read_text()
    (tmp_path / "outputs" / "search").mkdir()
    path = runtime_report(f"{sys.executable} {script}", None, tmp_path / "results", interval=0.05, cwd=tmp_path,
                          echo=False, keep_persisted=True)
    assert (tmp_path / "outputs" / "search").exists() and "Removed first" not in path.read_text()


def test_a_stage_logs_its_wall_time_and_peak_memory_at_exit(tmp_path):
    import json
    import subprocess
    import sys

    script = ("from benchmark.runtime import start_stage\n"
              f"start_stage('demo@x', 1, {{'a': 1}}, threads=1, log_dir={str(tmp_path)!r})\n"
              "import time; time.sleep(0.2)\n")
    subprocess.run([sys.executable, "-c", script], check=True)
    record = json.loads((tmp_path / "demo_x.json").read_text())
    assert record["stage"] == "demo@x" and record["config"] == {"a": 1}
    assert record["wall_s"] >= 0.2 and record["peak_rss_mb"] > 10 and "finished" in record


def test_from_logs_tabulates_recorded_stages(tmp_path, monkeypatch):
    import json

    from eagrl.ops import runtime_report

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "prepare_a.json").write_text(json.dumps({"stage": "prepare@a", "finished": "2026-01-01T00:00:00",
                                                     "wall_s": 90.0, "peak_rss_mb": 2048.0, "load_average_1m": 1.5}))
    monkeypatch.setattr(runtime_report, "stage_names", lambda: ["prepare@a", "report_x"])
    monkeypatch.setattr(runtime_report, "stage_commands", lambda: {"prepare@a": "eagrl prepare a",
                                                                   "report_x": "eagrl report-x"})
    path = runtime_report.from_logs(logs, tmp_path / "results", goal_minutes=2.0, goal_gb=6.0, noop_seconds=2.5)
    text = path.read_text()
    assert "**1.5 min**" in text and "not judged: 1 stage(s) not recorded" in text and "**2.5 s**" in text
    data = json.loads((tmp_path / "results" / "runtime.json").read_text())
    assert data["total_s"] == 90.0 and data["peak_rss_mb"] == 2048.0
    # a goal the recorded stages alone exceed is missed, whatever the unrecorded ones take
    text = runtime_report.from_logs(logs, tmp_path / "results", goal_minutes=1.0, goal_gb=6.0).read_text()
    assert "NOT met: the recorded stages alone exceed it (1 more stage(s) not recorded)" in text


def test_from_logs_matches_stages_to_logs_by_their_command(tmp_path, monkeypatch):
    """DVC names a matrix stage by position (rl@pair0-eag_rl), its process logs under its arguments: the command joins them."""
    import json

    from eagrl.ops import runtime_report

    logs = tmp_path / "logs"
    logs.mkdir()
    done = {"finished": "2026-01-01T00:00:00", "peak_rss_mb": 100.0, "load_average_1m": 1.0}
    # an older log without argv: matched through its file name
    (logs / "rl_synthetic_icu-mortality-eag_rl.json").write_text(json.dumps(
        {"stage": "rl@synthetic_icu-mortality-eag_rl", "wall_s": 60.0, **done}))
    # a log that records its argv: matched through it, whatever its file is called
    (logs / "whatever.json").write_text(json.dumps(
        {"stage": "robustness_llm@x", "argv": ["robustness-llm", "synthetic_icu", "mortality", "qd"], "wall_s": 30.0, **done}))
    (logs / "unfinished.json").write_text(json.dumps({"stage": "mcts@synthetic_icu", "argv": ["mcts", "synthetic_icu"]}))
    commands = {"rl@pair0-eag_rl": "eagrl rl synthetic_icu mortality eag_rl",
                "robustness_llm@pair0-qd": "eagrl robustness-llm synthetic_icu mortality qd",
                "mcts@synthetic_icu": "eagrl mcts synthetic_icu"}
    monkeypatch.setattr(runtime_report, "stage_names", lambda: list(commands))
    monkeypatch.setattr(runtime_report, "stage_commands", lambda: commands)
    runtime_report.from_logs(logs, tmp_path / "results", goal_minutes=30.0)
    rows = {r["stage"]: r for r in json.loads((tmp_path / "results" / "runtime.json").read_text())["stages"]}
    assert rows["rl@pair0-eag_rl"]["wall (s)"] == 60.0
    assert rows["robustness_llm@pair0-qd"]["wall (s)"] == 30.0
    assert rows["mcts@synthetic_icu"]["finished"] == "not recorded"


def test_stage_logs_record_their_arguments(tmp_path):
    import json
    import subprocess
    import sys

    script = ("import sys; sys.argv = ['eagrl', 'mcts', 'synthetic_icu']\n"
              "from benchmark.runtime import start_stage\n"
              f"start_stage('mcts@synthetic_icu', 1, {{}}, threads=1, log_dir={str(tmp_path)!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True)
    assert json.loads((tmp_path / "mcts_synthetic_icu.json").read_text())["argv"] == ["mcts", "synthetic_icu"]


def test_the_exit_record_stays_in_the_stage_folder_after_a_chdir(tmp_path):
    """A stage that changes directory (as tests do) must still finish its own log, not one under the new cwd."""
    import json
    import subprocess
    import sys

    stage, elsewhere = tmp_path / "stage", tmp_path / "elsewhere"
    stage.mkdir(), elsewhere.mkdir()
    script = ("import os\nfrom benchmark.runtime import start_stage\n"
              f"os.chdir({str(stage)!r}); start_stage('x@y', 1, {{}}, threads=1); os.chdir({str(elsewhere)!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO)
    assert "wall_s" in json.loads((stage / "logs" / "x_y.json").read_text())
    assert not (elsewhere / "logs").exists()
