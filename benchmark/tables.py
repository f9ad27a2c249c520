"""Writing result tables: one call gives Markdown (tabulate), CSV and JSON of the same rows, atomically."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from benchmark.runtime import atomic_write_text


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (dicts) in column order ``columns``."""
    columns = list(columns or (rows[0].keys() if rows else []))
    return tabulate([[row.get(c, "") for c in columns] for row in rows], headers=columns, tablefmt="github",
                    floatfmt=floatfmt)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text of ``rows`` with a header line."""
    columns = list(columns or (rows[0].keys() if rows else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_table(rows: Sequence[dict[str, Any]], stem: str | Path, title: str, intro: str = "",
                columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> list[Path]:
    """Write ``<stem>.md`` (title, intro, table), ``<stem>.csv`` and ``<stem>.json``; returns the paths."""
    stem = Path(stem)
    body = f"# {title}\n\n" + (intro.strip() + "\n\n" if intro else "") + markdown_table(rows, columns, floatfmt) + "\n"
    paths = [
        atomic_write_text(stem.with_suffix(".md"), body),
        atomic_write_text(stem.with_suffix(".csv"), csv_text(rows, columns)),
        atomic_write_text(stem.with_suffix(".json"), json.dumps(list(rows), indent=2, default=str) + "\n"),
    ]
    return paths
