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
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from benchmark.config import ConfigError
from benchmark.stage_cli import add_params, params_epilog, stage_parser
from eagrl.ops.regress_config import MACHINE_FILE, RegressConfig, regress_config
from eagrl.ops.regress_machine import committed_machine, machine_differences, machine_fingerprint
from eagrl.ops.regress_report import report
from eagrl.ops.regress_results import committed_results, fresh_results
from eagrl.ops.scratch import run_profile


def regress(root: str | Path = ".", params_path: str | Path = "params.yaml", show_all: bool = False,
            out=sys.stdout) -> int:
    """Compare the working tree's results with the committed ones; print the table; return the exit status."""
    root = Path(root)
    params = Path(params_path)
    config = regress_config(params if params.is_absolute() else root / params)
    return report(committed_results(root, config), fresh_results(root, config), config, f"{config.results}/",
                  show_all, out)


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
    parser = stage_parser(subparsers, "regress", "Compare results/*.json with the committed versions (make regress).",
                          __doc__, params_epilog("regress", RegressConfig), params=False)
    parser.add_argument("--root", default=".", help="Repository root.")
    add_params(parser, read=False)  # relative to --root
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
