"""Stage ``evaluate``: a predictions file → a metrics file with bootstrap confidence intervals.

Every method (expert, prompted LLM, trained LLM) writes one predictions file per (data set, task, method,
condition) with :func:`write_predictions`; this module is the only place they are scored
(:mod:`benchmark.metrics` holds the definitions, the bootstrap and the unparsable rule).

The predictions file
--------------------
A CSV with one row per test patient and the columns

* ``id`` — patient id (unique; a string),
* ``label`` — the true outcome, 0 or 1,
* ``probability`` — the predicted probability of the positive outcome in [0, 1]; empty when the answer
  could not be parsed,
* ``parsed`` — ``True``/``False``: whether a probability could be read from the method's output
  (always True for experts),
* ``completion`` — optional, LLM methods only: the raw generated text, kept for audit.

``parsed=False`` rows are never dropped: they are counted and scored with ``metrics.unparsable``.

The metrics file (``eagrl evaluate PREDICTIONS.csv --out metrics.json``)
------------------------------------------------------------------------
A JSON object with ``n``, ``positives``, ``parse_failures``, ``parse_failure_rate``, one entry per metric
(``auroc``, ``auprc``, ``minpse``, ``f1``, ``accuracy``), each ``{point, mean, std, ci_low, ci_high}``,
``config`` (the :class:`~benchmark.metrics.MetricsConfig` used) and ``predictions`` (the input path).
The predictions of an LLM (a file with a ``completion`` column) are scored under the other unparsable rule
too, under that rule's name: with the default ``metrics.unparsable: uninformative`` the key ``worst_case``
holds the same metric entries with every unparsable answer scored confidently wrong (a lower bound beside
the 0.5 rule). The block is there even without failures (it then repeats the metrics), so tables of LLM
results are uniform. With ``--against OTHER.csv`` it adds ``paired``: the paired bootstrap test of this file against the other
(same patients required), per metric ``{difference, mean, std, ci_low, ci_high, p_value}``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config import ParamsSource, from_mapping, load_params, to_mapping
from benchmark.metrics import (
    METRICS,
    UNPARSABLE_RULES,
    MetricsConfig,
    bootstrap,
    paired_bootstrap,
    resolve_unparsable,
)
from benchmark.runtime import LOGGER, atomic_write_json, atomic_write_text, configure_logging
from benchmark.stage_cli import add_params, params_epilog, stage_parser

REQUIRED_COLUMNS = ("id", "label", "probability", "parsed")
OPTIONAL_COLUMNS = ("completion",)
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class PredictionsError(ValueError):
    """A predictions file is malformed; the message names the file, the column and the row."""


def metrics_config(params: ParamsSource = "params.yaml") -> MetricsConfig:
    """The ``metrics`` section of a params file as a :class:`MetricsConfig` (defaults where absent)."""
    params = load_params(params)
    return from_mapping(MetricsConfig, params.get("metrics"), f"{params}: metrics")


def write_predictions(path: str | Path, ids: Sequence[Any], labels: Sequence[int] | np.ndarray,
                      probabilities: Sequence[float] | np.ndarray, parsed: Sequence[bool] | np.ndarray | None = None,
                      completions: Sequence[str] | None = None) -> Path:
    """Write a predictions file (atomically) in the format above and return its path.

    ``parsed`` defaults to "probability is not NaN". A row with ``parsed`` False must have a NaN
    probability (it is written empty); a row with ``parsed`` True must have a probability in [0, 1].
    """
    path = Path(path)
    n = len(ids)
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    parsed_arr = ~np.isnan(probabilities) if parsed is None else np.asarray(parsed, dtype=bool)
    lengths = {"labels": len(labels), "probabilities": len(probabilities), "parsed": len(parsed_arr)}
    if completions is not None:
        lengths["completions"] = len(completions)
    for name, length in lengths.items():
        if length != n:
            raise PredictionsError(f"{path}: {name} has {length} entries but there are {n} ids")
    frame = pd.DataFrame({"id": [str(i) for i in ids], "label": labels, "probability": probabilities,
                          "parsed": parsed_arr})
    if completions is not None:
        frame["completion"] = [str(c) for c in completions]
    _validate(frame, path)
    lines = []
    header = list(REQUIRED_COLUMNS) + (["completion"] if completions is not None else [])
    for row in frame.itertuples(index=False):
        probability = "" if math.isnan(row.probability) else repr(float(row.probability))
        cells = [row.id, str(int(row.label)), probability, str(bool(row.parsed))]
        if completions is not None:
            cells.append(row.completion)
        lines.append(cells)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return atomic_write_text(path, buffer.getvalue())


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and check a predictions file; errors name the file, the column and the offending row.

    Returns a frame with ``id`` (str), ``label`` (int 0/1), ``probability`` (float, NaN if unparsed),
    ``parsed`` (bool) and ``completion`` (str) when present.
    """
    path = Path(path)
    if not path.exists():
        raise PredictionsError(f"{path}: predictions file not found (run the method's stage first)")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PredictionsError(f"{path}: not a readable CSV ({error})") from error
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise PredictionsError(f"{path}: missing column(s) {missing}; a predictions file has columns "
                               f"{list(REQUIRED_COLUMNS)} (+ optional 'completion'), found {list(raw.columns)}")
    unknown = [c for c in raw.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise PredictionsError(f"{path}: unknown column(s) {unknown}; allowed are "
                               f"{list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
    if raw.empty:
        raise PredictionsError(f"{path}: no rows (a predictions file needs one row per test patient)")

    def row_of(position: int) -> int:
        return position + 2  # 1-based, after the header line

    labels = []
    for i, text in enumerate(raw["label"]):
        if text.strip() not in ("0", "1", "0.0", "1.0"):
            raise PredictionsError(f"{path}: column 'label', line {row_of(i)}: expected 0 or 1, got {text!r}")
        labels.append(int(float(text)))
    probabilities = []
    for i, text in enumerate(raw["probability"]):
        text = text.strip()
        if text == "" or text.lower() == "nan":
            probabilities.append(np.nan)
            continue
        try:
            value = float(text)
        except ValueError:
            raise PredictionsError(f"{path}: column 'probability', line {row_of(i)}: not a number: {text!r} "
                                   f"(leave it empty and set parsed=False for an unparsable answer)") from None
        probabilities.append(value)
    parsed = []
    for i, text in enumerate(raw["parsed"]):
        key = text.strip().lower()
        if key not in _TRUE | _FALSE:
            raise PredictionsError(f"{path}: column 'parsed', line {row_of(i)}: expected True or False, got {text!r}")
        parsed.append(key in _TRUE)
    frame = pd.DataFrame({"id": raw["id"].astype(str), "label": np.asarray(labels, dtype=np.int64),
                          "probability": np.asarray(probabilities, dtype=np.float64),
                          "parsed": np.asarray(parsed, dtype=bool)})
    if "completion" in raw.columns:
        frame["completion"] = raw["completion"].astype(str)
    _validate(frame, path)
    return frame


def _validate(frame: pd.DataFrame, path: Path | str) -> None:
    ids = frame["id"]
    if (ids.str.strip() == "").any():
        raise PredictionsError(f"{path}: column 'id', line {int(np.flatnonzero(ids.str.strip() == '')[0]) + 2}: empty id")
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise PredictionsError(f"{path}: column 'id': duplicated patient id(s) {duplicated[:5]}; one row per patient")
    bad_label = np.flatnonzero(~np.isin(frame["label"].to_numpy(), (0, 1)))
    if bad_label.size:
        raise PredictionsError(f"{path}: column 'label', line {int(bad_label[0]) + 2}: labels must be 0 or 1")
    p = frame["probability"].to_numpy(dtype=np.float64)
    parsed = frame["parsed"].to_numpy(dtype=bool)
    with np.errstate(invalid="ignore"):
        out_of_range = np.flatnonzero(~np.isnan(p) & ((p < 0) | (p > 1)))
    if out_of_range.size:
        i = int(out_of_range[0])
        raise PredictionsError(f"{path}: column 'probability', line {i + 2}: {p[i]} is outside [0, 1]")
    unparsed_with_value = np.flatnonzero(~parsed & ~np.isnan(p))
    if unparsed_with_value.size:
        i = int(unparsed_with_value[0])
        raise PredictionsError(f"{path}: column 'probability', line {i + 2}: parsed is False but a probability "
                               f"({p[i]}) is given; an unparsable answer has an empty probability")
    parsed_without_value = np.flatnonzero(parsed & np.isnan(p))
    if parsed_without_value.size:
        i = int(parsed_without_value[0])
        raise PredictionsError(f"{path}: column 'probability', line {i + 2}: parsed is True but the probability "
                               f"is empty; set parsed=False for an unparsable answer")


def evaluate(frame: pd.DataFrame, config: MetricsConfig | None = None) -> dict[str, Any]:
    """Score a predictions frame (from :func:`read_predictions`): bootstrap CIs per metric + counts.

    Unparsable rows are resolved with ``config.unparsable`` and counted in ``parse_failures``. An LLM's
    predictions (with completions) also get the metrics under every other rule, keyed by the rule's name
    (module docstring), so the effect of the rule on an LLM's score is always on record.
    """
    config = config or MetricsConfig()
    labels = frame["label"].to_numpy(dtype=np.int64)
    raw, parsed = frame["probability"].to_numpy(dtype=np.float64), frame["parsed"].to_numpy(dtype=bool)
    probabilities, failures = resolve_unparsable(labels, raw, parsed, config.unparsable)
    scores = bootstrap(labels, probabilities, config)
    n = int(labels.size)
    others = {}
    if "completion" in frame:
        for rule in (r for r in UNPARSABLE_RULES if r != config.unparsable):
            others[rule] = bootstrap(labels, resolve_unparsable(labels, raw, parsed, rule)[0], config)
    return {
        "n": n,
        "positives": int(labels.sum()),
        "parse_failures": failures,
        "parse_failure_rate": failures / n,
        **scores,
        **others,
        "config": to_mapping(config),
    }


def compare(frame_a: pd.DataFrame, frame_b: pd.DataFrame, config: MetricsConfig | None = None,
            names: tuple[str, str] = ("A", "B")) -> dict[str, dict[str, float]]:
    """Paired bootstrap test of predictions A against B (A − B); both must cover the same patients.

    Rows are matched by ``id``; labels must agree. Unparsable rows are resolved in each file first.
    """
    config = config or MetricsConfig()
    a = frame_a.set_index("id")
    b = frame_b.set_index("id")
    only_a = sorted(set(a.index) - set(b.index))
    only_b = sorted(set(b.index) - set(a.index))
    if only_a or only_b:
        raise PredictionsError(f"paired test needs the same patients: {len(only_a)} id(s) only in {names[0]} "
                               f"(e.g. {only_a[:3]}), {len(only_b)} only in {names[1]} (e.g. {only_b[:3]})")
    b = b.loc[a.index]
    disagree = a.index[a["label"].to_numpy() != b["label"].to_numpy()].tolist()
    if disagree:
        raise PredictionsError(f"paired test: column 'label' differs between {names[0]} and {names[1]} for "
                               f"id(s) {disagree[:5]}; they were not scored against the same outcomes")
    labels = a["label"].to_numpy(dtype=np.int64)
    pa, _ = resolve_unparsable(labels, a["probability"].to_numpy(np.float64), a["parsed"].to_numpy(bool),
                               config.unparsable)
    pb, _ = resolve_unparsable(labels, b["probability"].to_numpy(np.float64), b["parsed"].to_numpy(bool),
                               config.unparsable)
    return paired_bootstrap(labels, pa, pb, config)


def evaluate_file(predictions: str | Path, out: str | Path, params: ParamsSource = "params.yaml",
                  against: str | Path | None = None) -> dict[str, Any]:
    """Read a predictions file, score it, optionally test it against another, write ``out`` (JSON)."""
    configure_logging()
    config = metrics_config(params)
    frame = read_predictions(predictions)
    if frame["label"].nunique() < 2:
        raise PredictionsError(f"{predictions}: column 'label': all {len(frame)} patients have label "
                               f"{int(frame['label'].iloc[0])}, so AUROC and AUPRC are undefined; evaluate a set "
                               f"with both outcomes (the whole test split, or a label-stratified subset)")
    result = evaluate(frame, config)
    result["predictions"] = str(predictions)
    if against is not None:
        result["paired"] = {"against": str(against),
                            **compare(frame, read_predictions(against), config, (str(predictions), str(against)))}
    atomic_write_json(out, result)
    summary = ", ".join(f"{m} {result[m]['mean']:.3f}±{result[m]['std']:.3f}" for m in METRICS)
    LOGGER.info("evaluate %s: n=%d positives=%d parse failures=%d; %s -> %s", predictions, result["n"],
                result["positives"], result["parse_failures"], summary, out)
    return result


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl evaluate``."""
    parser = stage_parser(subparsers, "evaluate", "Score a predictions file: metrics with bootstrap CIs (JSON).",
                          __doc__, params_epilog("metrics", MetricsConfig), params=False)
    parser.add_argument("predictions", help="Predictions CSV (id,label,probability,parsed[,completion]).")
    parser.add_argument("--out", required=True, help="Metrics JSON to write.")
    add_params(parser, help="Params file with the 'metrics' section.")
    parser.add_argument("--against", default=None,
                        help="Another predictions file on the same patients: adds a paired bootstrap test.")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> None:
    try:
        evaluate_file(args.predictions, args.out, args.params, args.against)
    except PredictionsError as error:
        print(f"eagrl evaluate: {error}", file=sys.stderr)
        raise SystemExit(2) from None
