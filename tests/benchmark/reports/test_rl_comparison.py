"""EAG-RL vs its RL baselines pooled over seeds (benchmark/reports/rl_comparison.py) on hand-made run folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.reports.rl_comparison import comparison_rows, shuffle_drop, verdict
from benchmark.seeds import (
    pooled_paired_contrast_test,
    pooled_paired_mean_test,
    pooled_paired_test,
    seed_folders,
)

N = 120


def _run(folder, labels, probabilities, auroc, alignment):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": [f"p{i:03d}" for i in range(N)], "label": labels, "probability": probabilities,
                  "parsed": True}).to_csv(folder / "predictions.csv", index=False)
    return {"auroc": {"mean": auroc}, "auprc": {"mean": auroc / 2}, "mechanism": {"alignment_expert": alignment}}


def _variant(root, name, seeds, labels, rng, signal):
    folder = root / "synth" / name / "mortality"
    probs = {}
    for i, seed in enumerate(seeds):
        sub = folder if i == 0 else folder / f"seed{seed}"
        p = np.clip(signal * labels + rng.normal(0, 0.3, N), 0, 1)
        probs[seed] = p
        metrics = _run(sub, labels, p, 0.5 + signal / 2 + i * 0.01, 0.2 + signal)
        if i:
            (sub / "metrics.json").write_text(json.dumps(metrics))
        else:
            first = metrics
    first["seeds"] = {"n_seeds": len(seeds), "predictions": {
        str(s): ("" if i == 0 else f"seed{s}/") + "predictions.csv" for i, s in enumerate(seeds)}}
    (folder / "metrics.json").write_text(json.dumps(first))
    return probs


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    labels = (np.arange(N) % 4 == 0).astype(int)
    a = _variant(tmp_path / "rl", "eag_rl", [1, 2, 3], labels, rng, 0.6)
    b = _variant(tmp_path / "rl", "grpo", [1, 2], labels, rng, 0.0)
    params = tmp_path / "params.yaml"
    params.write_text("metrics: {bootstrap_resamples: 200, seed: 7}\n")
    return tmp_path, labels, a, b, params


def test_seed_folders_are_found_from_the_seeds_block(runs):
    root = runs[0] / "rl" / "synth" / "eag_rl" / "mortality"
    assert seed_folders(root) == {1: root, 2: root / "seed2", 3: root / "seed3"}


def test_rows_equal_the_pooled_test_and_seed_statistics(runs):
    root, labels, a, b, params = runs
    rows = {r["quantity"]: r for r in comparison_rows(root / "rl", root / "robustness", params)}
    auroc = rows["auroc"]
    expected = pooled_paired_test(labels, a, b, "auroc", 200, 7)
    assert auroc["difference"] == pytest.approx(expected["difference"])
    assert auroc["p_value"] == pytest.approx(expected["p_value"])
    assert (auroc["a_seeds"], auroc["b_seeds"]) == (3, 2)
    assert auroc["a_mean"] == pytest.approx(np.mean([0.8, 0.81, 0.82]))
    assert auroc["a_std"] == pytest.approx(np.std([0.8, 0.81, 0.82], ddof=1))
    assert auroc["verdict"] == "A better"
    assert rows["alignment_expert"]["difference"] == pytest.approx(0.8 - 0.2)
    assert "alignment_truth" not in rows and "auroc_shuffle_drop" not in rows  # not measured: absent


def test_alignment_rows_take_the_paired_test_where_every_seed_wrote_per_patient_values(runs):
    root, labels, _, _, params = runs
    ids = [f"p{i:03d}" for i in range(N)]
    per_seed = {}
    for name, seeds, level in (("eag_rl", [1, 2, 3], 0.5), ("grpo", [1, 2], 0.3)):
        folder = root / "rl" / "synth" / name / "mortality"
        for i, seed in enumerate(seeds):
            values = level + 0.1 * np.sin(np.arange(N) + seed)  # per patient, A above B on every one
            per_seed.setdefault(name, {})[seed] = values
            pd.DataFrame({"id": ids, "alignment_truth": np.nan, "alignment_expert": values}).to_csv(
                (folder if i == 0 else folder / f"seed{seed}") / "alignment.csv", index=False)
    rows = {r["quantity"]: r for r in comparison_rows(root / "rl", root / "robustness", params)}
    expected = pooled_paired_mean_test(labels, per_seed["eag_rl"], per_seed["grpo"], 200, 7)
    row = rows["alignment_expert"]
    assert row["difference"] == pytest.approx(expected["difference"]) and row["p_value"] == expected["p_value"]
    assert row["difference"] == pytest.approx(np.mean(np.mean(list(per_seed["eag_rl"].values()), axis=0)
                                                       - np.mean(list(per_seed["grpo"].values()), axis=0)))
    assert row["verdict"] == "A better" and row["ci_low"] > 0
    assert (row["a_mean"], row["b_mean"]) == (pytest.approx(0.8), pytest.approx(0.2))  # from the metrics files


def test_pooled_paired_mean_test_on_equal_and_shifted_values():
    labels = np.array([0, 1] * 20)
    values = {1: np.linspace(0, 1, 40)}
    same = pooled_paired_mean_test(labels, values, values, 100, 3)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    shifted = pooled_paired_mean_test(labels, {1: values[1] + 0.1, 2: values[1] + 0.3}, values, 100, 3)
    assert shifted["difference"] == pytest.approx(0.2) and shifted["ci_low"] == pytest.approx(0.2)
    assert (shifted["n_seeds_a"], shifted["n_seeds_b"]) == (2, 1)
    with pytest.raises(ValueError, match="40 labels|patients"):
        pooled_paired_mean_test(labels, {1: np.zeros(39)}, values, 10, 3)


def test_verdicts_and_shuffle_drop(tmp_path):
    assert verdict(0.01, 0.2) == "A better" and verdict(-0.2, -0.01) == "B better"
    assert verdict(-0.1, 0.1) == "inconclusive" and verdict(float("nan"), 0.1) == "not testable"
    assert verdict(0.0, 0.0) == "not testable"  # no width: constant answers in both variants say nothing
    for level, auroc in (("none", 0.8), ("shuffle_0.4", 0.7), ("shuffle_1", 0.6)):
        (tmp_path / "d" / "eag_rl" / "t" / level).mkdir(parents=True)
        (tmp_path / "d" / "eag_rl" / "t" / level / "metrics.json").write_text(json.dumps({"auroc": {"mean": auroc}}))
    assert shuffle_drop(tmp_path, "d", "eag_rl", "t") == pytest.approx(-0.2)
    assert shuffle_drop(tmp_path, "d", "grpo", "t") is None


def _robustness(root, variant, seeds, labels, rng, signal_none, signal_shuffled):
    """outputs/robustness/synth/<variant>/mortality/{none,shuffle_1}/ with every seed (first in the folder)."""
    probs = {"none": {}, "shuffle_1": {}}
    for level, signal in (("none", signal_none), ("shuffle_1", signal_shuffled)):
        folder = root / "synth" / variant / "mortality" / level
        for i, seed in enumerate(seeds):
            sub = folder if i == 0 else folder / "seeds" / str(seed)
            p = np.clip(signal * labels + rng.normal(0, 0.3, N), 0, 1)
            probs[level][seed] = p
            metrics = _run(sub, labels, p, signal + i * 0.01, 0.0)
            if i:
                (sub / "metrics.json").write_text(json.dumps(metrics))
            else:
                first = metrics
        first["seeds"] = {"predictions": {str(s): ("" if i == 0 else f"seeds/{s}/") + "predictions.csv"
                                          for i, s in enumerate(seeds)}}
        (folder / "metrics.json").write_text(json.dumps(first))
    return probs


def test_shuffle_rows_pool_every_seed_in_a_paired_contrast(runs):
    root, labels, _, _, params = runs
    rng = np.random.default_rng(1)
    a = _robustness(root / "robustness", "eag_rl", [1, 2, 3], labels, rng, 0.8, 0.7)
    b = _robustness(root / "robustness", "grpo", [1, 2], labels, rng, 0.8, 0.2)
    rows = {r["quantity"]: r for r in comparison_rows(root / "rl", root / "robustness", params)}
    row = rows["auroc_shuffle_drop"]
    expected = pooled_paired_contrast_test(labels, [a["shuffle_1"], b["none"]], [a["none"], b["shuffle_1"]],
                                           "auroc", 200, 7)
    assert row["difference"] == pytest.approx(expected["difference"]) and row["p_value"] == expected["p_value"]
    assert (row["a_seeds"], row["b_seeds"]) == (3, 2)
    assert row["a_mean"] == pytest.approx(0.7 - 0.8) and row["a_std"] == pytest.approx(0.0, abs=1e-12)
    assert row["b_mean"] == pytest.approx(0.2 - 0.8)
    assert row["verdict"] == "A better"  # B loses its signal under shuffling, A keeps most of it
    assert shuffle_drop(root / "robustness", "synth", "grpo", "mortality") == pytest.approx(-0.6)
