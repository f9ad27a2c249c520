"""``eagrl runtime-report``: time a full ``dvc repro`` per stage (wall time, peak memory) → ``results/runtime.md``.

How it measures
---------------
The command (``dvc repro --force`` by default: every stage runs, as on a clean clone) is started once;
its output is read line by line and each ``Running stage '<name>':`` line opens a new stage (the previous
one ends there; ``Stage '<name>' didn't change, skipping`` is recorded as skipped). Meanwhile the process
tree is sampled every ``--interval`` seconds with psutil: a stage's **peak RSS** is the largest sum of the
resident memory of dvc's descendants (the stage command and its children) seen while the stage ran, and
the run's peak includes dvc itself. Sampling can miss a peak shorter than the interval (0.2 s by default),
which is negligible for stages that run for seconds to minutes. Stage wall times include DVC's own
per-stage work (hashing outputs), i.e. what a user waits for.

``dvc repro --force`` keeps the outputs a stage marks ``persist: true`` (the MCTS search, which resumes from
them), so a forced run in a used checkout would time a resumed search where a clean clone searches in full.
The report therefore deletes those outputs first (:func:`benchmark.pipeline_outs.persisted_outs`; they are in
the DVC cache, and the run writes them again) and names them in ``runtime.md``; ``--keep-persisted`` skips
that.

Then, unless ``--no-noop``, a second plain ``dvc repro`` is timed: with nothing changed it must only check
hashes and finish in seconds.

Results: ``results/runtime.md`` (table + machine + goals: ≤ 30 min and ≤ 6 GB for the default profile on
2 cores) and ``results/runtime.json``.

From the stage logs (``--from-logs``)
-------------------------------------
Every stage records, when its process exits, its wall time, peak resident memory (``getrusage``: the
process and its waited-for children) and the load average in ``logs/<stage>.json``
(:func:`benchmark.runtime.start_stage`). ``eagrl runtime-report --from-logs`` tabulates the latest record of
each stage of ``dvc.yaml`` instead of re-running anything: the sum is what a sequential ``dvc repro``
of those stages took, under whatever load the machine had then (the table shows it), and stages that do
not call ``start_stage`` (the small report stages, a few seconds each) are listed as not recorded. Timings depend on the machine and its load: they are not compared by
``make regress`` (``regress.exclude``). Run it on an otherwise idle machine: ``make runtime``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmark.paths import RESULTS
from benchmark.pipeline_outs import persisted_outs
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.stage_cli import stage_parser
from benchmark.tables import markdown_table

RUNNING = re.compile(r"^Running stage '([^']+)'")
SKIPPING = re.compile(r"^Stage '([^']+)' didn't change, skipping")
MB = 1024 * 1024


@dataclass
class StageTiming:
    """One stage of the measured run."""

    stage: str
    status: str  # "ran" or "skipped"
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class Measurement:
    """A measured command: per-stage timings, totals and the exit status."""

    command: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float
    stages: list[StageTiming] = field(default_factory=list)
    output_tail: list[str] = field(default_factory=list)


def _tree_rss(process: psutil.Process) -> tuple[float, float]:
    """(RSS of the descendants, RSS of root + descendants) in bytes; vanished processes count 0."""
    children = 0.0
    try:
        descendants = process.children(recursive=True)
        root = process.memory_info().rss
    except psutil.Error:
        return 0.0, 0.0
    for child in descendants:
        try:
            children += child.memory_info().rss
        except psutil.Error:
            continue
    return children, children + root


def measure(command: list[str], cwd: str | Path = ".", interval: float = 0.2, echo: bool = True,
            env: dict[str, str] | None = None) -> Measurement:
    """Run ``command``, splitting its wall time and peak memory by the DVC stage lines it prints."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, env=env)
    handle = psutil.Process(proc.pid)
    stages: list[StageTiming] = []
    current: list[Any] = [None, 0.0]  # [StageTiming | None, start time]
    lock = threading.Lock()
    tail: list[str] = []

    def close_current(now: float) -> None:
        if current[0] is not None:
            current[0].wall_s = now - current[1]
            current[0] = None

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if echo:
                sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
            del tail[:-40]
            now = time.perf_counter()
            running, skipping = RUNNING.match(line), SKIPPING.match(line)
            with lock:
                if running:
                    close_current(now)
                    stage = StageTiming(running.group(1), "ran")
                    stages.append(stage)
                    current[0], current[1] = stage, now
                elif skipping:
                    stages.append(StageTiming(skipping.group(1), "skipped"))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    peak_total = 0.0
    while proc.poll() is None:
        children, total = _tree_rss(handle)
        peak_total = max(peak_total, total)
        with lock:
            if current[0] is not None:
                current[0].peak_rss_mb = max(current[0].peak_rss_mb, children / MB)
        time.sleep(interval)
    thread.join()
    ended = time.perf_counter()
    with lock:
        close_current(ended)
    return Measurement(list(command), proc.returncode, ended - started, peak_total / MB, stages, tail)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    memory = psutil.virtual_memory()
    return {"cpus": os.cpu_count(), "memory_gb": round(memory.total / 1024**3, 1), "platform": platform.platform(),
            "python": platform.python_version(), "load_average_1m": round(os.getloadavg()[0], 2)}


