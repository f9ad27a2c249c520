"""``eagrl <stage>`` parses its params file once and passes the parsed object down (benchmark.config.Params).

Each test runs a stage through the command line (:func:`eagrl.cli.main`) with ``--params`` and counts the
YAML parses of that file. Here, beside the LLM tests, for the tiny model and its fixtures: llm-eval and
robustness-llm run whole on it; rl runs up to its training (the GRPO run itself is replaced, its evaluation
read of the params kept); train-expert runs whole on the logistic floor.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.config import Params, to_mapping
from benchmark.evaluate import metrics_config
from eagrl.cli import main
from methods.llm.backbone import build_backbone
from tests.methods.llm.test_sft_and_stages import tiny_config


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """Every text that ``yaml.safe_load`` parses while the test runs."""
    texts: list[str] = []
    real = yaml.safe_load

    def counting(stream, *args, **kwargs):
        texts.append(stream)
        return real(stream, *args, **kwargs)

    monkeypatch.setattr(yaml, "safe_load", counting)
    return texts


def write_params(folder: Path, data: dict) -> tuple[Path, str]:
    """A params file in ``folder`` (not named params.yaml: no stage may fall back on the default) and its text."""
    path = folder / "stage-params.yaml"
    text = yaml.safe_dump({"metrics": {"bootstrap_resamples": 20}, "datasets": {"small_icu": {"source": "synthetic"}},
                           **data})
    path.write_text(text)
    return path, text


def llm_params(workdir: Path, tiny_model_dir: Path) -> dict:
    """The tiny model as llm.backbone, built."""
    config = tiny_config(tiny_model_dir, workdir)
    build_backbone(config.backbone)
    return {"llm": to_mapping(config)}


def test_llm_eval_parses_params_once(workdir, tiny_model_dir, small_icu, parses):
    small_icu.save(workdir / "cohorts" / "small_icu")
    path, text = write_params(workdir, llm_params(workdir, tiny_model_dir))
    assert main(["llm-eval", "small_icu", "vanilla", "--params", str(path), "--cohorts", str(workdir / "cohorts"),
                 "--out", str(workdir / "llm")]) == 0
    assert (workdir / "llm" / "small_icu" / "vanilla" / "mortality" / "metrics.json").exists()
    assert parses.count(text) == 1


def test_robustness_llm_parses_params_once(workdir, tiny_model_dir, small_icu, parses):
    small_icu.save(workdir / "cohorts" / "small_icu")
    path, text = write_params(workdir, {**llm_params(workdir, tiny_model_dir),
                                        "robustness": {"llm": {"levels": ["none", "shuffle:1"], "n_patients": 2}}})
    assert main(["robustness-llm", "small_icu", "mortality", "vanilla", "--params", str(path),
                 "--cohorts", str(workdir / "cohorts"), "--out", str(workdir / "robustness")]) == 0
    assert parses.count(text) == 1


def test_rl_parses_params_once(workdir, tiny_model_dir, small_icu, parses, monkeypatch):
    small_icu.save(workdir / "cohorts" / "small_icu")
    path, text = write_params(workdir, {"llm": to_mapping(tiny_config(tiny_model_dir, workdir)),
                                        "eag_rl": {"rl": {"seeds": [42, 43], "seed_processes": 1}}})
    seen = []

    def train_one(run, config, folder, evaluate_after=True):  # the GRPO run replaced; its evaluation's params read kept
        seen.append(run.params)
        metrics_config(run.params)
        return {}

    monkeypatch.setattr("methods.eag_rl.rl.train_one", train_one)
    assert main(["rl", "small_icu", "mortality", "eag_rl", "--params", str(path), "--cohorts", str(workdir / "cohorts"),
                 "--out", str(workdir / "rl"), "--no-eval"]) == 0
    assert len(seen) == 2 and all(isinstance(params, Params) and str(params) == str(path) for params in seen)
    assert parses.count(text) == 1


def test_train_expert_parses_params_once(workdir, small_icu, parses):
    small_icu.save(workdir / "cohorts" / "small_icu")
    path, text = write_params(workdir, {"experts": {"models": ["logistic"]}})
    assert main(["train-expert", "small_icu", "logistic", "--params", str(path), "--cohorts", str(workdir / "cohorts"),
                 "--out", str(workdir / "experts")]) == 0
    assert (workdir / "experts" / "small_icu" / "logistic" / "mortality" / "metrics.json").exists()
    assert parses.count(text) == 1
