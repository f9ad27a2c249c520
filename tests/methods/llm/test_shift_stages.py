"""The LLM form of the robustness and cross-domain stages, on the tiny model and two patients."""

from __future__ import annotations

import json

import pytest
import yaml

from benchmark.config import ConfigError
from benchmark.evaluate import read_predictions
from eagrl.registry import METHODS
from methods.llm.backbone import build_backbone
from tests.methods.llm.test_sft_and_stages import tiny_config


def test_llm_robustness_and_cross_domain(workdir, tiny_model_dir, small_icu, small_ward):
    from benchmark.experiments.cross_domain import run as run_cross_domain
    from benchmark.experiments.robustness import run_llm

    config = tiny_config(tiny_model_dir, workdir)
    build_backbone(config.backbone)
    small_icu.save(workdir / "cohorts" / "small_icu")
    small_ward.save(workdir / "cohorts" / "small_ward")
    (workdir / "params.yaml").write_text(yaml.safe_dump({
        "metrics": {"bootstrap_resamples": 20},
        "robustness": {"seed": 5, "llm": {"levels": ["none", "shuffle:1", "mask:0.5"], "n_patients": 2}}}))

    out = run_llm("small_icu", "mortality", "vanilla", cohort_root=workdir / "cohorts",
                  out_root=workdir / "outputs", llm_config=config, methods=METHODS)
    ids = None
    for folder, condition in (("none", "none"), ("shuffle_1", "shuffle:1"), ("mask_0.5", "mask:0.5")):
        frame = read_predictions(out / folder / "predictions.csv")
        assert len(frame) == 2 and frame["label"].nunique() == 2  # stratified: one of each
        ids = ids if ids is not None else list(frame["id"])
        assert list(frame["id"]) == ids  # the same patients at every level
        metrics = json.loads((out / folder / "metrics.json").read_text())
        assert metrics["descriptor"]["condition"] == condition and metrics["descriptor"]["method"] == "vanilla"

    with pytest.raises(ConfigError, match="no LoRA adapter"):
        run_llm("small_icu", "mortality", "label_sft", cohort_root=workdir / "cohorts", out_root=workdir / "outputs",
                adapter_root=workdir / "missing", llm_config=config, methods=METHODS)

    cross = run_cross_domain("small_icu", "small_ward", "mortality", "vanilla", cohort_root=workdir / "cohorts",
                             out_root=workdir / "cross", llm_config=config, methods=METHODS)
    metrics = json.loads((cross / "metrics.json").read_text())
    assert metrics["descriptor"]["dataset"] == "small_ward" and metrics["descriptor"]["train_dataset"] == "small_icu"
    assert metrics["run"]["zero_shot"] is True and metrics["n"] == config.evaluation.n_patients


def test_prompting_cross_domain_reuses_the_targets_own_evaluation(workdir, tiny_model_dir, small_icu, small_ward):
    """A prompting method learns nothing from the source: its pair row is its target evaluation, reused when it
    scored the same patients with the same length (identical to generating it), generated otherwise."""
    import dataclasses

    from benchmark.experiments.cross_domain import run as run_cross_domain
    from methods.llm.evaluation import run_method

    config = tiny_config(tiny_model_dir, workdir)
    build_backbone(config.backbone)
    small_icu.save(workdir / "cohorts" / "small_icu")
    small_ward.save(workdir / "cohorts" / "small_ward")
    (workdir / "params.yaml").write_text(yaml.safe_dump({"metrics": {"bootstrap_resamples": 20}}))
    kwargs = dict(cohort_root=workdir / "cohorts", llm_config=config)

    generated = run_cross_domain("small_icu", "small_ward", "mortality", "vanilla", out_root=workdir / "fresh", **kwargs, methods=METHODS)
    run_method("small_ward", "vanilla", cohort_root=workdir / "cohorts", out_root=workdir / "llm", config=config)
    reused = run_cross_domain("small_icu", "small_ward", "mortality", "vanilla", out_root=workdir / "reused",
                              llm_root=workdir / "llm", **kwargs, methods=METHODS)
    fresh, copied = (json.loads((folder / "metrics.json").read_text()) for folder in (generated, reused))
    assert copied["run"]["reused_from"] == str(workdir / "llm" / "small_ward" / "vanilla" / "mortality")
    assert "reused_from" not in fresh["run"]
    assert read_predictions(reused / "predictions.csv").equals(read_predictions(generated / "predictions.csv"))
    assert copied["descriptor"] == fresh["descriptor"] and copied["auroc"] == fresh["auroc"]

    longer = dataclasses.replace(config, methods=dataclasses.replace(
        config.methods, vanilla=dataclasses.replace(config.methods.vanilla, max_new_tokens=6)))
    regenerated = run_cross_domain("small_icu", "small_ward", "mortality", "vanilla", out_root=workdir / "longer",
                                   llm_root=workdir / "llm", cohort_root=workdir / "cohorts", llm_config=longer, methods=METHODS)
    assert "reused_from" not in json.loads((regenerated / "metrics.json").read_text())["run"]


