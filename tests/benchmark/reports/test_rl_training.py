"""The RL training report: every column from hand-made run folders, missing columns reported missing, the plot."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from benchmark.reports.rl_training import (
    COLUMNS,
    find_runs,
    report_rl_training,
    seed_band,
    training_rows,
    window,
)
from eagrl.cli import main

OLD_TRAJECTORY_COLUMNS = ["step", "round", "group", "reward", "advantage", "span_entropy", "span_tokens", "epsilon_high"]


def _run(folder, curves: dict, trajectories: pd.DataFrame, summary: dict | None):
    folder.mkdir(parents=True)
    pd.DataFrame(curves).to_csv(folder / "curves.csv", index=False)
    trajectories.to_csv(folder / "epsilon.csv", index=False)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def runs(tmp_path):
    """eag_rl with two seeds (seed<k>/ layout), grpo in the flat layout (R_att off, old epsilon.csv).

    seed1 has an old summary.json with a training time (``seconds_train``): the report ignores it.
    """
    root = tmp_path / "models" / "llm"
    variant = root / "synth" / "eag_rl" / "mortality"
    steps = np.arange(1, 21)
    parsed = [0.5] * 18 + [0.8, 0.6]
    _run(variant / "seed1",
         {"step": steps, "reward": steps / 10, "reward_parts/attention": 0.05 * steps, "reward_parts/parsed": parsed,
          "clip_ratio/high_mean": [0.0, 0.1] * 10, "loss": 0.0},
         pd.DataFrame({"step": [0, 0, 0, 0, 2, 2, 2, 2], "round": [0, 0, 0, 0, 1, 1, 1, 1],
                       "group": [0, 0, 1, 1, 0, 0, 1, 1], "id": ["a", "a", "b", "b", "c", "c", "a", "a"],
                       "reward": 0.0, "attention": [0.2, 0.2, 0.1, 0.3, 0.5, 0.5, 0.0, 1e-12], "parsed": 1.0,
                       "advantage": [0.1, 0.1, -0.3, 0.5, 0.4, 0.4, -0.1, -0.1]}),
         {"config": {"seed": 1}, "reward": {"use_attention": True}, "training": {"seconds_train": 12.5}})
    _run(variant / "seed2",
         {"step": [1, 2, 3, 4, 5], "reward": [0.0, 0.5, 1.0, 1.0, 3.0], "reward_parts/attention": [0.2] * 5,
          "reward_parts/parsed": [1.0] * 5},
         pd.DataFrame({"step": [0, 0], "round": [0, 0], "group": [0, 0], "id": ["x", "x"], "reward": 0.0,
                       "attention": [0.0, 0.5], "parsed": 1.0, "advantage": [-0.5, 0.5]}),
         {"config": {"seed": 2}, "training": {}})
    _run(root / "synth" / "grpo" / "mortality",
         {"step": [1, 2, 3], "reward": [1.0, 2.0, 3.0], "reward_parts/attention": [0.0] * 3,
          "reward_parts/parsed": [1.0, 1.0, 0.5], "clip_ratio/high_mean": [0.0, 0.3, 0.0]},
         pd.DataFrame(columns=OLD_TRAJECTORY_COLUMNS),
         {"config": {"seed": 7}, "reward": {"use_attention": False}, "training": {}})
    return root


def test_window_is_a_tenth_rounded_up_and_at_least_one_step():
    assert [window(n) for n in (0, 1, 5, 10, 11, 20, 30)] == [0, 1, 1, 1, 2, 2, 3]


def test_runs_are_found_in_both_layouts_with_their_seeds(runs):
    found = [(r["variant"], r["seed"], r["folder"].name) for r in find_runs(runs)]
    assert sorted(found) == [("eag_rl", 1, "seed1"), ("eag_rl", 2, "seed2"), ("grpo", 7, "mortality")]


def test_every_column_equals_hand_computation(runs):
    rows = {(r["variant"], r["seed"]): r for r in training_rows(runs)}
    assert all(list(r) == COLUMNS for r in rows.values())
    assert not [c for c in COLUMNS if "seconds" in c or "time" in c]  # wall times: results/runtime.md
    first = rows["eag_rl", 1]
    assert (first["dataset"], first["task"], first["steps"], first["train_patients"]) == ("synth", "mortality", 20, 3)
    assert first["reward_first"] == pytest.approx(0.15)        # steps 1-2 of 20
    assert first["reward_last"] == pytest.approx(1.95)         # steps 19-20
    assert first["ratt_first"] == pytest.approx(0.075)
    assert first["ratt_last"] == pytest.approx(0.975)
    assert first["ratt_varying_groups"] == pytest.approx(0.25)  # only (step 0, group 1); 1e-12 is within tolerance
    assert first["upper_clip_share"] == pytest.approx(0.05)
    # advantages 0.1 0.1 -0.3 0.5 0.4 0.4 -0.1 -0.1 against R_att 0.2 0.2 0.1 0.3 0.5 0.5 0 0: means 0.125, 0.225;
    # co-deviation sum 0.335, squares 0.575 and 0.275 -> r = 0.335 / sqrt(0.575 * 0.275) = 0.8425
    assert first["ratt_advantage_corr"] == pytest.approx(0.8425, abs=1e-4)
    assert first["parse_failure_final"] == pytest.approx(0.3)   # 1 - mean(0.8, 0.6)
    second = rows["eag_rl", 2]
    assert (second["steps"], second["train_patients"], second["ratt_varying_groups"]) == (5, 1, 1.0)
    assert (second["reward_first"], second["reward_last"]) == (0.0, 3.0)  # one step each
    assert (second["ratt_first"], second["ratt_last"], second["parse_failure_final"]) == (0.2, 0.2, 0.0)
    assert second["upper_clip_share"] is None                 # no clip_ratio/high_mean logged
    assert second["ratt_advantage_corr"] is None              # two trajectories: no correlation
    grpo = rows["grpo", 7]
    assert (grpo["steps"], grpo["reward_first"], grpo["reward_last"]) == (3, 1.0, 3.0)
    assert grpo["upper_clip_share"] == pytest.approx(0.1)
    assert grpo["parse_failure_final"] == pytest.approx(0.5)
    # R_att is measured but not rewarded; the old epsilon.csv has no patient ids
    assert grpo["ratt_rewarded"] is False and first["ratt_rewarded"] is True
    assert (grpo["ratt_first"], grpo["ratt_last"]) == (0.0, 0.0)
    assert grpo["ratt_varying_groups"] is grpo["train_patients"] is None


def test_report_files_mark_missing_values_and_plot_is_written(runs, tmp_path):
    out = tmp_path / "results"
    assert main(["report-rl-training", "--root", str(runs), "--out", str(out)]) == 0
    table = pd.read_csv(out / "rl_training.csv")
    assert list(table.columns) == COLUMNS and len(table) == 3
    grpo = table[table["variant"] == "grpo"].iloc[0]
    assert grpo["ratt_first"] == 0.0 and math.isnan(grpo["train_patients"]) and grpo["seed"] == 7
    rows = json.loads((out / "rl_training.json").read_text())
    assert next(r for r in rows if r["variant"] == "grpo")["ratt_varying_groups"] is None
    markdown = (out / "rl_training.md").read_text()
    assert "| grpo " in markdown and "—" in markdown and "`upper_clip_share` (1 of 3)" in markdown
    assert "nan" not in markdown.lower()
    png = out / "plots" / "rl_training" / "synth_mortality.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plots/rl_training/synth_mortality.png" in markdown


def test_a_run_without_summary_has_no_seed(runs):
    folder = runs / "synth" / "wo_eps" / "mortality"
    folder.mkdir(parents=True)
    pd.DataFrame({"step": [1], "reward": [0.4]}).to_csv(folder / "curves.csv", index=False)
    row = next(r for r in training_rows(runs) if r["variant"] == "wo_eps")
    assert (row["seed"], row["train_patients"], row["parse_failure_final"]) == (None,) * 3
    assert row["ratt_first"] is None and row["reward_first"] == 0.4


def test_seed_band_is_normal_interval_from_three_seeds_and_min_max_below():
    three = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, np.nan]])
    mean, low, high, n = seed_band(three)
    assert n.tolist() == [3, 2]
    assert mean.tolist() == pytest.approx([2.0, 0.5])
    assert (low[0], high[0]) == pytest.approx((2 - 1.96 / math.sqrt(3), 2 + 1.96 / math.sqrt(3)))  # std = 1
    assert (low[1], high[1]) == (0.0, 1.0)                     # two seeds: min-max
    mean, low, high, n = seed_band(np.array([[0.7]]))
    assert (mean[0], low[0], high[0], n[0]) == (0.7, 0.7, 0.7, 1)


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="curves.csv"):
        report_rl_training(tmp_path / "none", tmp_path / "out")
