"""The predictions-file API and the `eagrl evaluate` stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as sk

from benchmark.evaluate import (
    PredictionsError,
    compare,
    evaluate,
    read_predictions,
    write_predictions,
)
from benchmark.metrics import METRICS, MetricsConfig
from eagrl.cli import main

SMALL = MetricsConfig(bootstrap_resamples=100)


def _predictions(seed: int = 0, n: int = 80):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    p = np.clip(0.4 * y + rng.normal(0.3, 0.2, n), 0, 1)
    return [f"P{i:03d}" for i in range(n)], y, p


def test_round_trip_with_completions(tmp_path):
    ids, y, p = _predictions()
    p[[3, 10]] = np.nan
    completions = [f'answer, "quoted"\nline {i}' for i in range(len(ids))]
    path = write_predictions(tmp_path / "pred.csv", ids, y, p, completions=completions)
    frame = read_predictions(path)
    assert list(frame.columns) == ["id", "label", "probability", "parsed", "completion"]
    assert frame["id"].tolist() == ids
    assert frame["label"].tolist() == y.tolist()
    assert np.allclose(frame["probability"], p, equal_nan=True)
    assert frame["parsed"].tolist() == [i not in (3, 10) for i in range(len(ids))]
    assert frame["completion"].tolist() == completions


def test_ids_stay_strings(tmp_path):
    path = write_predictions(tmp_path / "p.csv", ["007", "10"], [0, 1], [0.1, 0.9])
    assert read_predictions(path)["id"].tolist() == ["007", "10"]


def test_evaluate_matches_sklearn_and_counts_failures(tmp_path):
    ids, y, p = _predictions(1)
    p_missing = p.copy()
    p_missing[[0, 5, 7]] = np.nan
    frame = read_predictions(write_predictions(tmp_path / "p.csv", ids, y, p_missing))
    result = evaluate(frame, SMALL)
    assert result["n"] == len(ids) and result["positives"] == int(y.sum())
    assert result["parse_failures"] == 3
    assert result["parse_failure_rate"] == pytest.approx(3 / len(ids))
    filled = p_missing.copy()
    filled[[0, 5, 7]] = 0.5  # the default rule: uninformative
    assert result["auroc"]["point"] == pytest.approx(sk.roc_auc_score(y, filled))
    assert result["auprc"]["point"] == pytest.approx(sk.average_precision_score(y, filled))
    for name in METRICS:
        assert set(result[name]) == {"point", "mean", "std", "ci_low", "ci_high"}
    worst = evaluate(frame, MetricsConfig(bootstrap_resamples=100, unparsable="worst_case"))
    assert worst["parse_failures"] == 3
    assert worst["auroc"]["point"] < result["auroc"]["point"]


def test_llm_predictions_are_also_scored_worst_case(tmp_path):
    """With completions (an LLM's file) the other unparsable rule is scored too, with or without failures."""
    ids, y, p = _predictions(2)
    p[[1, 2, 4, 9]] = np.nan
    completions = ["..."] * len(ids)
    frame = read_predictions(write_predictions(tmp_path / "llm.csv", ids, y, p, completions=completions))
    result = evaluate(frame, SMALL)
    worst = p.copy()
    worst[[1, 2, 4, 9]] = 1 - y[[1, 2, 4, 9]]
    assert set(result["worst_case"]) == set(METRICS)
    assert result["worst_case"]["auroc"]["point"] == pytest.approx(sk.roc_auc_score(y, worst))
    assert result["worst_case"]["auprc"]["point"] == pytest.approx(sk.average_precision_score(y, worst))
    assert result["worst_case"]["auroc"]["mean"] < result["auroc"]["mean"]
    assert "uninformative" not in result
    # Under the worst-case rule the other block is the 0.5 rule's.
    flipped = evaluate(frame, MetricsConfig(bootstrap_resamples=100, unparsable="worst_case"))
    assert flipped["uninformative"]["auroc"] == result["auroc"] and flipped["auroc"] == result["worst_case"]["auroc"]
    # Present without failures too (then equal to the main metrics); never for files without completions.
    complete = read_predictions(write_predictions(tmp_path / "all.csv", ids, y, _predictions(2)[2],
                                                  completions=completions))
    assert evaluate(complete, SMALL)["worst_case"]["auroc"] == evaluate(complete, SMALL)["auroc"]
    expert = read_predictions(write_predictions(tmp_path / "expert.csv", ids, y, _predictions(2)[2]))
    assert "worst_case" not in evaluate(expert, SMALL)


def test_compare_needs_same_patients(tmp_path):
    ids, y, p = _predictions(2)
    a = read_predictions(write_predictions(tmp_path / "a.csv", ids, y, p))
    b = read_predictions(write_predictions(tmp_path / "b.csv", ids[::-1], y[::-1], p[::-1]))
    same = compare(a, b, SMALL)  # row order does not matter: matched by id
    assert same["auroc"]["p_value"] == 1.0
    c = read_predictions(write_predictions(tmp_path / "c.csv", ids[:-1], y[:-1], p[:-1]))
    with pytest.raises(PredictionsError, match="same patients"):
        compare(a, c, SMALL)
    d = read_predictions(write_predictions(tmp_path / "d.csv", ids, 1 - y, p))
    with pytest.raises(PredictionsError, match="'label' differs"):
        compare(a, d, SMALL)


@pytest.mark.parametrize("content,match", [
    ("id,label,probability\nA,1,0.5\n", r"missing column\(s\) \['parsed'\]"),
    ("id,label,probability,parsed,extra\nA,1,0.5,True,x\n", r"unknown column\(s\) \['extra'\]"),
    ("id,label,probability,parsed\n", "no rows"),
    ("id,label,probability,parsed\nA,2,0.5,True\n", "column 'label', line 2"),
    ("id,label,probability,parsed\nA,1,0.5,True\nB,0,high,True\n", "column 'probability', line 3: not a number"),
    ("id,label,probability,parsed\nA,1,1.5,True\n", "column 'probability', line 2: 1.5 is outside"),
    ("id,label,probability,parsed\nA,1,0.5,maybe\n", "column 'parsed', line 2"),
    ("id,label,probability,parsed\nA,1,0.5,False\n", "parsed is False but a probability"),
    ("id,label,probability,parsed\nA,1,,True\n", "parsed is True but the probability is empty"),
    ("id,label,probability,parsed\nA,1,0.5,True\nA,0,0.2,True\n", r"column 'id': duplicated .*'A'"),
])
def test_bad_files_give_named_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(PredictionsError, match=match) as error:
        read_predictions(path)
    assert str(path) in str(error.value)


def test_missing_file_and_bad_writes(tmp_path):
    with pytest.raises(PredictionsError, match="not found"):
        read_predictions(tmp_path / "nope.csv")
    with pytest.raises(PredictionsError, match="labels has 1 entries but there are 2 ids"):
        write_predictions(tmp_path / "w.csv", ["a", "b"], [1], [0.1, 0.2])
    with pytest.raises(PredictionsError, match="parsed is False but a probability"):
        write_predictions(tmp_path / "w.csv", ["a", "b"], [1, 0], [0.1, 0.2], parsed=[True, False])
    assert not (tmp_path / "w.csv").exists()


def test_cli_writes_metrics_json(tmp_path, capsys):
    ids, y, p = _predictions(3)
    pred = write_predictions(tmp_path / "p.csv", ids, y, p)
    other = write_predictions(tmp_path / "q.csv", ids, y, np.full(len(ids), 0.3))
    params = tmp_path / "params.yaml"
    params.write_text("metrics:\n  bootstrap_resamples: 50\n  seed: 1\n")
    out = tmp_path / "m.json"
    assert main(["evaluate", str(pred), "--out", str(out), "--params", str(params), "--against", str(other)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["bootstrap_resamples"] == 50 and result["config"]["seed"] == 1
    assert result["auroc"]["point"] == pytest.approx(sk.roc_auc_score(y, p))
    assert result["paired"]["auroc"]["difference"] == pytest.approx(sk.roc_auc_score(y, p) - 0.5)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nA,1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(bad), "--out", str(out), "--params", str(params)])
    assert exit_info.value.code == 2
    assert "missing column" in capsys.readouterr().err
    params.write_text("metrics:\n  resamples: 50\n")
    assert main(["evaluate", str(pred), "--out", str(out), "--params", str(params)]) == 2
    assert "unknown key(s) ['resamples']" in capsys.readouterr().err


def test_evaluate_on_a_single_class_is_one_line_naming_the_file_and_the_fix(tmp_path, capsys):
    """Issue 20 item 7: every patient with the same label ends as one error line with exit status 2, no traceback."""
    pred = write_predictions(tmp_path / "one.csv", ["a", "b", "c"], np.zeros(3, dtype=int), np.array([0.2, 0.3, 0.1]))
    out = tmp_path / "m.json"
    status = None
    try:
        status = main(["evaluate", str(pred), "--out", str(out)])
    except SystemExit as exit_info:
        status = exit_info.code
    err = capsys.readouterr().err
    assert status == 2 and not out.exists()
    assert f"{pred}: column 'label': all 3 patients have label 0" in err and "both outcomes" in err
    assert "Traceback" not in err
