"""Claims C1-C5: verdicts from hand-made evaluations whose ordering is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from benchmark.cli import main
from benchmark.config import ConfigError
from benchmark.paper.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_TESTABLE,
    ClaimsConfig,
    load_claims,
    verify_claims,
)
from tests.benchmark.fake_results import FAST, metrics_file, record

ICU, WARD, TASK, BB = "synthetic_icu", "synthetic_ward", "mortality", "smollm2"
TESTS = ClaimsConfig(resamples=400)  # smallest p 2/401: below alpha / m for the m <= 8 comparisons here


def _records(tmp_path, eag=1.0, concare=0.6, no_stage1=0.7, no_stage2=0.4, with_eag=True, source=ICU, target=WARD,
             eag_noise=1):
    def make(name, quality, **fields):
        return record(tmp_path / name, quality, seed=eag_noise if name == "eag" else 1, **fields)

    out = [
        make("concare", concare, dataset=ICU, task=TASK, method="concare", family="expert"),
        make("vanilla", 0.2, dataset=ICU, task=TASK, method="vanilla", family="prompting", backbone=BB),
        make("sft", 0.4, dataset=ICU, task=TASK, method="label_sft", family="finetune", backbone=BB),
        # Shuffled test sets.
        make("concare_s", 0.2, dataset=ICU, task=TASK, method="concare", family="expert", condition="shuffle:1.0"),
        make("vanilla_s", 0.0, dataset=ICU, task=TASK, method="vanilla", family="prompting", backbone=BB, condition="shuffle:1.0"),
        # Cross-domain: trained on icu, tested on ward.
        make("concare_x", 0.3, dataset=target, task=TASK, method="concare", family="expert", train_dataset=source),
        make("vanilla_x", 0.2, dataset=target, task=TASK, method="vanilla", family="prompting", backbone=BB,
             train_dataset=source),
        make("sft_x", 0.25, dataset=target, task=TASK, method="label_sft", family="finetune", backbone=BB,
             train_dataset=source),
    ]
    if with_eag:
        out += [
            make("eag", eag, dataset=ICU, task=TASK, method="eag_rl", family="eag_rl", backbone=BB),
            make("eag_s", eag - 0.1, dataset=ICU, task=TASK, method="eag_rl", family="eag_rl", backbone=BB, condition="shuffle:1.0"),
            make("eag_x", 0.8, dataset=target, task=TASK, method="eag_rl", family="eag_rl", backbone=BB,
                 train_dataset=source),
            make("no1", no_stage1, dataset=ICU, task=TASK, method="wo_stage1", family="ablation", backbone=BB),
            make("no2", no_stage2, dataset=ICU, task=TASK, method="wo_stage2", family="ablation", backbone=BB),
            make("noratt", 0.8, dataset=ICU, task=TASK, method="wo_ratt", family="ablation", backbone=BB),
            make("noeps", 0.9, dataset=ICU, task=TASK, method="wo_eps", family="ablation", backbone=BB),
        ]
    return out


def _by_id(verdicts):
    return {v.id: v for v in verdicts}


def test_claims_file_lists_c1_to_c5():
    assert [c["id"] for c in load_claims()] == ["C1", "C2", "C3", "C4", "C5"]


def test_without_eag_rl_nothing_is_testable(tmp_path):
    verdicts = verify_claims(_records(tmp_path, with_eag=False), TESTS, FAST)
    assert [v.status for v in verdicts] == [NOT_TESTABLE] * 5
    assert all("EAG-RL" in v.reason and "collected" in v.reason for v in verdicts)


def test_all_claims_hold_when_the_data_say_so(tmp_path):
    records = _records(tmp_path)
    verdicts = _by_id(verify_claims(records, TESTS, FAST))
    assert {k: v.status for k, v in verdicts.items() if k != "C5"} == {k: HOLDS for k in ("C1", "C2", "C3", "C4")}, \
        {k: v.reason for k, v in verdicts.items()}
    # C5 is the paper's MIMIC-IV -> TJH: the synthetic icu -> ward pair is supplementary evidence only.
    c5 = verdicts["C5"]
    assert c5.status == NOT_TESTABLE and "mimic_iv → tjh: no EAG-RL evaluation" in c5.reason
    assert "supplementary (not the paper's setting): 6 support, 0 contradict and 0 are undecided of 6" in c5.reason
    assert "alone would read 'holds'" in c5.reason
    assert {row["evidence"] for row in c5.evidence} == {"supplementary"}
    c1 = verdicts["C1"]
    assert c1.numbers == {"supports": 6, "contradicts": 0, "undecided": 0, "comparisons": 6}  # 3 baselines x 2 metrics
    assert c1.evidence[0]["p (vs best)"] != "—"  # paired tests ran on the predictions files
    # C2 is the mean relative improvement over the base model, recomputed here.
    eag, base = records[-7], records[1]
    expected = np.mean([100 * (eag.mean(m) - base.mean(m)) / base.mean(m) for m in ("auroc", "auprc")])
    assert verdicts["C2"].numbers["relative_to_base_pct"] == pytest.approx(expected)
    assert "synthetic stand-ins" in c1.reason


def test_c5_on_the_papers_pair(tmp_path):
    verdicts = _by_id(verify_claims(_records(tmp_path, source="mimic_iv", target="tjh"), TESTS, FAST))
    assert verdicts["C5"].status == HOLDS
    assert {k: verdicts["C5"].numbers[k] for k in ("supports", "comparisons")} == {"supports": 6, "comparisons": 6}


def test_c4_uses_the_robustness_stages_own_reference(tmp_path):
    # Standard evaluations say EAG-RL degrades by 0.1 and ConCare by 0.4 (C4 holds); the robustness stages' own
    # unperturbed level ("none", same patients as their shuffled sets) says EAG-RL degrades more.
    extra = [record(tmp_path / "eag_none", 4.0, dataset=ICU, task=TASK, method="eag_rl", family="eag_rl", backbone=BB,
                    condition="none"),
             record(tmp_path / "concare_none", 0.21, dataset=ICU, task=TASK, method="concare", family="expert",
                    condition="none"),
             record(tmp_path / "vanilla_none", 0.01, dataset=ICU, task=TASK, method="vanilla", family="prompting",
                    backbone=BB, condition="none")]
    assert _by_id(verify_claims(_records(tmp_path), TESTS, FAST))["C4"].status == HOLDS
    c4 = _by_id(verify_claims(_records(tmp_path) + extra, TESTS, FAST))["C4"]
    assert c4.status == FAILS and c4.evidence[0]["reference"] == "none", c4.reason


def test_c1_fails_when_a_baseline_is_better(tmp_path):
    verdicts = _by_id(verify_claims(_records(tmp_path, eag=1.0, concare=1.5), TESTS, FAST))
    assert verdicts["C1"].status == FAILS
    assert "4 support, 2 contradict and 0 are undecided of 6" in verdicts["C1"].reason


def test_c3_fails_when_stage1_matters_more(tmp_path):
    verdicts = _by_id(verify_claims(_records(tmp_path, no_stage1=0.4, no_stage2=0.7), TESTS, FAST))
    assert verdicts["C3"].status == FAILS
    assert [row["outcome"] for row in verdicts["C3"].evidence if "stage" in row["comparison (claimed > 0)"]] == \
        ["contradicts", "contradicts"]


def test_unpowered_comparisons_are_inconclusive_not_holds(tmp_path):
    # EAG-RL a little better than every comparator but on other noise: the means favour it, the paired tests
    # cannot tell. The paper's rule (decision: mean) says holds; the default says inconclusive.
    close = _records(tmp_path, eag=0.7, eag_noise=5, source="mimic_iv", target="tjh")  # AUROC 0.898 vs 0.887
    by_mean = _by_id(verify_claims(close, ClaimsConfig(decision="mean", resamples=400), FAST))
    paired = _by_id(verify_claims(close, TESTS, FAST))
    assert by_mean["C1"].status == HOLDS, by_mean["C1"].reason
    assert paired["C1"].status == INCONCLUSIVE, paired["C1"].reason
    assert paired["C1"].numbers["undecided"] > 0 and paired["C1"].numbers["contradicts"] == 0


def test_a_contradiction_needs_the_bonferroni_level(tmp_path):
    # A baseline better than EAG-RL at p < alpha but not below alpha / m is undecided, not a failure.
    records = _records(tmp_path, eag=1.0, concare=1.5)
    loose = _by_id(verify_claims(records, ClaimsConfig(resamples=400, alpha=0.5), FAST))["C1"]
    assert loose.status == FAILS
    strict = _by_id(verify_claims(records, ClaimsConfig(resamples=40), FAST))["C1"]  # smallest p 2/41 > 0.05/6
    assert strict.status == INCONCLUSIVE and strict.numbers["contradicts"] == 0, strict.reason


def test_a_missing_predictions_file_makes_a_comparison_undecided(tmp_path):
    records = _records(tmp_path, source="mimic_iv", target="tjh")
    (records[0].path.parent / "predictions.csv").unlink()  # concare's
    c1 = _by_id(verify_claims(records, TESTS, FAST))["C1"]
    assert c1.status == INCONCLUSIVE and c1.numbers["undecided"] == 2, c1.reason


def test_c4_is_undecided_for_a_model_at_chance(tmp_path):
    # A model that says nothing cannot degrade: its "robustness" is no evidence.
    records = _records(tmp_path, eag=0.0)
    c4 = _by_id(verify_claims(records, TESTS, FAST))["C4"]
    assert c4.status == INCONCLUSIVE and all("covers 0.5" in row["outcome"] for row in c4.evidence), c4.reason


def test_seeds_of_a_record_are_pooled(tmp_path):
    # EAG-RL's file lists three seeds' predictions: the comparison uses their seed mean, not the first seed.
    records = _records(tmp_path, source="mimic_iv", target="tjh")
    eag = next(r for r in records if r.descriptor.method == "eag_rl" and r.descriptor.dataset == ICU)
    folder = eag.path.parent
    for seed, quality in ((43, -1.0), (44, -1.0)):
        metrics_file(folder / f"seed{seed}", quality, seed=seed)
    eag.metrics["seeds"] = {"n_seeds": 3, "predictions": {"42": "predictions.csv", "43": "seed43/predictions.csv",
                                                          "44": "seed44/predictions.csv"}}
    assert len(eag.seed_predictions) == 3
    c1 = _by_id(verify_claims(records, TESTS, FAST))["C1"]
    assert c1.status == FAILS, c1.reason  # two of three seeds are worse than chance
    assert c1.evidence[0]["EAG-RL seeds"] == 3 and c1.evidence[0]["n"] == 120  # the patients the test rests on


def test_config_checks_the_decision_rule():
    with pytest.raises(ConfigError, match="decision"):
        ClaimsConfig(decision="vote")
    with pytest.raises(ConfigError, match="alpha"):
        ClaimsConfig(alpha=0)


def test_eagrl_verify_writes_claims_and_comparison(tmp_path, monkeypatch):
    # The default profile today: experts only. Every claim must say why it cannot be tested.
    for model, quality in (("gru", 1.2), ("concare", 1.0)):
        metrics_file(tmp_path / f"models/experts/{ICU}/{model}/{TASK}", quality)
    params = {"metrics": {"bootstrap_resamples": 40},
              "report": {"sources": [{"pattern": "models/experts/{dataset}/{method}/{task}/metrics.json",
                                      "fields": {"family": "expert"}}]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["verify"]) == 0
    text = (tmp_path / "results/claims.md").read_text()
    assert text.count(f"**{NOT_TESTABLE}**") == 10  # summary table + one section per claim
    assert "collected 2 evaluation(s): expert 2" in text
    claims = json.loads((tmp_path / "results/claims.json").read_text())
    assert set(claims) == {"C1", "C2", "C3", "C4", "C5"}
    comparison = (tmp_path / "results/paper_comparison.md").read_text()
    assert "0 filled" in comparison
    assert json.loads((tmp_path / "results/paper_comparison.json").read_text()) == []


def test_c3_without_ablation_variants_says_how_to_get_them(tmp_path):
    records = [r for r in _records(tmp_path) if r.descriptor.method not in ("wo_stage1", "wo_ratt", "wo_eps")]
    c3 = _by_id(verify_claims(records, TESTS, FAST))["C3"]
    assert c3.status == NOT_TESTABLE
    assert "['wo_stage1', 'wo_ratt', 'wo_eps']" in c3.reason and "profiles/cpu-full.yaml" in c3.reason
