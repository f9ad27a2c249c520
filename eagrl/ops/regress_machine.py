"""The machine of a reference: its fingerprint and how the comparing machine differs from it.

See :mod:`eagrl.ops.regress`, "The machine of the reference".
"""

from __future__ import annotations

import platform
from pathlib import Path

from eagrl.ops.git import run_git
from eagrl.ops.regress_config import MACHINE_FILE, RegressConfig
from eagrl.ops.regress_results import parse_json

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")  # what CPU kernels branch on


def machine_fingerprint() -> dict[str, str]:
    """What decides the floating-point path of a CPU run: architecture, CPU model, the ISA extensions CPU
    kernels branch on, torch's dispatch level and the versions of the numeric libraries."""
    import numpy
    import torch

    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    try:
        import transformers
        transformers_version = transformers.__version__
    except ImportError:  # pragma: no cover - the suite depends on it
        transformers_version = "absent"
    return {"machine": platform.machine(), "cpu": model,
            "isa": " ".join(flag for flag in ISA_FLAGS if flag in flags) or "unknown",
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "transformers": transformers_version, "numpy": numpy.__version__,
            "python": platform.python_version()}


def committed_machine(root: Path, config: RegressConfig) -> dict[str, str] | None:
    """The fingerprint committed beside a profile reference at ``config.ref`` (None when there is none)."""
    name = f"{config.results}/{MACHINE_FILE}"
    listed = run_git(root, "ls-tree", "--name-only", config.ref, "--", name).strip()
    return parse_json(run_git(root, "show", f"{config.ref}:{name}"), f"{config.ref}:{name}") if listed else None


def machine_differences(reference: dict[str, str] | None, current: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(field, reference, current)`` of every fingerprint field that differs (none without a reference)."""
    if reference is None:
        return []
    return [(k, str(reference.get(k, "—")), str(current.get(k, "—")))
            for k in sorted(set(reference) | set(current)) if reference.get(k) != current.get(k)]
