"""External reference numbers: a peer benchmark's published results on the same test splits, beside ours.

ClinicRealm (``external/clinicrealm.csv`` + ``.yaml``; their repository, file and commit in the YAML) reports
deep-learning experts and zero-shot LLMs on the TJH and MIMIC-IV 200-patient test splits this suite builds. They
are *not* the EAG-RL paper's numbers (that is :mod:`benchmark.reports.paper.compare`), but they tell a reader whether our
experts land where an independent run of the same models on the same patients landed.

Each of their rows (data set, task, method, setting, metric) is placed on our side by the YAML's ``match`` table
(their names → our descriptor fields) and judged by a z-score of the two bootstrap means::

    z = (ours − theirs) / sqrt(ours_std² + theirs_std²)          (both on the 0-1 scale)

ours_std is the bootstrap std our metrics file carries (``metrics.bootstrap_resamples`` resamples), theirs the
std of their 100 resamples. Verdicts:

* **consistent** — ``|z| ≤ 1.96``: the two runs agree within their bootstrap spread;
* **differs** — ``|z| > 1.96``;
* **not reproduced** — an expert row with no metrics file of ours (or no number in it); the note says whether
  the data set is absent from this profile (``params.yaml: datasets``) or configured but not run;
* **no counterpart** — an LLM row that no local model fills yet: any local Hugging Face model directory of that
  name as ``llm.backbone.source`` (scored by our zero-shot ``vanilla`` method) fills it.

The z treats the two stds as independent, but both runs score the same 200 patients, whose sampling noise they
share: the true spread of the difference is smaller, so "consistent" is lenient and "differs" is firm. Their
prompt and training code are not ours either: a "differs" says the runs differ, not which one is wrong.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.config import ConfigError, ParamsSource, from_mapping, load_params, option
from benchmark.reports.collect import Record, collect, report_config
from benchmark.reports.paper.compare import find_record
from benchmark.runtime import atomic_write_json, atomic_write_text
from benchmark.tables import csv_text, markdown_table

FOLDER = Path(__file__).with_name("external")
NAME = "clinicrealm"
CSV_COLUMNS = ("family", "method", "setting", "dataset", "task", "metric", "mean_x100", "std_x100")
Z_CRITICAL = 1.96
CONSISTENT, DIFFERS, NOT_REPRODUCED, NO_COUNTERPART = "consistent", "differs", "not reproduced", "no counterpart"
VERDICTS = (CONSISTENT, DIFFERS, NOT_REPRODUCED, NO_COUNTERPART)
COLUMNS = ["dataset", "task", "method", "setting", "comparator", "ours_method", "metric", "ours_mean", "ours_std", "theirs_mean",
           "theirs_std", "z", "verdict", "n", "note", "metrics_file"]


@dataclass
class Source:
    """Where the reference numbers were published (``source`` of the YAML)."""

    repository: str = option(help="GitHub owner/name of the publishing repository, e.g. yhzhu99/ehr-llm-benchmark.")
    file: str = option(help="File of that repository the numbers were transcribed from.")
    commit: str = option(help="The 40-hex commit of that file that was transcribed.")
    caption: str = option("", help="Their caption on how the numbers were computed (quoted).")


@dataclass
class Match:
    """Their names → ours (``match`` of the YAML)."""

    dataset: dict[str, str] = option(help="Their data set -> a key of params.yaml `datasets` (e.g. tjh, mimic_iv).")
    task: dict[str, str] = option(help="Their task -> our task (mortality, readmission).")
    method: list[dict[str, Any]] = option(help="List of {method, setting, ours: {method, family?, backbone?: [names]}}.")


@dataclass
class ReferenceFile:
    """The reference YAML (e.g. ``external/clinicrealm.yaml``)."""

    name: str = option(help="Name shown in the tables, e.g. ClinicRealm.")
    source: Source = option(help="repository, file, commit (and caption) of the published numbers.")
    bootstrap: int = option(help="Bootstrap resamples behind their std (ClinicRealm: 100).", minimum=1)
    scale: float = option(help="Their numbers are multiplied by this (ClinicRealm: 100).", minimum=1e-9)
    match: Match = option(help="dataset / task / method tables mapping their names to ours.")


@dataclass(frozen=True)
class Counterpart:
    """Our side of one of their (method, setting): descriptor fields, and backbone names for LLM rows."""

    method: str
    family: str | None = None
    backbones: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How the tables name it, e.g. ``concare`` or ``vanilla on Qwen2.5-7B-Instruct``."""
        return self.method + (f" on {self.backbones[0]}" if self.backbones else "")


