"""Run-time discipline shared by every stage: seeds, deterministic CPU maths, atomic outputs, stage logs.

A stage calls :func:`start_stage` first: it seeds Python, NumPy and torch, turns on deterministic torch
algorithms, and logs the seed and the resolved configuration (to stderr and to ``logs/<stage>.json``),
so that a number in ``results/`` can always be traced to the settings that produced it. Outputs are
written with :func:`atomic_write_text` / :func:`atomic_directory`, so an interrupted stage never
leaves a half-written file that a later stage would read.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

LOGGER = logging.getLogger("eagrl")


def seed_everything(seed: int) -> None:
    """Seed every random number generator the suite uses (Python, NumPy, torch when installed)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency, but the harness does not need it
        return
    torch.manual_seed(seed)


def make_deterministic(threads: int | None = None) -> None:
    """Make CPU torch runs bit-reproducible: deterministic algorithms and a fixed thread count.

    Floating-point reductions depend on how work is split across threads, so the thread count is part of
    the configuration (``runtime.threads`` in params.yaml; ``None`` keeps torch's default).

    ``torch.use_deterministic_algorithms`` also imports ``torch._inductor`` to set the flag that
    ``torch.compile`` reads: 1.3 s at the start of every stage. The suite never compiles, so unless inductor
    is already loaded only the kernel flag is set, which is the part eager kernels read.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    if "torch._inductor" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)


def map_in_processes(function: Callable[..., Any], jobs: dict[Any, tuple], processes: int,
                     threads: int) -> dict[Any, Any]:
    """``function(*args)`` for every ``key: args`` of ``jobs`` in ``processes`` spawned worker processes of
    ``threads`` torch threads each (``concurrent.futures``); returns the results by key, in the order of ``jobs``.

    For independent runs (the seeds of one RL stage) whose model is too small to keep every core busy.
    Workers are spawned, never forked (torch holds threads), and each fixes its thread count and makes torch
    deterministic (:func:`make_deterministic`) before it runs, so a run's numbers depend on ``threads`` and its
    own seed, not on what runs beside it. ``function`` must be importable (a module-level function). A stage
    log's peak memory counts the parent and its largest worker; each worker's peak is logged here.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    results: dict[Any, Any] = {}
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {key: pool.submit(_call_in_worker, function, threads, args) for key, args in jobs.items()}
        for key, future in futures.items():
            results[key], peak_mb = future.result()
            LOGGER.info("%s(%s) finished in its worker process (%d torch thread(s), peak RSS %.0f MB)",
                        getattr(function, "__name__", "job"), key, threads, peak_mb)
    return results


def _call_in_worker(function: Callable[..., Any], threads: int, args: tuple) -> tuple[Any, float]:
    """One job of :func:`map_in_processes` inside its worker; returns its result and the worker's peak RSS (MB)."""
    configure_logging()
    make_deterministic(threads)
    return function(*args), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def configure_logging(level: int = logging.INFO) -> None:
    """Plain, timestamped log lines on stderr (progress bars go to stderr too)."""
    if not LOGGER.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S"))
        LOGGER.addHandler(handler)
    LOGGER.setLevel(level)


def start_stage(name: str, seed: int, config: dict[str, Any], threads: int | None = None,
                log_dir: str | Path = "logs") -> None:
    """Seed, make deterministic and record what this stage runs with (seed + config) before it starts."""
    configure_logging()
    seed_everything(seed)
    make_deterministic(threads)
    record = {"stage": name, "argv": sys.argv[1:], "seed": seed, "threads": threads, "config": config,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    LOGGER.info("stage %s seed=%d config=%s", name, seed, json.dumps(config, default=str, sort_keys=True))
    from benchmark.launch import is_main_process

    if not is_main_process():  # a launched run (launch.processes > 1): the log is rank 0's
        return
    safe = name.replace("/", "_").replace("@", "_")
    path = (Path(log_dir) / f"{safe}.json").absolute()  # absolute: the exit record must not follow a later chdir
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    atexit.register(_record_exit, path, record, time.perf_counter())


def _record_exit(path: Path, record: dict[str, Any], started: float) -> None:
    """At interpreter exit: add the stage's wall time and peak memory to its log (``eagrl runtime-report --from-logs``)."""
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    finished = {**record, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "wall_s": round(time.perf_counter() - started, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
                "load_average_1m": round(os.getloadavg()[0], 2)}
    with contextlib.suppress(OSError):
        atomic_write_text(path, json.dumps(finished, indent=2, default=str) + "\n")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """JSON with sorted keys and a trailing newline, written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (workbooks, GGUF weights, results files)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_leftovers(path: str | Path) -> list[Path]:
    """Remove the hidden ``.<name>.*`` siblings of ``path`` that an interrupted :func:`atomic_directory` left
    behind; returns them (each is logged, as a killed run is worth knowing about)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = sorted(p for p in path.parent.glob(f".{path.name}.*") if p.is_dir())
    for leftover in removed:
        logging.getLogger("eagrl").warning("removing %s: the temporary output of an interrupted run", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    return removed


def terminate_as_exit() -> None:
    """Make SIGTERM (what ``kill`` and DVC's cancellation send) raise ``SystemExit`` like Ctrl-C raises
    ``KeyboardInterrupt``, so ``finally`` blocks and :func:`atomic_directory` clean up instead of leaving
    temporary folders behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread (e.g. main() called by a test's thread)

    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename.

    If the block raises (SIGTERM and Ctrl-C included: :func:`terminate_as_exit`), the temporary folder is
    removed and any previous ``path`` is left untouched. A run killed outright (SIGKILL, power loss) cannot
    clean up: its ``.<name>.*`` folders are removed by the next run that writes ``path`` (one stage writes a
    path at a time: DVC locks it), so no stale copy outlives a re-run. In a launched run (``launch.processes``
    > 1) only the main process writes ``path``; the other ranks get a scratch folder that is deleted afterwards.
    """
    from benchmark.launch import is_main_process

    if not is_main_process():  # another rank of a launched run: its writes go to a scratch folder, then away
        with tempfile.TemporaryDirectory(prefix=f"rank-scratch-{Path(path).name}-") as scratch:
            yield Path(scratch)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
