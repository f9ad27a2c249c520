"""Reporting a comparison: the summary line, the diff table and the exit status of ``eagrl regress``."""

from __future__ import annotations

import sys
from typing import Any

from tabulate import tabulate

from eagrl.ops.regress_compare import STATUSES, Difference, compare
from eagrl.ops.regress_config import RegressConfig


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


def report(committed: dict[str, Any], fresh: dict[str, Any], config: RegressConfig, where: str,
           show_all: bool = False, out=sys.stdout, machine: list[tuple[str, str, str]] | None = None) -> int:
    """Compare, print the summary line and the diff table; return the exit status (1 on a failure).

    ``machine``: the fingerprint fields in which this machine differs from the reference's (see
    :func:`eagrl.ops.regress_machine.machine_differences`); when there are any, machine-sensitive numbers do not fail.
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