@dataclass
class Reference:
    """A loaded reference: its provenance, its rows (0-1 scale) and where each row goes on our side."""

    meta: ReferenceFile
    rows: list[dict[str, Any]] = field(default_factory=list)
    counterparts: dict[tuple[str, str], Counterpart] = field(default_factory=dict)
    path: Path = FOLDER / f"{NAME}.yaml"


def _fail(path: Path, where: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}; {fix}")


def _counterparts(path: Path, entries: list[dict[str, Any]]) -> dict[tuple[str, str], Counterpart]:
    out = {}
    for i, entry in enumerate(entries):
        where = f"match.method[{i}]"
        ours = entry.get("ours") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not entry.get("method") or not entry.get("setting") or not isinstance(ours, dict):
            raise _fail(path, where, f"got {entry!r}", "write {method: <theirs>, setting: <theirs>, ours: {method: <ours>}}")
        if not ours.get("method"):
            raise _fail(path, f"{where}.ours.method", "missing", "name our method (a descriptor 'method', e.g. concare)")
        backbones = ours.get("backbone") or []
        backbones = [backbones] if isinstance(backbones, str) else backbones
        out[(entry["method"], entry["setting"])] = Counterpart(ours["method"], ours.get("family"), tuple(backbones))
    return out


def load_reference(folder: str | Path = FOLDER, name: str = NAME) -> Reference:
    """Read ``<folder>/<name>.yaml`` and ``<name>.csv``; a bad or missing field is a one-line
    :class:`~benchmark.config.ConfigError` naming the file, the field and the fix."""
    folder = Path(folder)
    path, table = folder / f"{name}.yaml", folder / f"{name}.csv"
    for needed in (path, table):
        if not needed.is_file():
            raise ConfigError(f"{needed}: file not found; restore it from git (benchmark/reports/paper/external/)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); fix the syntax") from None
    meta = from_mapping(ReferenceFile, data if isinstance(data, dict) else {}, str(path))
    commit = meta.source.commit
    if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit.lower()):
        raise _fail(path, "source.commit", f"{commit!r} is not a 40-hex commit", "give the full commit hash")
    counterparts = _counterparts(path, meta.match.method)
    reference = Reference(meta, [], counterparts, path)
    with table.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise _fail(table, "header", f"{reader.fieldnames}", f"the columns must be {','.join(CSV_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            reference.rows.append(_row(table, path, line, row, reference))
    return reference


def _row(table: Path, path: Path, line: int, row: dict[str, str], reference: Reference) -> dict[str, Any]:
    """One CSV row checked and placed: numbers on the 0-1 scale, our data set and task names."""
    match = reference.meta.match
    for key, known in (("dataset", match.dataset), ("task", match.task)):
        if row[key] not in known:
            raise _fail(path, f"match.{key}", f"no entry for {row[key]!r} ({table.name} line {line})",
                        f"add {row[key]}: <our {key}>")
    if (row["method"], row["setting"]) not in reference.counterparts:
        raise _fail(path, "match.method", f"no entry for {row['method']!r} / {row['setting']!r} ({table.name} line {line})",
                    "add {method: ..., setting: ..., ours: {method: ...}} or drop the row from the csv")
    values = {}
    for key in ("mean_x100", "std_x100"):
        try:
            values[key] = float(row[key]) / reference.meta.scale
        except (TypeError, ValueError):
            raise _fail(table, f"line {line}, {key}", f"{row[key]!r} is not a number", "copy the number as published") from None
    return {**row, "dataset": match.dataset[row["dataset"]], "task": match.task[row["task"]],
            "mean": values["mean_x100"], "std": values["std_x100"]}


def z_score(ours_mean: float, ours_std: float, theirs_mean: float, theirs_std: float) -> float:
    """(ours − theirs) / sqrt(ours_std² + theirs_std²), all on one scale; ±inf when both stds are 0 and the
    means differ, 0 when they are equal, NaN when a number is missing."""
    values = (ours_mean, ours_std, theirs_mean, theirs_std)
    if any(v is None or math.isnan(v) for v in values):
        return math.nan
    spread = math.sqrt(ours_std ** 2 + theirs_std ** 2)
    difference = ours_mean - theirs_mean
    if spread == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / spread


def z_verdict(z: float) -> str:
    """consistent when ``|z| ≤ 1.96``, differs beyond (a NaN z is an error: there is nothing to judge)."""
    if math.isnan(z):
        raise ValueError("z is NaN: no verdict (one of the numbers is missing)")
    return CONSISTENT if abs(z) <= Z_CRITICAL else DIFFERS


def _find(records: list[Record], counterpart: Counterpart, dataset: str, task: str) -> Record | None:
    match = {"method": counterpart.method, **({"family": counterpart.family} if counterpart.family else {})}
    for backbone in counterpart.backbones or (None,):
        record = find_record(records, match, backbone, dataset, task)
        if record is not None:
            return record
    return None


def compare_external(records: list[Record], reference: Reference, configured: Iterable[str] = (),
                     datasets: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per reference row (of ``datasets``, default all): ours and theirs (mean, std), z and a verdict.

    ``records``: the collected metrics files (:func:`benchmark.reports.collect.collect`); ``configured``: the data
    sets of this profile (for the note of a "not reproduced" row). See the module docstring for the verdicts.
    """
    configured, wanted = set(configured), None if datasets is None else set(datasets)
    rows = []
    for ref in reference.rows:
        if wanted is not None and ref["dataset"] not in wanted:
            continue
        counterpart = reference.counterparts[(ref["method"], ref["setting"])]
        record = _find(records, counterpart, ref["dataset"], ref["task"])
        summary = record.summary(ref["metric"]) if record else {"mean": math.nan, "std": math.nan}
        z = z_score(summary["mean"], summary["std"], ref["mean"], ref["std"])
        if not math.isnan(z):
            verdict, note = z_verdict(z), ""
        elif counterpart.backbones:
            verdict = NO_COUNTERPART
            note = f"a local HF model folder named {' or '.join(counterpart.backbones)} (llm.backbone.source) fills it"
        else:
            verdict = NOT_REPRODUCED
            note = ("no metrics file of ours (or no number in it)" if ref["dataset"] in configured
                    else f"data set {ref['dataset']} is not in this profile (params.yaml: datasets)")
        rows.append({
            "dataset": ref["dataset"], "task": ref["task"], "method": ref["method"], "setting": ref["setting"],
            "comparator": "llm" if counterpart.backbones else "expert", "ours_method": counterpart.label, "metric": ref["metric"],
            "ours_mean": None if math.isnan(summary["mean"]) else summary["mean"],
            "ours_std": None if math.isnan(summary["std"]) else summary["std"],
            "theirs_mean": ref["mean"], "theirs_std": ref["std"], "z": None if math.isnan(z) else z,
            "verdict": verdict, "n": record.metrics.get("n") if record else None, "note": note,
            "metrics_file": record.path.as_posix() if record else "",
        })
    return sorted(rows, key=lambda r: (r["dataset"], r["task"]))  # their row order within a (data set, task)


def display_value(mean: float | None, std: float | None) -> str:
    """``mean ± std`` to three decimals, ``—`` when there is no number."""
    return "—" if mean is None else f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def display_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the Markdown tables show them: ``mean ± std`` cells, z to two decimals."""
    return [{"dataset": r["dataset"], "task": r["task"], "theirs": f"{r['method']} ({r['setting']})",
             "ours": r["ours_method"], "metric": r["metric"].upper(), "ours mean ± std": display_value(r["ours_mean"], r["ours_std"]),
             "theirs mean ± std": display_value(r["theirs_mean"], r["theirs_std"]),
             "z": "—" if r["z"] is None else f"{r['z']:+.2f}", "verdict": r["verdict"], "note": r["note"]} for r in rows]


def intro(rows: list[dict[str, Any]], reference: Reference) -> str:
    """The paragraph above the table: source, commit, bootstrap counts, how to read z, the verdict counts."""
    meta, counts = reference.meta, {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    return (f"A peer benchmark's published numbers, **not the EAG-RL paper's**: {meta.name} "
            f"(`{meta.source.repository}`, `{meta.source.file}` at commit `{meta.source.commit[:12]}`), on the same "
            f"200-patient TJH and MIMIC-IV test splits; mean ± std over their {meta.bootstrap} bootstrap resamples, "
            f"published ×{meta.scale:g} and shown here on our 0–1 scale. Ours: the bootstrap mean ± std of our metrics "
            f"files. z = (ours − theirs) / √(ours_std² + theirs_std²): **consistent** at |z| ≤ {Z_CRITICAL}, "
            f"**differs** beyond (both runs score the same patients, so this z is lenient). Expert rows are their "
            f"full-shot models beside ours of the same name. LLM rows are Table-3-style comparators (open medical / "
            f"reasoning LLMs, zero-shot with their base prompt) beside our `vanilla` prompting method: any local "
            f"Hugging Face model folder of that name as `llm.backbone.source` fills them, and until one is run they "
            f"read 'no counterpart'. Rows: `benchmark/reports/paper/external/{NAME}.csv`; matching: `{NAME}.yaml`. Verdict "
            f"counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")


def section_text(rows: list[dict[str, Any]], reference: Reference, heading: str = "##") -> str:
    """A Markdown section "External reference (<name>)": intro and table (for results/paper_comparison.md)."""
    return (f"\n{heading} External reference ({reference.meta.name})\n\n{intro(rows, reference)}\n\n"
            + markdown_table(display_rows(rows)) + "\n")


def write_external(rows: list[dict[str, Any]], stem: str | Path, reference: Reference) -> list[Path]:
    """``<stem>.md`` (title, intro, table of ``mean ± std`` cells), ``.csv`` and ``.json`` (numbers)."""
    stem = Path(stem)
    body = section_text(rows, reference, "#").lstrip("\n")
    return [atomic_write_text(stem.with_suffix(".md"), body),
            atomic_write_text(stem.with_suffix(".csv"), csv_text(rows, COLUMNS)),
            atomic_write_json(stem.with_suffix(".json"), {"source": {"name": reference.meta.name,
                              **asdict(reference.meta.source), "bootstrap": reference.meta.bootstrap,
                              "scale": reference.meta.scale}, "rows": rows})]


def write_reference_tables(params: ParamsSource, root: str | Path, stem: str | Path,
                           datasets: Iterable[str] | None = None) -> list[Path]:
    """Collect the metrics files of ``params``'s ``report.sources`` under ``root``, compare them with the
    shipped reference (rows of ``datasets`` only, default all) and :func:`write_external` to ``stem``."""
    reference = load_reference()
    records = collect(report_config(params), root).records
    configured = load_params(params).get("datasets") or {}
    return write_external(compare_external(records, reference, configured, datasets), stem, reference)


def rows_json(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a written ``external_reference.json`` (for reports built on top of it)."""
    return json.loads(Path(path).read_text())["rows"]
