"""``make regress`` / ``eagrl regress``: every number in ``results/*.json`` against the committed one.

``make regress`` first re-runs the pipeline (``dvc repro --force``: every stage, in the working tree, so
that the code being tested — committed or not — produces the numbers), then calls this module, which
compares each freshly written ``results/*.json`` with the version committed at ``regress.ref``
(``git show HEAD:results/<file>``) and prints a diff table.

What is compared
----------------
Each JSON file is flattened to ``key → number`` (booleans and strings are not scores and are skipped).
Dict keys are joined with ``/``; a list of row objects (as written by :func:`benchmark.tables.write_table`)
is keyed by the row's non-numeric fields, so adding a method or a data set does not shift every other
row (``cohorts.json:synthetic_icu,synthetic,icu,mortality,train/patients``). The key shown in the table
is ``<file>:<path>``.

A value passes when ``|fresh − committed| ≤ tol + rel_tol·|committed|``, with ``tol`` the first
``regress.tolerances`` pattern (fnmatch on ``<file>:<path>``) that matches, else ``regress.abs_tol``; two
NaNs are equal. Statuses:

* ``ok`` — within tolerance;
* ``changed`` — outside it: a **failure** (a better score fails too: commit the new results deliberately);
* ``missing`` — committed but not produced any more (a metric, a row, or a whole file): a **failure**;
* ``new`` — produced but not committed yet: reported, not a failure.

Files and keys matching ``regress.exclude`` (e.g. wall-clock timings) are skipped. Exit status 0 when
nothing failed, 1 on a failure, 2 on a usage error (no git, unknown ref).

A profile in a scratch copy (what CI runs)
-------------------------------------------
The default profile takes far longer than a CI job may, so ``make regress`` runs ``eagrl regress --profile
profiles/ci.yaml``: a tiny overlay profile that still runs every stage. The working tree's files (tracked
and untracked, not ignored: the code being tested) are copied into a scratch folder, the profile is
applied there (``eagrl configure --profile``), ``dvc repro`` runs the whole pipeline from nothing, and the
scratch ``results/*.json`` are compared with the reference committed under ``regress.profiles[<name>]``
(``results/ci/`` for the ci profile). The user's params.yaml, results and DVC cache are never touched.
``--update`` copies the scratch results into that reference folder instead of comparing (then commit them
deliberately); ``--fresh DIR`` skips the run and compares the results already in ``DIR/results``.

The machine of the reference
----------------------------
Same seed and thread count give the same numbers *on the same kind of CPU*: greedy decoding in bf16, and
trained models, follow the floating-point kernels torch dispatches to (AVX2, AVX-512, AVX-512 BF16, AMX),
and a last-bit difference can flip a token and move a score by far more than any tolerance. ``--update``
therefore writes the machine's fingerprint (:func:`machine_fingerprint`) beside the reference
(``machine.json``). When the comparing machine's fingerprint differs, the fields that differ are printed,
and a number outside its tolerance whose key matches ``regress.machine_sensitive`` gets the status
``machine`` — reported, not a failure — as long as it stays within ``regress.machine_stds`` of its committed
bootstrap stds (or ``regress.machine_abs_tol`` for a number without one); beyond that it is ``changed`` and
fails on any machine, so a regression of a score cannot hide behind a new CPU. Every other number (cohort counts and statistics, which come
from NumPy's generator) is still compared strictly. On a machine like the reference's everything is strict.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from benchmark.config import ConfigError, describe, from_mapping, load_params, option

FAILURES = ("changed", "missing")
STATUSES = ("ok", "changed", "missing", "new", "machine")
MACHINE_FILE = "machine.json"  # a profile reference's machine fingerprint (not a results file: never compared)
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")  # what CPU kernels branch on


@dataclass
class RegressConfig:
    """The ``regress`` section of params.yaml."""

    ref: str = option("HEAD", help="Git revision whose committed results are the reference.")
    results: str = option("results", help="Results folder, relative to the repository root.")
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


def regress_config(params_path: str | Path = "params.yaml") -> RegressConfig:
    """The ``regress`` section of ``params_path`` (defaults where absent)."""
    return from_mapping(RegressConfig, load_params(params_path).get("regress"), f"{params_path}: regress")


# ------------------------------------------------------------------------------------------ flattening
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _row_key(row: dict[str, Any]) -> str:
    parts = [str(v) for v in row.values() if isinstance(v, (str, bool)) or v is None]
    return ",".join(parts)


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """``{path: number}`` of every numeric leaf of a JSON value (see the module docstring for the keys)."""
    out: dict[str, float] = {}
    for key, value in _walk(data, prefix):
        out[key] = float(value)
    return out


def _walk(data: Any, prefix: str) -> Iterator[tuple[str, float]]:
    join = (lambda k: f"{prefix}/{k}") if prefix else (lambda k: str(k))
    if _is_number(data):
        yield prefix, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, join(key))
    elif isinstance(data, list):
        keys = [_row_key(item) if isinstance(item, dict) else "" for item in data]
        unique = all(keys) and len(set(keys)) == len(keys)
        for i, item in enumerate(data):
            yield from _walk(item, join(keys[i] if unique else f"[{i}]"))


# ------------------------------------------------------------------------------------------ loading
def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}")
    return result.stdout


def committed_results(root: str | Path, config: RegressConfig) -> dict[str, Any]:
    """``{file name: parsed JSON}`` of the results files committed at ``config.ref``."""
    root = Path(root)
    _git(root, "rev-parse", "--verify", f"{config.ref}^{{commit}}")
    names = _git(root, "ls-tree", "-r", "--name-only", config.ref, "--", config.results).splitlines()
    out = {}
    for name in names:
        relative = Path(name).relative_to(config.results).as_posix()
        if Path(relative).name == MACHINE_FILE:
            continue
        if fnmatch.fnmatch(relative, config.files) and not _excluded(relative, config):
            out[relative] = _parse(_git(root, "show", f"{config.ref}:{name}"), f"{config.ref}:{name}")
    return out


def fresh_results(root: str | Path, config: RegressConfig, top_level_only: bool = False) -> dict[str, Any]:
    """``{file name: parsed JSON}`` of the results files in the working tree (``top_level_only``: not in
    sub-folders, which hold other profiles' references)."""
    folder = Path(root) / config.results
    out = {}
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        relative = path.relative_to(folder).as_posix()
        if top_level_only and "/" in relative:
            continue
        if Path(relative).name == MACHINE_FILE:
            continue
        if path.is_file() and fnmatch.fnmatch(relative, config.files) and not _excluded(relative, config):
            out[relative] = _parse(path.read_text(), str(path))
    return out


# ------------------------------------------------------------------------------------------ the machine
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
    listed = _git(root, "ls-tree", "--name-only", config.ref, "--", name).strip()
    return _parse(_git(root, "show", f"{config.ref}:{name}"), f"{config.ref}:{name}") if listed else None


def machine_differences(reference: dict[str, str] | None, current: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(field, reference, current)`` of every fingerprint field that differs (none without a reference)."""
    if reference is None:
        return []
    return [(k, str(reference.get(k, "—")), str(current.get(k, "—")))
            for k in sorted(set(reference) | set(current)) if reference.get(k) != current.get(k)]


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where}: not valid JSON ({error})") from None


def _excluded(name: str, config: RegressConfig) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in config.exclude)


# ------------------------------------------------------------------------------------------ comparing
@dataclass(frozen=True)
class Difference:
    """One compared number."""

    key: str
    committed: float | None
    fresh: float | None
    tolerance: float
    status: str

    @property
    def delta(self) -> float | None:
        if self.committed is None or self.fresh is None:
            return None
        return self.fresh - self.committed


def tolerance_for(key: str, committed: float, config: RegressConfig) -> float:
    """The tolerance that applies to ``key`` (see the module docstring)."""
    base = next((tol for pattern, tol in config.tolerances.items() if fnmatch.fnmatch(key, pattern)), config.abs_tol)
    return base + config.rel_tol * (abs(committed) if math.isfinite(committed) else 0.0)


SPREAD_SUFFIXES = ("mean", "point", "ci_low", "ci_high")


def sibling_std(key: str, numbers: dict[str, float]) -> float | None:
    """The committed bootstrap std beside a score (``.../auroc/mean`` -> ``.../auroc/std``, ``auroc_mean`` ->
    ``auroc_std``), or None when the score has none."""
    for suffix in SPREAD_SUFFIXES:
        for separator in ("/", "_"):
            if key.endswith(separator + suffix):
                std = numbers.get(key[: -len(suffix)] + "std")
                if std is not None and math.isfinite(std):
                    return std
    return None


def machine_tolerance(key: str, committed: dict[str, float], config: RegressConfig) -> float:
    """How far a machine-sensitive number may move on a machine unlike the reference's: ``machine_stds``
    committed bootstrap stds of it plus its own tolerance, or ``machine_abs_tol`` where it has no std."""
    std = sibling_std(key, committed)
    if std is None:
        return max(config.machine_abs_tol, tolerance_for(key, committed[key], config))
    return tolerance_for(key, committed[key], config) + config.machine_stds * std


def compare(committed: dict[str, Any], fresh: dict[str, Any], config: RegressConfig,
            other_machine: bool = False) -> list[Difference]:
    """Every number of every file, committed against fresh, with its status (``other_machine``: the fresh
    numbers come from a machine unlike the reference's, see the module docstring)."""
    out: list[Difference] = []
    for name in sorted(set(committed) | set(fresh)):
        if name not in fresh:
            out.append(Difference(f"{name}:(whole file)", None, None, 0.0, "missing"))
            continue
        old = {f"{name}:{k}": v for k, v in flatten(committed[name]).items()} if name in committed else {}
        new = {f"{name}:{k}": v for k, v in flatten(fresh[name]).items()}
        for key in sorted(set(old) | set(new)):
            if any(fnmatch.fnmatch(key, pattern) for pattern in config.exclude):
                continue
            sensitive = other_machine and any(fnmatch.fnmatch(key, p) for p in config.machine_sensitive)
            if key not in new:  # on another machine a row keyed by its own scores (llm.json) moves with them
                out.append(Difference(key, old[key], None, 0.0, "machine" if sensitive else "missing"))
            elif key not in old:
                out.append(Difference(key, None, new[key], 0.0, "new"))
            else:
                tol = tolerance_for(key, old[key], config)
                a, b = old[key], new[key]
                same = (math.isnan(a) and math.isnan(b)) or (not math.isnan(a) and not math.isnan(b) and abs(b - a) <= tol)
                status = "ok" if same else "changed"
                if status == "changed" and sensitive:
                    tol = machine_tolerance(key, old, config)
                    status = "machine" if not math.isnan(a) and not math.isnan(b) and abs(b - a) <= tol else "changed"
                out.append(Difference(key, a, b, tol, status))
    return out


def diff_table(differences: list[Difference], show_all: bool = False) -> str:
    """A tabulate table of the differences (only those not ``ok`` unless ``show_all``)."""
    rows = [[d.key, d.committed, d.fresh, d.delta, d.tolerance, d.status]
            for d in differences if show_all or d.status != "ok"]
    if not rows:
        return "(no differences)"
    return tabulate(rows, headers=["key", "committed", "fresh", "Δ", "tolerance", "status"], tablefmt="github",
                    floatfmt=".6g", missingval="—")


def summary(differences: list[Difference]) -> dict[str, int]:
    """Counts per status."""
    counts = {status: 0 for status in STATUSES}
    for d in differences:
        counts[d.status] += 1
    return counts


def regress(root: str | Path = ".", params_path: str | Path = "params.yaml", show_all: bool = False,
            out=sys.stdout) -> int:
    """Compare the working tree's results with the committed ones; print the table; return the exit status."""
    root = Path(root)
    params = Path(params_path)
    config = regress_config(params if params.is_absolute() else root / params)
    return report(committed_results(root, config), fresh_results(root, config), config, f"{config.results}/",
                  show_all, out)


def report(committed: dict[str, Any], fresh: dict[str, Any], config: RegressConfig, where: str,
           show_all: bool = False, out=sys.stdout, machine: list[tuple[str, str, str]] | None = None) -> int:
    """Compare, print the summary line and the diff table; return the exit status (1 on a failure).

    ``machine``: the fingerprint fields in which this machine differs from the reference's (see
    :func:`machine_differences`); when there are any, machine-sensitive numbers do not fail.
    """
    if machine:
        print("regress: this machine differs from the reference's (machine.json) in:", file=out)
        print(tabulate(machine, headers=["field", "reference", "this machine"], tablefmt="github"), file=out)
        print("regress: numbers matching regress.machine_sensitive that differ are reported as 'machine', not failures; "
              "regenerate the reference on this kind of machine to compare them strictly", file=out)
    differences = compare(committed, fresh, config, other_machine=bool(machine))
    counts = summary(differences)
    print(f"regress: {len(committed)} committed file(s) at {config.ref}, {len(fresh)} fresh file(s) in {where} "
          f"({config.files}); {len(differences)} number(s): " + ", ".join(f"{k} {v}" for k, v in counts.items()),
          file=out)
    print(diff_table(differences, show_all), file=out)
    if not committed:
        print(f"regress: warning: nothing committed under {config.results}/ at {config.ref}; nothing to regress against",
              file=out)
    failed = counts["changed"] + counts["missing"]
    print(f"regress: {'FAILED' if failed else 'passed'}" + (f" ({failed} failure(s))" if failed else ""), file=out)
    return 1 if failed else 0


def copy_worktree(root: Path, target: Path) -> int:
    """Copy the repository's tracked and untracked-but-not-ignored files into ``target``; returns the count."""
    names = [n for n in _git(root, "ls-files", "-co", "--exclude-standard", "-z").split("\0") if n]
    copied = 0
    for name in names:
        source = root / name
        if source.is_file() and not source.is_symlink():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            copied += 1
    return copied


def scratch_env(workdir: Path) -> dict[str, str]:
    """Environment of commands run in a scratch copy: this interpreter's tools first on PATH, and the scratch
    copy's code first on PYTHONPATH (an editable install would otherwise import the original checkout's)."""
    bin_dir = str(Path(sys.executable).parent)
    pythonpath = os.pathsep.join(p for p in (str(workdir), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYTHONPATH": pythonpath,
            "DVC_NO_ANALYTICS": "1"}


def make_scratch_copy(root: Path, workdir: Path) -> int:
    """Copy the working tree into the empty (or new) ``workdir`` without its ``results/``, so that every
    result there comes from the scratch run; returns the number of files copied."""
    if workdir.exists() and any(workdir.iterdir()):
        raise ConfigError(f"{workdir}: scratch folder is not empty; remove it or pass another --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    count = copy_worktree(root, workdir)
    shutil.rmtree(workdir / "results", ignore_errors=True)
    return count


def run_profile(root: Path, profile: str, workdir: Path, out=sys.stdout) -> Path:
    """Run the whole pipeline under ``profile`` in a fresh copy of the working tree at ``workdir``."""
    count = make_scratch_copy(root, workdir)
    print(f"regress: copied {count} files to {workdir}; profile {profile}", file=out, flush=True)
    bin_dir = str(Path(sys.executable).parent)
    env = scratch_env(workdir)
    for command in (["git", "init", "-q"], [str(Path(bin_dir) / "eagrl"), "configure", "--profile", profile],
                    [str(Path(bin_dir) / "dvc"), "repro", "--force"]):
        print(f"regress: $ {' '.join(command)}", file=out, flush=True)
        if subprocess.run(command, cwd=workdir, env=env).returncode != 0:
            raise ConfigError(f"`{' '.join(command)}` failed in {workdir} (its output is above); the scratch copy "
                              f"is kept for inspection")
    return workdir


def regress_profile(root: str | Path, profile: str, workdir: str | Path | None = None, fresh: str | Path | None = None,
                    update: bool = False, show_all: bool = False, out=sys.stdout) -> int:
    """Run ``profile`` in a scratch copy (or read ``fresh``) and compare with its committed reference."""
    root = Path(root).resolve()
    name = Path(profile).stem
    if fresh is None:
        scratch = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"eagrl-regress-{name}-"))
        fresh = run_profile(root, profile, scratch.resolve(), out)
    fresh = Path(fresh)
    config = regress_config(fresh / "params.yaml")
    if name not in config.profiles:
        raise ConfigError(f"{fresh / 'params.yaml'}: regress.profiles has no entry '{name}'; add "
                          f"'{name}: results/{name}' (the folder of its committed reference)")
    reference = config.profiles[name]
    produced = fresh_results(fresh, config, top_level_only=True)
    if update:
        target = root / reference
        target.mkdir(parents=True, exist_ok=True)
        for file in sorted((fresh / config.results).glob("*")):
            if file.is_file() and file.suffix in (".json", ".md", ".csv"):
                shutil.copy2(file, target / file.name)
        (target / MACHINE_FILE).write_text(json.dumps(machine_fingerprint(), indent=2) + "\n")
        print(f"regress: reference of profile '{name}' written to {reference}/ ({len(produced)} JSON file(s)) with "
              f"this machine's fingerprint ({MACHINE_FILE}); commit it", file=out)
        return 0
    reference_config = replace(config, results=reference)
    machine = machine_differences(committed_machine(root, reference_config), machine_fingerprint())
    return report(committed_results(root, reference_config), produced, reference_config, f"{fresh}/{config.results}/",
                  show_all, out, machine)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl regress``."""
    parser = subparsers.add_parser("regress", help="Compare results/*.json with the committed versions (make regress).",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="params.yaml section 'regress':\n" + describe(RegressConfig))
    parser.add_argument("--root", default=".", help="Repository root.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--all", action="store_true", help="Show every compared number, not only the differences.")
    parser.add_argument("--profile", help="Run this profile (e.g. profiles/ci.yaml) in a scratch copy and compare with "
                                          "its committed reference (regress.profiles) instead of results/ (see above).")
    parser.add_argument("--workdir", help="Scratch folder of --profile (default: a new temporary folder).")
    parser.add_argument("--fresh", help="With --profile: compare the results already in this scratch folder (no run).")
    parser.add_argument("--update", action="store_true", help="With --profile: write the reference instead of comparing.")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    if args.profile:
        status = regress_profile(args.root, args.profile, args.workdir, args.fresh, args.update, args.all)
    else:
        status = regress(args.root, args.params, args.all)
    if status:
        raise SystemExit(status)


def main(argv: list[str] | None = None) -> int:
    """``python -m eagrl.ops.regress``."""
    parser = argparse.ArgumentParser(prog="python -m eagrl.ops.regress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=".")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    try:
        return regress(args.root, args.params, args.all)
    except ConfigError as error:
        print(f"regress: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
