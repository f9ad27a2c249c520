"""Stage report_main: collecting metrics files of any subset of methods into results/main.*."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from benchmark.descriptor import DescriptorError
from benchmark.reports.collect import ReportConfig, collect, pattern_glob, pattern_regex
from benchmark.reports.main import write_main
from eagrl.cli import main
from tests.benchmark.fake_results import metrics_file

SOURCES = [
    {"pattern": "models/experts/{dataset}/{method}/{task}/metrics.json", "fields": {"family": "expert"}},
    {"pattern": "outputs/llm/**/{method}/metrics.json"},
]
CONFIG = ReportConfig(sources=SOURCES, families={"vanilla": "prompting"})


def test_pattern_regex_captures_placeholders_and_globstar():
    regex = pattern_regex("models/experts/{dataset}/{method}/{task}/metrics.json")
    match = regex.match("models/experts/synthetic_icu/gru/mortality/metrics.json")
    assert match.groupdict() == {"dataset": "synthetic_icu", "method": "gru", "task": "mortality"}
    assert regex.match("models/experts/synthetic_icu/gru/mortality/extra/metrics.json") is None
    deep = pattern_regex("outputs/**/{method}/metrics.json")
    assert deep.match("outputs/a/b/c/qd/metrics.json").group("method") == "qd"
    assert deep.match("outputs/qd/metrics.json").group("method") == "qd"
    assert pattern_glob("a/{x}/m*.json") == "a/*/m*.json"


def _tree(root):
    metrics_file(root / "models/experts/synthetic_icu/gru/mortality", 1.5)
    metrics_file(root / "models/experts/synthetic_icu/logistic/mortality", 0.8)
    metrics_file(root / "outputs/llm/synthetic_icu/mortality/vanilla", 0.2,
                 {"dataset": "synthetic_icu", "task": "mortality", "method": "vanilla", "backbone": "smollm2"},
                 unparsable=30)
    # A robustness evaluation: collected, but not in the main table.
    metrics_file(root / "outputs/llm/synthetic_icu/mortality/shuffle/qd", 0.1,
                 {"dataset": "synthetic_icu", "task": "mortality", "method": "qd", "family": "prompting",
                  "backbone": "smollm2", "condition": "shuffle:1.0"})
    # A stage still writing its folder atomically: a hidden temporary folder, never collected.
    metrics_file(root / "models/experts/synthetic_icu/.gru.tmp123/mortality", 0.1)
    # No family anywhere: listed as not collected, not dropped silently.
    metrics_file(root / "outputs/llm/synthetic_icu/mortality/mystery", 0.3,
                 {"dataset": "synthetic_icu", "task": "mortality", "method": "mystery"})


def test_collect_places_files_and_reports_the_rest(tmp_path):
    _tree(tmp_path)
    collection = collect(CONFIG, tmp_path)
    names = sorted((r.descriptor.method, r.descriptor.family, r.descriptor.condition) for r in collection.records)
    assert names == [("gru", "expert", "standard"), ("logistic", "expert", "standard"),
                     ("qd", "prompting", "shuffle:1.0"), ("vanilla", "prompting", "standard")]
    assert len(collection.standard()) == 3
    assert [str(p) for p, _ in collection.skipped] == ["outputs/llm/synthetic_icu/mortality/mystery/metrics.json"]
    assert "family" in collection.skipped[0][1]


def test_descriptor_contradicting_the_path_is_not_collected(tmp_path):
    metrics_file(tmp_path / "models/experts/synthetic_icu/gru/mortality", 1.0,
                 {"dataset": "synthetic_icu", "task": "mortality", "method": "retain", "family": "expert"})
    collection = collect(CONFIG, tmp_path)
    assert not collection.records and "retain" in collection.skipped[0][1]


def test_two_files_with_one_descriptor_is_an_error(tmp_path):
    for name in ("a", "b"):
        metrics_file(tmp_path / f"outputs/llm/{name}/vanilla", 0.2,
                     {"dataset": "d", "task": "t", "method": "vanilla", "backbone": "x"})
    with pytest.raises(DescriptorError, match="same descriptor"):
        collect(CONFIG, tmp_path)


def test_write_main_tables(tmp_path):
    _tree(tmp_path)
    paths = write_main(collect(CONFIG, tmp_path), CONFIG, tmp_path / "results", ["synthetic_icu"])
    md = paths[0].read_text()
    assert "synthetic_icu · mortality · AUROC" in md and "±" in md
    assert "Not collected" in md and "mystery" in md
    assert "robustness.md" in md
    nested = json.loads((tmp_path / "results/main.json").read_text())
    rows = nested["synthetic_icu"]["mortality"]
    assert set(rows) == {"gru", "logistic", "vanilla (smollm2)"}
    assert rows["gru"]["auroc_mean"] > rows["vanilla (smollm2)"]["auroc_mean"]
    assert rows["gru"]["n"] == 120
    csv = (tmp_path / "results/main.csv").read_text().splitlines()
    assert csv[0].startswith("dataset,task,family,method,backbone,n,") and len(csv) == 4
    # Experts come before prompting (family order), as in the paper's tables.
    assert [line.split(",")[3] for line in csv[1:]] == ["gru", "logistic", "vanilla"]
    # LLM rows carry the worst-case scoring of their unparsable answers; experts leave it blank.
    llm = rows["vanilla (smollm2)"]
    assert llm["parse_failures"] == 30 and llm["auroc_worst_case_mean"] < llm["auroc_mean"]
    assert rows["gru"]["auroc_worst_case_mean"] is None
    vanilla_file = json.loads((tmp_path / "outputs/llm/synthetic_icu/mortality/vanilla/metrics.json").read_text())
    assert llm["auroc_worst_case_mean"] == vanilla_file["worst_case"]["auroc"]["mean"]  # full precision
    details = md.split("## Details")[1]
    header = next(line for line in details.splitlines() if line.startswith("|"))
    cells = {line.split("|")[4].strip(): [c.strip() for c in line.split("|")]
             for line in details.splitlines() if line.startswith("|") and "synthetic_icu" in line}
    column = [c.strip() for c in header.split("|")].index("AUROC (worst case)")
    assert cells["gru"][column] == "" and "±" in cells["vanilla"][column]
    assert cells["vanilla"][column].startswith(f"{llm['auroc_worst_case_mean']:.3f}")


def test_report_main_with_nothing_run_yet(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"report": {"sources": SOURCES}}))
    assert main(["report-main", "--params", str(params), "--root", str(tmp_path), "--out", str(tmp_path / "r")]) == 0
    assert "No evaluated method was found yet" in (tmp_path / "r/main.md").read_text()
    assert json.loads((tmp_path / "r/main.json").read_text()) == {}


def test_unknown_placeholder_is_a_config_error(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"report": {"sources": [{"pattern": "x/{model}/metrics.json"}]}}))
    assert main(["report-main", "--params", str(params), "--root", str(tmp_path), "--out", str(tmp_path / "r")]) == 2


def test_predictions_are_found_under_the_collection_root(tmp_path):
    """Paired tests need the predictions files; with --root elsewhere they are relative to that root."""
    folder = tmp_path / "outputs/llm/synthetic_icu/vanilla/mortality"
    path = metrics_file(folder, 0.5, {"dataset": "synthetic_icu", "task": "mortality", "method": "vanilla",
                                      "family": "prompting"})
    data = json.loads(path.read_text())
    data["predictions"] = "outputs/llm/synthetic_icu/vanilla/mortality/predictions.csv"  # as a stage run at the root writes it
    path.write_text(json.dumps(data))
    config = ReportConfig(sources=[{"pattern": "outputs/llm/{dataset}/{method}/{task}/metrics.json"}])
    (record,) = collect(config, tmp_path).records
    assert record.predictions == folder / "predictions.csv"
    data["predictions"] = "outputs/llm/.tmp-vanilla/mortality/predictions.csv"  # a stage's temporary folder, gone
    path.write_text(json.dumps(data))
    (record,) = collect(config, tmp_path).records
    assert record.predictions == folder / "predictions.csv"  # the sibling file


def test_main_tables_do_not_depend_on_perturbed_evaluations(tmp_path):
    """Robustness / cross-domain files are not inputs of report_main: whether they exist yet must not change it."""
    _tree(tmp_path)
    first = write_main(collect(CONFIG, tmp_path), CONFIG, tmp_path / "a", ["synthetic_icu"])
    for path in tmp_path.glob("outputs/llm/synthetic_icu/mortality/shuffle/qd/*"):
        path.unlink()
    second = write_main(collect(CONFIG, tmp_path), CONFIG, tmp_path / "b", ["synthetic_icu"])
    assert [p.read_text() for p in first] == [p.read_text() for p in second]


def test_worst_case_column_when_the_main_rule_is_already_worst_case(tmp_path):
    """A file scored with metrics.unparsable: worst_case shows its main numbers there (its other block is the 0.5 rule)."""
    from benchmark.descriptor import MethodDescriptor
    from benchmark.evaluate import evaluate, read_predictions
    from benchmark.metrics import MetricsConfig
    from benchmark.reports.collect import Record

    descriptor = MethodDescriptor(dataset="d", task="t", method="qd", family="prompting")
    rule = MetricsConfig(bootstrap_resamples=40, seed=3, unparsable="worst_case")
    llm = read_predictions(json.loads(metrics_file(tmp_path / "llm", 0.5, unparsable=20).read_text())["predictions"])
    expert = read_predictions(json.loads(metrics_file(tmp_path / "expert", 0.5).read_text())["predictions"])
    scored = evaluate(llm, rule)
    assert Record(descriptor, scored, tmp_path).worst_case("auroc") == Record(descriptor, scored, tmp_path).summary("auroc")
    assert scored["uninformative"]["auroc"]["mean"] > scored["auroc"]["mean"]
    assert all(v != v for v in Record(descriptor, evaluate(expert, rule), tmp_path).worst_case("auroc").values())


def test_seed_and_mechanism_columns_read_their_blocks():
    from benchmark.reports.main import mechanism_columns, seed_columns

    rl = {"seeds": {"n_seeds": 3, "metrics": {"auroc": {"mean": 0.7, "std": 0.1}}},
          "mechanism": {"names_feature_rate": 1.0, "truncation_rate": 0.0, "alignment_truth": 0.4,
                        "alignment_expert": None}}
    row = seed_columns(rl, ["auroc", "auprc"])
    assert row["n_seeds"] == 3 and row["auroc_seeds_mean"] == 0.7 and row["auroc_seeds_std"] == 0.1
    assert math.isnan(row["auprc_seeds_mean"])
    assert seed_columns({}, ["auroc"])["n_seeds"] == 1
    mechanism = mechanism_columns(rl)
    assert mechanism["alignment_truth"] == 0.4 and math.isnan(mechanism["alignment_expert"])
    assert all(math.isnan(v) for v in mechanism_columns({}).values())