def runtime_markdown(run: Measurement, noop: Measurement | None, info: dict[str, Any], goal_minutes: float,
                     goal_gb: float) -> str:
    """The Markdown report of a measured run (and of the no-change run)."""
    rows = [{"stage": s.stage, "status": s.status, "wall (s)": round(s.wall_s, 1),
             "peak RSS (MB)": round(s.peak_rss_mb) if s.status == "ran" else "—"} for s in run.stages]
    ran = [s for s in run.stages if s.status == "ran"]
    within_time = run.wall_s <= goal_minutes * 60
    within_memory = run.peak_rss_mb <= goal_gb * 1024
    lines = [
        "# Runtime of the pipeline",
        "",
        f"`{' '.join(run.command)}` measured by `eagrl runtime-report` on {info['date']}: wall time per stage and the "
        "peak resident memory of the stage's processes (psutil sampling every "
        f"{info['interval']} s). Machine: {info['cpus']} CPUs, {info['memory_gb']} GB, {info['platform']}, Python "
        f"{info['python']}; 1-minute load average before the run {info['load_average_1m']} (other work on the machine "
        "slows the stages down)." + (
            f" Removed first, as a clean clone lacks them: {', '.join(f'`{p}`' for p in info['persisted_removed'])} "
            "(`persist: true` outputs that `dvc repro --force` would keep)." if info.get("persisted_removed") else ""),
        "",
        markdown_table(rows, floatfmt=".1f") if rows else "(no stage ran)",
        "",
        f"- total: **{run.wall_s / 60:.1f} min** for {len(ran)} stage(s) (goal ≤ {goal_minutes:g} min: "
        f"{'met' if within_time else 'NOT met'}); exit status {run.returncode}",
        f"- peak memory (dvc + stage processes): **{run.peak_rss_mb / 1024:.2f} GB** (goal ≤ {goal_gb:g} GB: "
        f"{'met' if within_memory else 'NOT met'})",
    ]
    if noop is not None:
        lines.append(f"- a second `{' '.join(noop.command)}` with nothing changed: **{noop.wall_s:.1f} s** "
                     f"({sum(s.status == 'ran' for s in noop.stages)} stage(s) re-ran; exit status {noop.returncode})")
    return "\n".join(lines) + "\n"


def remove_persisted(cwd: str | Path = ".") -> list[str]:
    """Delete the pipeline's ``persist: true`` outputs under ``cwd`` (module docstring); the paths removed."""
    removed = []
    for relative in persisted_outs(cwd):
        path = Path(cwd) / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(relative)
        LOGGER.info("runtime-report: removed the persisted output %s, so the forced run starts as a clean clone does",
                    relative)
    return removed