def _base_policy_params(workdir, config) -> dict:
    """params.yaml whose prompting methods read 'smollm2' and whose fine-tuned methods read the tiny model."""
    from benchmark.config import to_mapping

    llm = to_mapping(config)
    tuned_backbone = llm["backbone"]
    llm["backbone"] = {**tuned_backbone, "source": "smollm2", "dir": str(workdir / "unused")}
    llm["finetuned"] = {"backbone": tuned_backbone, "evaluation": {"n_patients": 0}}
    return {"metrics": {"bootstrap_resamples": 20}, "llm": llm,
            "robustness": {"seed": 5, "llm": {"levels": ["none", "shuffle:1"], "n_patients": 2}}}


def test_base_policy_runs_prompting_on_the_finetuned_backbone_over_its_whole_split(workdir, tiny_model_dir, small_icu,
                                                                                    small_ward):
    """base_policy_<key>: the prompting method, untrained, on llm.finetuned's backbone and evaluation (the whole
    test split); the tables name it <key> with that backbone, in domain, under perturbation and across domains."""
    from benchmark.experiments.cross_domain import run as run_cross_domain
    from benchmark.experiments.robustness import run_llm
    from benchmark.method_catalog import resolve
    from methods.llm.evaluation import run_method

    config = tiny_config(tiny_model_dir, workdir)
    build_backbone(config.backbone)
    small_icu.save(workdir / "cohorts" / "small_icu")
    small_ward.save(workdir / "cohorts" / "small_ward")
    params = _base_policy_params(workdir, config)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    spec = resolve("base_policy_vanilla", params, METHODS)
    assert spec.kind == "llm" and not spec.trained and spec.on_finetuned_backbone and spec.family == "prompting"

    out = run_method("small_icu", "base_policy_vanilla", cohort_root=workdir / "cohorts", out_root=workdir / "llm")
    metrics = json.loads((out / "mortality" / "metrics.json").read_text())
    test_split = int((small_icu.subset("test").label("mortality") >= 0).sum())
    assert metrics["n"] == test_split  # llm.finetuned.evaluation: every test patient, not the 6 of llm.evaluation
    assert metrics["descriptor"]["method"] == "vanilla" and metrics["descriptor"]["family"] == "prompting"
    assert metrics["descriptor"]["backbone"] == str(tiny_model_dir) and metrics["run"]["base_policy"] is True

    perturbed = run_llm("small_icu", "mortality", "base_policy_vanilla", cohort_root=workdir / "cohorts",
                        out_root=workdir / "robustness", methods=METHODS)
    shuffled = json.loads((perturbed / "shuffle_1" / "metrics.json").read_text())
    assert shuffled["n"] == test_split  # its own evaluation, not robustness.llm.n_patients
    assert shuffled["descriptor"]["method"] == "vanilla" and shuffled["descriptor"]["condition"] == "shuffle:1"

    run_method("small_ward", "base_policy_vanilla", cohort_root=workdir / "cohorts", out_root=workdir / "llm")
    cross = run_cross_domain("small_icu", "small_ward", "mortality", "base_policy_vanilla",
                             cohort_root=workdir / "cohorts", out_root=workdir / "cross", llm_root=workdir / "llm", methods=METHODS)
    transferred = json.loads((cross / "metrics.json").read_text())
    assert transferred["run"]["reused_from"].endswith("small_ward/base_policy_vanilla/mortality")
    assert transferred["descriptor"]["method"] == "vanilla" and transferred["descriptor"]["backbone"] == str(tiny_model_dir)


def test_base_policy_on_a_shared_backbone_is_refused(workdir, tiny_model_dir, small_icu):
    """Where the fine-tuned methods keep llm.backbone, the prompting rows already are the base policy."""
    from methods.llm.evaluation import run_method

    small_icu.save(workdir / "cohorts" / "small_icu")
    (workdir / "params.yaml").write_text(yaml.safe_dump({"llm": {"backbone": {"source": str(tiny_model_dir)}}}))
    with pytest.raises(ConfigError, match=r"set llm.base_policy: \[\]"):
        run_method("small_icu", "base_policy_qd", cohort_root=workdir / "cohorts", out_root=workdir / "llm")


def test_base_policy_keys_must_be_prompting_methods(tmp_path):
    from methods.llm.config import load_llm_config

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"llm": {"base_policy": ["vanilla", "label_sft"]}}))
    with pytest.raises(ConfigError, match=r"base_policy has \['label_sft'\]"):
        load_llm_config(tmp_path / "params.yaml")


def test_prompting_keys_must_be_prompting_methods(tmp_path):
    from methods.llm.config import load_llm_config

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"llm": {"prompting": ["vanilla", "eag_rl"]}}))
    with pytest.raises(ConfigError, match=r"llm.prompting has \['eag_rl'\]"):
        load_llm_config(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"llm": {"prompting": ["qd"]}}))
    assert load_llm_config(tmp_path / "params.yaml").prompting == ["qd"]
