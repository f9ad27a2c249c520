"""Claims C1-C5: verdicts from hand-made evaluations whose ordering is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from benchmark.config import ConfigError
from benchmark.reports.paper.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_TESTABLE,
    ClaimsConfig,
    answer_problem,
    chance_problem,
    load_claims,
    verify_claims,
)
from benchmark.reports.paper.evidence import CONTRADICTS
from benchmark.reports.paper.verify import _claims_markdown
from eagrl.cli import main
from tests.benchmark.fake_results import FAST, metrics_file, record

ICU, WARD, TASK, BB = "synthetic_icu", "synthetic_ward", "mortality", "smollm2"
TESTS = ClaimsConfig(resamples=400)  # smallest p 2/401: below alpha / m for the m <= 8 comparisons here


def _records(tmp_path, eag=1.0, concare=0.6, no_stage1=0.7, no_stage2=0.4, with_eag=True, source=ICU, target=WARD,
             eag_noise=1, sft=0.4, vanilla=0.2, vanilla_unparsable=None, eag_unparsable=None):
    def make(name, quality, unparsable=None, **fields):
        return record(tmp_path / name, quality, seed=eag_noise if name == "eag" else 1, unparsable=unparsable, **fields)

    out = [
        make("concare", concare, dataset=ICU, task=TASK, method="concare", family="expert"),
        make("vanilla", vanilla, vanilla_unparsable, dataset=ICU, task=TASK, method="vanilla", family="prompting",
             backbone=BB),
        make("sft", sft, dataset=ICU, task=TASK, method="label_sft", family="finetune", backbone=BB),
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
            make("eag", eag, eag_unparsable, dataset=ICU, task=TASK, method="eag_rl", family="eag_rl", backbone=BB),
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
    # 2 same-backbone LLM baselines x 2 metrics; ConCare (an expert) is reported beside, not counted.
    assert c1.numbers == {"supports": 4, "contradicts": 0, "undecided": 0, "comparisons": 4, "beside_comparisons": 2}
    assert c1.evidence[0]["p (vs best)"] != "—"  # paired tests ran on the predictions files
    assert c1.evidence[0]["MDE vs best"] != "—"
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
             record(tmp_path / "concare_none", 0.2, dataset=ICU, task=TASK, method="concare", family="expert",
                    condition="none"),
             record(tmp_path / "vanilla_none", 0.21, dataset=ICU, task=TASK, method="vanilla", family="prompting",
                    backbone=BB, condition="none")]  # above chance: a reference at chance is not judged
    assert _by_id(verify_claims(_records(tmp_path), TESTS, FAST))["C4"].status == HOLDS
    c4 = _by_id(verify_claims(_records(tmp_path) + extra, TESTS, FAST))["C4"]
    assert c4.status == FAILS and c4.evidence[0]["reference"] == "none", c4.reason


def test_c1_fails_when_a_baseline_is_better(tmp_path):
    verdicts = _by_id(verify_claims(_records(tmp_path, eag=1.0, sft=1.5), TESTS, FAST))
    assert verdicts["C1"].status == FAILS
    assert "2 support, 2 contradict and 0 are undecided of 4" in verdicts["C1"].reason


def test_c3_fails_when_stage1_matters_more(tmp_path):
    verdicts = _by_id(verify_claims(_records(tmp_path, no_stage1=0.4, no_stage2=0.7), TESTS, FAST))
    assert verdicts["C3"].status == FAILS
    assert [row["outcome"] for row in verdicts["C3"].evidence if "stage" in row["comparison (claimed > 0)"]] == \
        ["contradicts", "contradicts"]


def test_unpowered_comparisons_are_inconclusive_not_holds(tmp_path):
    # EAG-RL a little better than every comparator but on other noise: the means favour it, the paired tests
    # cannot tell. The paper's rule (decision: mean) says holds; the default says inconclusive.
    close = _records(tmp_path, eag=0.7, eag_noise=5, sft=0.6, source="mimic_iv", target="tjh")  # AUROC 0.898 vs 0.887
    by_mean = _by_id(verify_claims(close, ClaimsConfig(decision="mean", resamples=400), FAST))
    paired = _by_id(verify_claims(close, TESTS, FAST))
    assert by_mean["C1"].status == HOLDS, by_mean["C1"].reason
    assert paired["C1"].status == INCONCLUSIVE, paired["C1"].reason
    assert paired["C1"].numbers["undecided"] > 0 and paired["C1"].numbers["contradicts"] == 0


def test_a_contradiction_needs_the_bonferroni_level(tmp_path):
    # A baseline better than EAG-RL at p < alpha but not below alpha / m is undecided, not a failure.
    records = _records(tmp_path, eag=1.0, sft=1.5)
    loose = _by_id(verify_claims(records, ClaimsConfig(resamples=400, alpha=0.5), FAST))["C1"]
    assert loose.status == FAILS
    strict = _by_id(verify_claims(records, ClaimsConfig(resamples=40), FAST))["C1"]  # smallest p 2/41 > 0.05/4
    assert strict.status == INCONCLUSIVE and strict.numbers["contradicts"] == 0, strict.reason


def test_a_missing_predictions_file_makes_a_comparison_undecided(tmp_path):
    records = _records(tmp_path, source="mimic_iv", target="tjh")
    (records[2].path.parent / "predictions.csv").unlink()  # label_sft's
    c1 = _by_id(verify_claims(records, TESTS, FAST))["C1"]
    assert c1.status == INCONCLUSIVE and c1.numbers["undecided"] == 2, c1.reason


def test_c4_is_not_testable_for_a_model_at_chance(tmp_path):
    # A model that says nothing cannot degrade: its "robustness" is no evidence.
    records = _records(tmp_path, eag=0.0)
    c4 = _by_id(verify_claims(records, TESTS, FAST))["C4"]
    assert c4.status == NOT_TESTABLE and "EAG-RL is at chance: AUROC 0.54 [0.46, 0.63]" in c4.reason, c4.reason
    assert [row["outcome"].split(":")[0] for row in c4.evidence] == ["not testable"]


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


# ------------------------------------------------------------------------------------- verdict gates
def test_answer_and_chance_problems(tmp_path):
    fields = {"dataset": ICU, "task": TASK, "method": "vanilla", "family": "prompting", "backbone": BB}
    assert answer_problem(record(tmp_path / "a", 1.0, unparsable=12, **fields)) is None  # 90 % parse: answers
    low = record(tmp_path / "b", 1.0, unparsable=75, **fields)
    assert answer_problem(low, 0.9, "the base model") == \
        "the base model does not answer: 38 % of answers parse (< 90 %)"
    assert answer_problem(low, 0.3) is None
    assert chance_problem(record(tmp_path / "c", 1.0, **fields)) is None
    assert chance_problem(record(tmp_path / "d", 0.0, **fields), "the base model") == \
        "the base model is at chance: AUROC 0.54 [0.46, 0.63]"


def test_c2_is_not_testable_when_the_base_does_not_answer(tmp_path):
    c2 = _by_id(verify_claims(_records(tmp_path, vanilla_unparsable=75), TESTS, FAST))["C2"]
    assert c2.status == NOT_TESTABLE, c2.reason
    assert "the base model does not answer: 38 % of answers parse (< 90 %)" in c2.reason
    assert all(row["vs base %"].startswith("not testable") for row in c2.evidence)


def test_c1_to_c3_are_not_testable_when_eag_rl_itself_does_not_answer(tmp_path):
    verdicts = _by_id(verify_claims(_records(tmp_path, eag_unparsable=75), TESTS, FAST))
    for claim in ("C1", "C2", "C3"):
        assert verdicts[claim].status == NOT_TESTABLE, (claim, verdicts[claim].reason)
        assert "synthetic_icu/mortality: EAG-RL does not answer: 38 % of answers parse (< 90 %)" in verdicts[claim].reason


def test_c2_is_not_testable_when_the_base_is_at_chance(tmp_path):
    c2 = _by_id(verify_claims(_records(tmp_path, vanilla=0.0), TESTS, FAST))["C2"]
    assert c2.status == NOT_TESTABLE and "the base model is at chance: AUROC 0.54 [0.46, 0.63]" in c2.reason
    # Without the gate a base at chance makes a large relative gain easy; the best same-backbone baseline stays.
    assert c2.evidence[0]["vs best same-backbone baseline %"] != "—"


def test_c2_reports_the_gain_over_the_best_same_backbone_baseline(tmp_path):
    records = _records(tmp_path, concare=3.0)  # an expert above EAG-RL is no same-backbone baseline
    c2 = _by_id(verify_claims(records, TESTS, FAST))["C2"]
    eag, sft = records[-7], records[2]
    expected = np.mean([100 * (eag.mean(m) - sft.mean(m)) / sft.mean(m) for m in ("auroc", "auprc")])
    assert c2.numbers["relative_to_best_baseline_pct"] == pytest.approx(expected)
    assert "vs best same-backbone baseline" in c2.reason and c2.evidence[0]["MDE (80 % power)"] != "—"


def test_c1_ignores_experts_for_the_verdict_and_reports_them_beside(tmp_path):
    c1 = _by_id(verify_claims(_records(tmp_path, concare=3.0), TESTS, FAST))["C1"]
    assert c1.status == HOLDS, c1.reason  # ConCare beats EAG-RL, but it is an expert
    assert c1.numbers["comparisons"] == 4 and c1.numbers["beside_comparisons"] == 2
    assert {row["family"] for row in c1.beside} == {"expert"}
    assert [row["outcome"] for row in c1.beside] == [CONTRADICTS, CONTRADICTS]
    assert all(row["MDE (80 % power)"] != "—" for row in c1.beside)
    assert all("concare" not in row["best baseline"] for row in c1.evidence)
    text = _claims_markdown([c1], "test", "inventory", TESTS)
    section = text.split("## C1")[1]
    assert "Reported beside, not part of the verdict" in section and "MDE vs best" in section
    assert section.index("Verdict:") < section.index("Reported beside")


def test_c4_cell_is_not_judged_at_a_low_parse_rate(tmp_path):
    c4 = _by_id(verify_claims(_records(tmp_path, vanilla_unparsable=30), TESTS, FAST))["C4"]
    assert c4.status == NOT_TESTABLE, c4.reason
    assert f"{ICU}/{TASK}/{BB} not judged: 'vanilla ({BB})' does not answer: 75 % of answers parse (< 90 %)" in c4.reason
    assert _by_id(verify_claims(_records(tmp_path, vanilla_unparsable=30), ClaimsConfig(resamples=400,
                                                                                       min_parse_rate=0.7), FAST))["C4"].status == HOLDS


def _grpo(tmp_path):
    return record(tmp_path / "grpo", 0.5, dataset=ICU, task=TASK, method="grpo", family="rl", backbone=BB)


def _flat_ratt(folder, varies=False):
    """EAG-RL's trajectories beside its metrics file: two steps of two groups; R_att constant within a group."""
    rows = ["step,group,id,attention"] + [f"{step},{group},P{group},{0.1 * group + (0.01 * k if varies else 0)}"
                                          for step in (1, 2) for group in (0, 1) for k in range(3)]
    (folder / "epsilon.csv").write_text("\n".join(rows) + "\n")


