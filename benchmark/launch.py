"""How the training stages run: one process (the default) or N processes under ``accelerate launch``.

The ``launch`` section of params.yaml (:class:`LaunchConfig`) names the training stages that may run in
several processes (``label_sft``, ``sft_stage1``, ``rl``), how many, and which accelerate config file
(``profiles/accelerate/*.yaml``: DDP, FSDP, DeepSpeed ZeRO-2/3) they use. With ``processes: 1`` nothing
changes. With ``processes: N > 1`` the stage's own command (``eagrl rl ...``, what ``dvc repro`` runs)
re-executes itself once, as a subprocess of accelerate's own launcher::

    python -m accelerate.commands.launch --config_file <file> --num_processes N --main_process_port <free> \
        -m eagrl <the same arguments>

and waits for it; the launched processes see ``LOCAL_RANK`` / ``WORLD_SIZE`` and do not launch again. The
process group, data sharding and gradient synchronisation are accelerate's and the trainers' (TRL on top of
``transformers.Trainer``); nothing here talks to ``torch.distributed``. Every process trains; only the main
process writes: the stage log (:func:`benchmark.runtime.start_stage`), the output folders
(:func:`benchmark.runtime.atomic_directory` gives the other ranks a scratch folder that is thrown away) and
each explicit write of the stages (guarded by :func:`is_main_process` or the trainer's
``is_world_process_zero``). Batch sizes in params.yaml are per process: N processes train on an N times
larger global batch per optimiser step.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmark.config import ConfigError, ParamsSource, from_mapping, load_params, option

SECTION = "launch"
# CLI subcommand -> stage name in launch.stages (the stages that train with a Hugging Face / TRL trainer).
LAUNCHABLE = {"label-sft": "label_sft", "sft-stage1": "sft_stage1", "rl": "rl"}


@dataclass
class LaunchConfig:
    """The ``launch`` section: processes per training stage (accelerate launch)."""

    processes: int = option(1, minimum=1, help="Processes per training stage: 1 = a plain single process (no accelerate launcher); N > 1 = the stage re-executes itself under `accelerate launch --num_processes N` (one process per GPU; on a CPU-only machine N gloo processes).")
    accelerate_config: str = option("profiles/accelerate/ddp.yaml", help="accelerate config file used when processes > 1 (relative to the working directory, i.e. the repository root under dvc): profiles/accelerate/ddp.yaml, fsdp.yaml, deepspeed_zero2.yaml or deepspeed_zero3.yaml. Its num_processes is overridden by `processes`.")
    stages: list[str] = option(["label_sft", "sft_stage1", "rl"], help="Training stages that run in `processes` processes (the others stay single-process): label_sft, sft_stage1, rl.")


def load_launch_config(params: ParamsSource = "params.yaml") -> LaunchConfig:
    """The ``launch`` section of ``params`` (code defaults where absent), checked."""
    config = from_mapping(LaunchConfig, load_params(params).get(SECTION), f"{params}: {SECTION}")
    unknown = sorted(set(config.stages) - set(LAUNCHABLE.values()))
    if unknown:
        raise ConfigError(f"{params}: {SECTION}.stages has {unknown}; the stages that can run in several "
                          f"processes are {sorted(LAUNCHABLE.values())}")
    if config.processes > 1 and not Path(config.accelerate_config).is_file():
        raise ConfigError(f"{params}: {SECTION}.accelerate_config = {config.accelerate_config!r} is not a file; "
                          f"give one of profiles/accelerate/*.yaml (needed when {SECTION}.processes > 1)")
    return config


def world_size() -> int:
    """Processes of this run (``WORLD_SIZE`` set by the launcher; 1 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def in_launched_process() -> bool:
    """True inside a process started by a distributed launcher (accelerate / torchrun set ``LOCAL_RANK``)."""
    return "LOCAL_RANK" in os.environ or world_size() > 1


def is_main_process() -> bool:
    """True in the process that writes outputs: the only one of a plain run, rank 0 of a launched run.

    Uses accelerate's ``PartialState`` once a trainer has set it up; before that (stage start) the launcher's
    ``RANK``, which is the rank that state will report. Never creates the state itself: the trainers create it
    with their own device settings (``use_cpu``), which a premature ``PartialState()`` would fix wrongly.
    """
    if in_launched_process():
        from accelerate import PartialState

        if PartialState._shared_state:
            return PartialState().is_main_process
    return int(os.environ.get("RANK", "0")) == 0


def free_port() -> int:
    """A TCP port free now on this machine (so that stages launched side by side, e.g. by
    ``dvc queue start -j 2``, do not meet on accelerate's default port 29500)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(config: LaunchConfig, argv: list[str], port: int | None = None) -> list[str]:
    """The ``accelerate launch`` command line that runs ``eagrl <argv>`` in ``config.processes`` processes."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config.accelerate_config,
            "--num_processes", str(config.processes), "--num_machines", "1",
            "--main_process_port", str(port or free_port()), "-m", "eagrl", *argv]


def relaunch(command: str, params: ParamsSource, argv: list[str]) -> int | None:
    """Run stage ``command`` under ``accelerate launch`` when ``launch`` asks for it; its exit status, or None
    when this process should run the stage itself (one process configured, not a training stage, or
    already inside a launched process)."""
    stage = LAUNCHABLE.get(command)
    if stage is None or in_launched_process():
        return None
    config = load_launch_config(params)
    if config.processes == 1 or stage not in config.stages:
        return None
    cmd = launch_command(config, argv)
    print(f"eagrl {command}: {config.processes} processes: {' '.join(cmd)}", file=sys.stderr, flush=True)
    return run_process_group(cmd)


def run_process_group(cmd: list[str], grace_s: float = 30.0) -> int:
    """Run ``cmd`` in its own process group and return its exit status. If this process is interrupted (Ctrl-C,
    or DVC's SIGTERM, which :func:`benchmark.runtime.terminate_as_exit` turns into ``SystemExit``), the whole
    group — the launcher and every rank — gets SIGTERM, then SIGKILL after ``grace_s``; no rank is orphaned."""
    process = subprocess.Popen(cmd, start_new_session=True)
    try:
        return process.wait()
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        raise
