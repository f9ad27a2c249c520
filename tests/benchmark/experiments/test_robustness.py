"""The robustness stages and the method catalog on small fixtures (the DL form with the logistic floor)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.config import ConfigError, load_params
from benchmark.evaluate import read_predictions
from benchmark.experiments.robustness import load_robustness_config, run_dl
from benchmark.method_catalog import resolve
from eagrl.registry import METHODS
from methods.experts import load_expert
from tests.benchmark.shift_fixtures import fit_logistic, write_params
from tests.wallclock import timing_keys


def test_catalog_resolves_every_kind(tmp_path):
    params = {"experts": {"models": ["gru", "concare"]}, "hybrid": {"models": ["hybrid_fusion"]}}
    assert resolve("concare", params, METHODS).kind == "dl" and resolve("concare", params, METHODS).family == "expert"
    hybrid = resolve("hybrid_fusion", params, METHODS)
    assert hybrid.family == "hybrid" and str(hybrid.checkpoint("ds", "mortality")) == \
        "models/hybrid/ds/hybrid_fusion/mortality/model.pt"
    assert resolve("vanilla", params, METHODS).adapter("ds", "mortality") is None
    assert str(resolve("label_sft", params, METHODS).adapter("ds", "mortality")) == "models/llm/ds/label_sft/mortality/adapter"
    assert str(resolve("wo_stage2", params, METHODS).adapter("ds", "t")) == "models/llm/ds/wo_stage2/t/adapter"
    grpo = resolve("grpo", params, METHODS)
    assert grpo.family == "rl" and grpo.llm_method.style == "qd"
    assert str(grpo.adapter("ds", "t")) == "models/llm/ds/grpo/t/adapter"
    assert resolve("eag_rl", params, METHODS).family == "eag_rl" and resolve("wo_eps", params, METHODS).family == "ablation"
    assert not resolve("qd", params, METHODS).trained and resolve("wo_stage2", params, METHODS).trained
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        resolve("nope", params, METHODS)
    with pytest.raises(ConfigError, match="both"):
        resolve("qd", {"experts": {"models": ["qd"]}}, METHODS)
    # without a hybrid section the group simply has no models
    with pytest.raises(ConfigError, match="unknown method"):
        resolve("hybrid_fusion", {"experts": {"models": ["gru"]}}, METHODS)


def test_bad_levels_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="robustness.dl.levels"):
        load_robustness_config({"robustness": {"dl": {"levels": ["none", "blur:0.1"]}}})


def test_llm_pairs_must_be_rl_pairs():
    """robustness_llm_trained runs the stage-1 policy and the RL variants on robustness.llm.pairs: a pair where they
    were not trained is refused; Label SFT alone trains on every data set, so it needs no RL pair."""
    icu_mortality = {"dataset": "synthetic_icu", "task": "mortality"}
    ward_mortality = {"dataset": "synthetic_ward", "task": "mortality"}
    rl = {"pairs": [icu_mortality], "variants": {"eag_rl": {"family": "eag_rl"}}}
    load_robustness_config({"robustness": {"llm": {"pairs": [icu_mortality], "trained": ["eag_rl"]}}, "eag_rl": {"rl": rl}})
    for trained in (["eag_rl"], ["wo_stage2"]):
        with pytest.raises(ConfigError, match=r"llm.pairs\[1\].*not in eag_rl.rl.pairs.*add it"):
            load_robustness_config({"robustness": {"llm": {"pairs": [icu_mortality, ward_mortality], "trained": trained}},
                                    "eag_rl": {"rl": rl}})
    load_robustness_config({"robustness": {"llm": {"pairs": [ward_mortality], "trained": ["label_sft"]}},
                            "eag_rl": {"rl": rl}})
    # without RL variants (a profile with no stage 2) any pair is fine
    load_robustness_config({"robustness": {"llm": {"pairs": [ward_mortality]}}, "eag_rl": {"rl": {"variants": {}}}})


def test_prompting_methods_are_checked():
    assert load_robustness_config({"robustness": {"llm": {"prompting": ["qd"]}}}).llm.prompting == ["qd"]
    assert load_robustness_config({}).llm.prompting == ["vanilla"]  # the default: params.yaml's value
    with pytest.raises(ConfigError, match=r"llm.prompting names \['label_sft'\]"):
        load_robustness_config({"robustness": {"llm": {"prompting": ["qd", "label_sft"]}}})


def test_trained_methods_must_be_trained_somewhere():
    """robustness.llm.trained and cross_domain.trained pick trained LLM methods: label_sft, wo_stage2 or a variant
    eag_rl.rl trains."""
    from benchmark.experiments.cross_domain import load_cross_domain_config

    icu_mortality = {"dataset": "synthetic_icu", "task": "mortality"}
    rl = {"pairs": [icu_mortality], "variants": {"eag_rl": {"family": "eag_rl"}, "grpo": {"family": "rl"}}}
    chosen = ["label_sft", "wo_stage2", "eag_rl", "grpo"]
    config = load_robustness_config({"robustness": {"llm": {"trained": chosen}}, "eag_rl": {"rl": rl}})
    assert config.llm.trained == chosen
    with pytest.raises(ConfigError, match=r"robustness.llm.trained names \['dapo'\].*add them to eag_rl.rl.variants"):
        load_robustness_config({"robustness": {"llm": {"trained": ["eag_rl", "dapo"]}}, "eag_rl": {"rl": rl}})
    assert load_cross_domain_config({"eag_rl": {"rl": rl}}).trained == ["label_sft", "wo_stage2", "eag_rl"]
    with pytest.raises(ConfigError, match=r"cross_domain.trained names \['wo_eps'\]"):
        load_cross_domain_config({"cross_domain": {"trained": ["wo_eps"]}, "eag_rl": {"rl": rl}})


def test_dl_robustness_stage(tmp_path, monkeypatch, small_icu):
    monkeypatch.chdir(tmp_path)
    small_icu.save(tmp_path / "cohorts" / "small_icu")
    fit_logistic(small_icu, tmp_path / "models" / "experts")
    levels = ["none", "shuffle:0", "shuffle:1", "noise:0.3", "mask:0.5"]
    write_params(tmp_path, robustness={"dl": {"levels": levels}, "seed": 3})
    group = run_dl("small_icu", "experts", cohort_root=tmp_path / "cohorts", out_root=tmp_path / "outputs", methods=METHODS)
    assert group == tmp_path / "outputs" / "small_icu" / "experts"
    assert sorted(p.name for p in group.iterdir()) == ["logistic"]  # every model of the group (experts.models)
    out = group / "logistic"
    test = small_icu.subset("test")
    for task in small_icu.tasks:
        folders = sorted(p.name for p in (out / task).iterdir())
        assert folders == ["mask_0.5", "noise_0.3", "none", "shuffle_1"]  # shuffle:0 is none
        clean = read_predictions(out / task / "none" / "predictions.csv")
        expert = load_expert(tmp_path / "models" / "experts" / "small_icu" / "logistic" / task / "model.pt")
        np.testing.assert_allclose(clean["probability"], expert.predict_proba(test))
        assert list(clean["id"]) == list(test.ids)
        for folder in folders:
            metrics = json.loads((out / task / folder / "metrics.json").read_text())
            assert metrics["descriptor"]["condition"] == folder.replace("_", ":")
            assert metrics["descriptor"]["family"] == "expert" and metrics["n"] == len(test)
            assert metrics["run"]["perturbation"]["seed"] == 3 and timing_keys(metrics) == []
        shuffled = read_predictions(out / task / "shuffle_1" / "predictions.csv")
        assert not np.allclose(shuffled["probability"], clean["probability"])
    assert load_params("params.yaml")  # nothing else was written into the params


def test_a_group_can_take_its_own_levels(tmp_path, monkeypatch, small_icu):
    """A dl_groups entry with `levels` is evaluated at those only; the others keep robustness.dl.levels."""
    monkeypatch.chdir(tmp_path)
    small_icu.save(tmp_path / "cohorts" / "small_icu")
    fit_logistic(small_icu, tmp_path / "models" / "experts")
    groups = [{"name": "experts", "root": "models/experts", "models": "experts.models", "family": "expert",
               "levels": ["none", "shuffle:1"]}]
    write_params(tmp_path, robustness={"dl": {"levels": ["none", "noise:0.3", "mask:0.5"]}, "dl_groups": groups})
    out = run_dl("small_icu", "experts", cohort_root=tmp_path / "cohorts", out_root=tmp_path / "outputs", methods=METHODS)
    for task in small_icu.tasks:
        assert sorted(p.name for p in (out / "logistic" / task).iterdir()) == ["none", "shuffle_1"]
    groups[0]["levels"] = ["none", "blur:1"]
    with pytest.raises(ConfigError, match=r"dl_groups\[experts\].levels"):
        load_robustness_config({"robustness": {"dl_groups": groups}})


def test_dl_robustness_refuses_models_outside_the_group(tmp_path, monkeypatch, small_icu):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    with pytest.raises(ConfigError, match=r"\['vanilla'\] not in group 'experts'.*experts.models"):
        run_dl("small_icu", "experts", ["vanilla"], cohort_root=tmp_path / "cohorts", out_root=tmp_path / "outputs", methods=METHODS)
    with pytest.raises(ConfigError, match="no group 'llm'.*experts"):
        run_dl("small_icu", "llm", cohort_root=tmp_path / "cohorts", out_root=tmp_path / "outputs", methods=METHODS)


class _SeedAwareMethods(type(METHODS)):
    """The registry with generation and evaluation replaced: each adapter's probabilities are a fixed function of
    the adapter's folder (its seed), so the test can tell which seed's files landed where."""

    def generator(self, llm, adapter):
        return adapter

    def evaluate_llm(self, cohort, task, method, llm, generator, out, params_path, adapter, **kwargs):
        seed = 42 if adapter.parent.name == "mortality" else int(adapter.parent.name.removeprefix("seed"))
        labels = cohort.label(task)
        probabilities = np.clip(labels * 0.4 + 0.3 + 0.001 * seed + 0.01 * np.arange(len(labels)) % 0.2, 0, 1)
        out.mkdir(parents=True, exist_ok=True)
        import pandas as pd

        pd.DataFrame({"id": cohort.ids, "label": labels, "probability": probabilities, "parsed": True}).to_csv(
            out / "predictions.csv", index=False)
        metrics = {"auroc": {"mean": 0.5 + seed / 1000}, "auprc": {"mean": 0.3}, "parse_failure_rate": 0.0,
                   "parse_failures": 0, "n": len(labels), "adapter": str(adapter), "condition": kwargs["condition"]}
        (out / "metrics.json").write_text(json.dumps(metrics))
        return metrics


def test_an_rl_variant_is_perturbed_in_every_training_seed(tmp_path, monkeypatch, small_icu):
    """Every seed listed in the variant's metrics.json is evaluated at every level: the first seed's files where a
    one-seed method's go, the others one level deeper (seeds/<seed>), and a seeds block that finds them."""
    from benchmark.experiments.robustness import run_llm
    from benchmark.seeds import seed_folders
    from methods.llm.config import LLMConfig

    monkeypatch.chdir(tmp_path)
    small_icu.save(tmp_path / "cohorts" / "small_icu")
    write_params(tmp_path, robustness={"llm": {"levels": ["none", "shuffle:1"]}})
    variant = tmp_path / "models" / "llm" / "small_icu" / "grpo" / "mortality"
    for folder in (variant, variant / "seed43", variant / "seed44"):
        (folder / "adapter").mkdir(parents=True)
        (folder / "adapter" / "adapter_config.json").write_text("{}")
    (variant / "metrics.json").write_text(json.dumps({"seeds": {"predictions": {
        "42": "predictions.csv", "43": "seed43/predictions.csv", "44": "seed44/predictions.csv"}}}))
    methods = _SeedAwareMethods()
    out = run_llm("small_icu", "mortality", "grpo", cohort_root=tmp_path / "cohorts", out_root=tmp_path / "outputs",
                  adapter_root=tmp_path / "models" / "llm", llm_config=LLMConfig(), methods=methods)
    for level in ("none", "shuffle_1"):
        first = json.loads((out / level / "metrics.json").read_text())
        assert first["adapter"] == str(variant / "adapter") and first["auroc"]["mean"] == pytest.approx(0.542)
        assert first["seeds"]["metrics"]["auroc"]["per_seed"] == {"42": 0.542, "43": 0.543, "44": 0.544}
        folders = seed_folders(out / level)
        assert folders == {42: out / level, 43: out / level / "seeds" / "43", 44: out / level / "seeds" / "44"}
        for seed, folder in folders.items():
            metrics = json.loads((folder / "metrics.json").read_text())
            assert metrics["auroc"]["mean"] == pytest.approx(0.5 + seed / 1000)
            assert metrics["condition"] == level.replace("_", ":")
    # the reports read one row per method and level: the further seeds are not methods of their own
    from benchmark.reports.shift_rows import _files

    assert sorted(p.relative_to(tmp_path / "outputs") for p in _files(tmp_path / "outputs", 4)) == [
        out.relative_to(tmp_path / "outputs") / level / "metrics.json" for level in ("none", "shuffle_1")]
    assert _files(tmp_path / "outputs", 5) == []