def runtime_report(command: str = "dvc repro --force", noop_command: str | None = "dvc repro", out: str | Path = RESULTS,
                   interval: float = 0.2, goal_minutes: float = 30.0, goal_gb: float = 6.0, cwd: str | Path = ".",
                   echo: bool = True, keep_persisted: bool = False) -> Path:
    """Measure ``command`` (and the no-change ``noop_command``) and write ``runtime.md`` / ``runtime.json``;
    unless ``keep_persisted``, the persisted outputs are deleted first (module docstring)."""
    configure_logging()
    info = {**machine(), "interval": interval, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    info["persisted_removed"] = [] if keep_persisted else remove_persisted(cwd)
    LOGGER.info("runtime-report: measuring `%s`", command)
    # The suite's console scripts (dvc, eagrl) live beside this interpreter: put them first on PATH, as
    # `make` does, so that DVC's stage commands resolve to the same installation.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    run = measure(shlex.split(command), cwd, interval, echo, env)
    noop = (measure(shlex.split(noop_command), cwd, interval, echo, env)
            if noop_command and run.returncode == 0 else None)
    out = Path(out)
    path = atomic_write_text(out / "runtime.md", runtime_markdown(run, noop, info, goal_minutes, goal_gb))
    atomic_write_json(out / "runtime.json", {
        "machine": info, "goal_minutes": goal_minutes, "goal_gb": goal_gb,
        "run": {k: v for k, v in asdict(run).items() if k != "output_tail"},
        "noop": None if noop is None else {k: v for k, v in asdict(noop).items() if k != "output_tail"},
    })
    LOGGER.info("runtime-report: %.1f min, peak %.2f GB -> %s", run.wall_s / 60, run.peak_rss_mb / 1024, path)
    if run.returncode != 0:
        raise SystemExit(f"runtime-report: `{command}` exited with {run.returncode}; last lines:\n" + "\n".join(run.output_tail))
    return path


def stage_names(dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """Every stage name of the pipeline, matrix/foreach entries expanded, in dvc's order."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    listed = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True, text=True, env=env,
                            cwd=Path(dvc_yaml).parent)
    if listed.returncode != 0:
        raise SystemExit(f"runtime-report: `dvc stage list` failed: {listed.stderr.strip()}")
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


def command_key(words: list[str]) -> str:
    """A stage's identity that its DVC command and its own log share: the ``eagrl`` arguments joined, with
    ``-``, ``@`` and ``/`` read as ``_`` (``eagrl rl synthetic_icu mortality eag_rl`` and the log
    ``rl_synthetic_icu-mortality-eag_rl.json`` are both ``rl_synthetic_icu_mortality_eag_rl``)."""
    return re.sub(r"[-@/]", "_", "_".join(words))


def stage_commands(dvc_yaml: str | Path = "dvc.yaml") -> dict[str, str]:
    """DVC stage name -> its resolved command (matrix / foreach entries expanded), from DVC's own index."""
    from dvc.repo import Repo

    with Repo(str(Path(dvc_yaml).resolve().parent)) as repo:
        return {stage.addressing: stage.cmd for stage in repo.index.stages if getattr(stage, "cmd", None)}


def _log_records(log_dir: Path) -> dict[str, dict[str, Any]]:
    """Finished stage logs by :func:`command_key`: from the ``argv`` a log records, else from its file name
    (logs written before ``argv`` was recorded)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(log_dir.glob("*.json")) if log_dir.exists() else []:
        record = json.loads(path.read_text())
        if "wall_s" in record:
            out[command_key(record["argv"]) if record.get("argv") else command_key([path.stem])] = record
    return out


def from_logs(log_dir: str | Path = "logs", out: str | Path = RESULTS, goal_minutes: float = 30.0,
              goal_gb: float = 6.0, noop_seconds: float | None = None) -> Path:
    """``results/runtime.md`` from the wall time / peak memory each stage logged at exit (module docstring).

    A DVC stage is matched with its log through its command (:func:`command_key`), since a stage's DVC name
    (``rl@pair0-eag_rl``) and the name its process logs under (``rl@synthetic_icu-mortality-eag_rl``) differ.
    """
    configure_logging()
    rows, recorded = [], []
    logs = _log_records(Path(log_dir))
    commands = stage_commands()
    for stage in stage_names():
        words = shlex.split(commands.get(stage, ""))[1:]  # without "eagrl"
        record = logs.get(command_key(words), {}) if words else {}
        if "wall_s" in record:
            recorded.append(record)
            rows.append({"stage": stage, "finished": record["finished"], "wall (s)": record["wall_s"],
                         "peak RSS (MB)": round(record["peak_rss_mb"]), "load (1 min)": record["load_average_1m"]})
        else:
            rows.append({"stage": stage, "finished": "not recorded", "wall (s)": None, "peak RSS (MB)": None,
                         "load (1 min)": None})
    total = sum(r["wall_s"] for r in recorded)
    peak = max((r["peak_rss_mb"] for r in recorded), default=0.0)
    info = machine()
    missing = len(rows) - len(recorded)
    if missing and total > goal_minutes * 60:
        verdict = f"NOT met: the recorded stages alone exceed it ({missing} more stage(s) not recorded)"
    elif missing:
        verdict = f"not judged: {missing} stage(s) not recorded, so the sum understates a full run"
    else:
        verdict = "met" if total <= goal_minutes * 60 else "NOT met"
    lines = [
        "# Runtime of the pipeline (from the stage logs)",
        "",
        f"Each stage's wall time and peak resident memory as the stage recorded them when it last ran "
        f"(`eagrl runtime-report --from-logs`, {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}). Machine: "
        f"{info['cpus']} CPUs, {info['memory_gb']} GB, {info['platform']}, Python {info['python']}. The load column "
        "is the 1-minute load average when the stage ended: above the core count, the stage shared the CPUs with "
        "other work and took longer than it would alone. Stages marked 'not recorded' are report stages that "
        "do not log (seconds each) or stages that have not run.",
        "",
        markdown_table(rows, floatfmt=".1f"),
        "",
        f"- sum over the {len(recorded)} recorded stage(s): **{total / 60:.1f} min** (goal ≤ {goal_minutes:g} min for "
        f"a first `dvc repro` of the default profile: {verdict})",
        f"- largest stage peak memory: **{peak / 1024:.2f} GB** (goal ≤ {goal_gb:g} GB: "
        f"{'met' if peak <= goal_gb * 1024 else 'NOT met'})",
    ]
    if noop_seconds is not None:
        lines.append(f"- a no-change `dvc repro`: **{noop_seconds:.1f} s**")
    out = Path(out)
    path = atomic_write_text(out / "runtime.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "runtime.json", {"machine": info, "goal_minutes": goal_minutes, "goal_gb": goal_gb,
                                             "total_s": total, "peak_rss_mb": peak, "noop_s": noop_seconds,
                                             "stages": rows})
    LOGGER.info("runtime-report: %d recorded stages, %.1f min, peak %.2f GB -> %s", len(recorded), total / 60,
                peak / 1024, path)
    return path


def _time_noop() -> float:
    """Seconds of a plain ``dvc repro`` (expected to find nothing to do)."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    started = time.perf_counter()
    subprocess.run(["dvc", "repro"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl runtime-report``."""
    parser = stage_parser(subparsers, "runtime-report",
                          "Time `dvc repro --force` per stage (wall, peak RSS) into results/runtime.md.", __doc__, params=False)
    parser.add_argument("--command", default="dvc repro --force", help="The measured command.")
    parser.add_argument("--noop-command", default="dvc repro", help="Timed afterwards (nothing changed).")
    parser.add_argument("--no-noop", action="store_true", help="Do not time the no-change run.")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--interval", type=float, default=0.2, help="Memory sampling period in seconds.")
    parser.add_argument("--keep-persisted", action="store_true",
                        help="Keep the persist: true outputs (a resumed MCTS search) instead of deleting them first.")
    parser.add_argument("--goal-minutes", type=float, default=30.0, help="Wall-time goal of the profile.")
    parser.add_argument("--goal-gb", type=float, default=6.0, help="Peak-memory goal of the profile.")
    parser.add_argument("--from-logs", action="store_true",
                        help="Tabulate the wall time / peak memory each stage logged when it last ran (logs/), "
                             "and time one no-change `dvc repro` (unless --no-noop), instead of re-running everything.")
    parser.set_defaults(handler=lambda args: (
        from_logs("logs", args.out, args.goal_minutes, args.goal_gb, None if args.no_noop else _time_noop())
        if args.from_logs else
        runtime_report(args.command, None if args.no_noop else args.noop_command, args.out, args.interval,
                       args.goal_minutes, args.goal_gb, keep_persisted=args.keep_persisted)))
