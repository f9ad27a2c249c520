"""The ``regress`` section of params.yaml (:class:`RegressConfig`), read by ``eagrl regress``."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.config import ConfigError, ParamsSource, from_mapping, load_params, option
from benchmark.paths import RESULTS

MACHINE_FILE = "machine.json"  # a profile reference's machine fingerprint (not a results file: never compared)


@dataclass
class RegressConfig:
    """The ``regress`` section of params.yaml."""

    ref: str = option("HEAD", help="Git revision whose committed results are the reference.")
    results: str = option(str(RESULTS), help="Results folder, relative to the repository root.")
    files: str = option("*.json", help="Glob (inside the results folder) of the files compared.")
    abs_tol: float = option(0.005, help="Default absolute tolerance of a number.")
    rel_tol: float = option(0.0, help="Relative tolerance added to abs_tol (times |committed|).")
    tolerances: dict[str, float] = option({}, help="Per-key absolute tolerances: fnmatch pattern on '<file>:<key>' -> tol; the first match wins.")
    exclude: list[str] = option([], help="fnmatch patterns of files (e.g. 'runtime.json') or of '<file>:<key>' that are not compared.")
    profiles: dict[str, str] = option({}, help="Profile name -> results folder holding the committed reference of that profile's scratch run (e.g. ci: results/ci).")
    machine_sensitive: list[str] = option([], help="fnmatch patterns of '<file>:<key>' whose numbers follow the CPU's floating-point kernels: on a machine unlike the reference's (machine.json) a difference there within machine_stds spreads is reported as 'machine', not a failure; beyond it fails.")
    machine_stds: float = option(3.0, help="On a machine unlike the reference's, a machine-sensitive score may move by this many of its committed bootstrap stds (the sibling key ending in std: auroc/mean -> auroc/std, auroc_mean -> auroc_std) plus its tolerance; beyond that it fails on any machine.")
    machine_abs_tol: float = option(0.1, help="On a machine unlike the reference's, the allowed move of a machine-sensitive number that has no sibling std (a parse rate, an alignment, a count of features named): beyond it the number fails.")

    def __post_init__(self) -> None:
        if self.machine_stds < 0 or self.machine_abs_tol < 0:
            raise ConfigError("regress: machine_stds and machine_abs_tol must be >= 0")
        if self.abs_tol < 0 or self.rel_tol < 0 or any(v < 0 for v in self.tolerances.values()):
            raise ConfigError("regress: tolerances must be >= 0")


def regress_config(params: ParamsSource = "params.yaml") -> RegressConfig:
    """The ``regress`` section of ``params`` (defaults where absent)."""
    return from_mapping(RegressConfig, load_params(params).get("regress"), f"{params}: regress")
