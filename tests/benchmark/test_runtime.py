"""benchmark/runtime.py: outputs appear whole or not at all, and no interrupted run leaves folders behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from benchmark.runtime import atomic_directory, remove_leftovers


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_directory_replaces_the_output_in_one_rename(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_directory(out) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (out / "new.txt").exists()  # nothing visible before the block ends
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert _hidden(tmp_path) == []


def test_a_failed_block_keeps_the_previous_output(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert (out / "old.txt").read_text() == "old" and _hidden(tmp_path) == []


def test_the_next_run_removes_what_a_killed_run_left(tmp_path):
    out = tmp_path / "concare"
    (tmp_path / ".concare.x1y2").mkdir()  # what SIGKILL leaves
    (tmp_path / ".concare.x1y2" / "metrics.json").write_text("{}")
    (tmp_path / ".other.abc").mkdir()       # another output's: not ours to remove
    with atomic_directory(out) as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert _hidden(tmp_path) == [".other.abc"]
    assert remove_leftovers(tmp_path / "missing" / "x") == []


def test_sigterm_cleans_up_like_an_exception(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from benchmark.runtime import atomic_directory, terminate_as_exit
        terminate_as_exit()
        with atomic_directory(Path({str(tmp_path / "out")!r})) as tmp:
            (tmp / "partial").write_text("x")
            print("ready", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    assert len(_hidden(tmp_path)) == 1  # the temporary folder exists while the block runs
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert _hidden(tmp_path) == [] and not (tmp_path / "out").exists()


def _threads_and_draw(seed: int) -> tuple[int, list[float]]:
    """A job for map_in_processes: the worker's torch thread count and a seeded draw (module level: picklable)."""
    import torch

    torch.manual_seed(seed)
    return torch.get_num_threads(), torch.randn(3).tolist()


def test_map_in_processes_runs_each_job_in_a_worker_with_its_thread_count():
    import torch

    from benchmark.runtime import map_in_processes

    results = map_in_processes(_threads_and_draw, {43: (43,), 42: (42,), 44: (44,)}, processes=2, threads=1)
    assert list(results) == [43, 42, 44]  # the order of the jobs
    for seed, (threads, draw) in results.items():
        assert threads == 1
        torch.manual_seed(seed)
        assert draw == torch.randn(3).tolist()  # as in this process: a worker's numbers depend on its seed only


def test_make_deterministic_sets_the_kernel_flag_without_importing_inductor():
    code = ("import sys, torch; from benchmark.runtime import make_deterministic; make_deterministic(1); "
            "print(torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(), 'torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "1", "False"]