def test_without_ratt_variation_c3_and_eag_rl_vs_grpo_are_not_judged(tmp_path):
    records = _records(tmp_path) + [_grpo(tmp_path)]
    eag = next(r for r in records if r.descriptor.method == "eag_rl" and r.descriptor.dataset == ICU)
    verdicts = _by_id(verify_claims(records, TESTS, FAST))
    assert verdicts["C3"].status == HOLDS and verdicts["C1"].numbers["comparisons"] == 6  # nothing says otherwise
    _flat_ratt(eag.path.parent)
    verdicts = _by_id(verify_claims(records, TESTS, FAST))
    c3, c1 = verdicts["C3"], verdicts["C1"]
    assert c3.status == NOT_TESTABLE and "R_att never varied" in c3.reason and "epsilon.csv" in c3.reason
    assert c1.status == HOLDS and c1.numbers["comparisons"] == 4 and "set aside" in c1.reason
    assert [row["outcome"].split(":")[0] for row in c1.beside if row["family"] == "rl"] == ["not judged"] * 2
    _flat_ratt(eag.path.parent, varies=True)
    assert _by_id(verify_claims(records, TESTS, FAST))["C3"].status == HOLDS


def test_ratt_variation_is_read_from_rl_training_json_without_run_folders(tmp_path):
    rows = [{"dataset": ICU, "task": TASK, "variant": "eag_rl", "seed": s, "ratt_varying_groups": 0.0} for s in (1, 2)]
    c3 = _by_id(verify_claims(_records(tmp_path), TESTS, FAST, training_rows=rows))["C3"]
    assert c3.status == NOT_TESTABLE and "(2 seed(s), results/rl_training.json)" in c3.reason
    rows[1]["ratt_varying_groups"] = 0.4
    assert _by_id(verify_claims(_records(tmp_path), TESTS, FAST, training_rows=rows))["C3"].status == HOLDS


def test_min_parse_rate_is_checked():
    with pytest.raises(ConfigError, match="min_parse_rate"):
        ClaimsConfig(min_parse_rate=90)


def test_c4_degradation_columns_are_the_tested_quantities(tmp_path):
    """The two degradation columns come from the same seed-pooled bootstrap means as the test, so the
    comparator's minus EAG-RL's is the difference column (not a first-seed mean beside a pooled test)."""
    c4 = _by_id(verify_claims(_records(tmp_path), TESTS, FAST))["C4"]
    for row in c4.evidence:
        difference = float(row["difference [95% CI]"].split()[0])
        shown = float(row["comparator degradation"]) - float(row["EAG-RL degradation"])
        assert abs(shown - difference) < 1e-3, row
