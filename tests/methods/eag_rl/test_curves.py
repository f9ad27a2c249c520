"""curves.csv / curves.json: one row per optimiser step, batch columns carried over, no timings."""

from __future__ import annotations

import json

from tests.wallclock import timing_keys


def test_curves_carry_batch_columns_over_the_steps_of_one_batch(tmp_path):
    from methods.eag_rl.curves import write_curves

    rows = [{"step": 1, "loss": 0.5, "reward": -1.0, "eps_tau/mean": 0.3, "step_time": 1.5}, {"step": 2, "loss": 0.25},
            {"step": 2, "train_runtime": 9.0, "train_samples_per_second": 2.0, "train_steps_per_second": 0.2,
             "train_loss": 0.4}]
    write_curves(tmp_path, rows)
    lines = (tmp_path / "curves.csv").read_text().splitlines()
    assert lines[0].split(",") == ["step", "loss", "reward", "eps_tau/mean", "train_loss"]  # no timing column
    assert lines[2].split(",") == ["2", "0.25", "-1.0", "0.3", "0.4"]  # reward repeated, loss not
    assert timing_keys(json.loads((tmp_path / "curves.json").read_text())) == []
