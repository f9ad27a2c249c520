"""Every profile (params.yaml and profiles/*.yaml) loads through every config loader the pipeline uses.

A misspelt key or a wrong type in a profile then fails here, not hours into `make repro` on a GPU.
Nothing is built: no cohort, no model; only the typed configs of each stage.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark.config import from_mapping, load_params
from benchmark.data.sources import SOURCES
from benchmark.evaluate import metrics_config
from benchmark.experiments.cross_domain import load_cross_domain_config
from benchmark.experiments.robustness import load_robustness_config
from benchmark.launch import load_launch_config
from benchmark.reports.collect import report_config
from benchmark.reports.paper.compare import ComparisonConfig
from benchmark.reports.paper.verify import PaperConfig
from eagrl.ops.configure import configure
from eagrl.ops.regress_config import regress_config
from methods.eag_rl.config import load_rl_section, load_stage1_config
from methods.eag_rl.variants import resolve_variant, reward_config
from methods.experts.config import load_experts_config
from methods.hybrid.config import load_hybrid_config
from methods.llm.backbone import resolve_source
from methods.llm.config import load_llm_config

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
PAPER = REPO / "profiles" / "paper.yaml"
PROFILES = [PARAMS, *sorted((REPO / "profiles").glob("*.yaml"))]


def is_overlay(path: Path) -> bool:
    """An overlay profile (``extends: params.yaml``) holds only the keys it changes."""
    return path != PARAMS and "extends" in load_params(path)


@pytest.fixture
def resolved(tmp_path):
    """The params file a profile gives (an overlay merged onto its base, as `eagrl configure --profile` does)."""

    def resolve(path: Path) -> Path:
        if not is_overlay(path):
            return path
        (tmp_path / "params.yaml").write_text(PARAMS.read_text())
        configure(tmp_path / "params.yaml", profile=str(path))
        return tmp_path / "params.yaml"

    return resolve


def test_the_paper_profile_exists():
    assert PAPER in PROFILES


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profile_loads_through_every_stage_config(profile, resolved):
    path = resolved(profile)
    params = load_params(path)
    assert set(params) == set(load_params(PARAMS)), "a profile has exactly the top-level keys of params.yaml"
    assert isinstance(params["profile"], str) and isinstance(params["seed"], int)
    assert set(params["runtime"]) == {"threads"}

    for name, entry in params["datasets"].items():  # prepare@<name>: the source's config class, nothing built
        source = SOURCES[entry["source"]]()
        from_mapping(source.config_class, entry, f"{path.name}: datasets.{name}")

    metrics_config(path)
    launch = load_launch_config(path)  # its accelerate_config is a file of profiles/accelerate/
    assert (REPO / launch.accelerate_config).is_file()
    experts = load_experts_config(path)
    load_hybrid_config(path)
    llm = load_llm_config(path)
    report_config(path)
    paper = from_mapping(PaperConfig, params["paper"], f"{path.name}: paper")
    ComparisonConfig(paper.epsilon, paper.acceptable)
    regress_config(path)

    stage1 = load_stage1_config(path)
    assert stage1.search.expert in experts.models
    section = load_rl_section(params, path)
    for variant in section.variants:
        config = resolve_variant(section, variant, path)
        reward_config(params, config, path)
    for pair in section.pairs:
        assert pair["dataset"] in params["datasets"], f"{path.name}: eag_rl.rl.pairs names an unknown data set"
        tasks = params["datasets"][pair["dataset"]].get("tasks")
        assert tasks is None or pair["task"] in tasks
    assert llm.evaluation.split in ("train", "val", "test")
    load_robustness_config(params, path)  # its LLM pairs are RL pairs (robustness_llm_trained runs the stage-1 policy and the variants there)
    load_cross_domain_config(params, path)  # its RL variants are trained variants


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profile_reads_every_kind_of_metrics_file(profile, resolved):
    """report.sources of a profile find what every stage writes (main table, claims C4 and C5 read them)."""
    patterns = {source["pattern"] for source in load_params(resolved(profile))["report"]["sources"]}
    assert patterns == {source["pattern"] for source in load_params(PARAMS)["report"]["sources"]}


def values_equal_to_base(overlay: dict, base: dict, where: str = "") -> list[str]:
    """Dotted keys of ``overlay`` whose value equals ``base``'s (a ``_replace`` mapping is a whole value)."""
    same = []
    for key, value in overlay.items():
        if isinstance(value, dict) and not value.get("_replace") and isinstance(base.get(key), dict):
            same += values_equal_to_base(value, base[key], f"{where}{key}.")
        elif key != "extends" and key in base and base[key] == value:
            same.append(f"{where}{key}")
    return same


@pytest.mark.parametrize("profile", sorted((REPO / "profiles").glob("*.yaml")), ids=lambda p: p.name)
def test_every_profile_is_an_overlay_of_what_differs(profile):
    """A profile names its base and holds only what differs from it, so each value is stated once."""
    overlay = load_params(profile)
    assert overlay.get("extends") == "params.yaml", f"{profile.name}: not an overlay (extends: params.yaml)"
    assert values_equal_to_base(overlay, load_params(PARAMS)) == []


def test_the_overlay_check_finds_a_repeated_value():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": {"e": 1}}
    assert values_equal_to_base({"a": {"b": 1, "c": [1]}, "d": {"_replace": True, "e": 1}}, base) == ["a.b"]


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_value_carries_a_comment(path):
    """Leaf keys (``key: value``) carry a ``#`` comment on their line; section headers and YAML flow
    continuation lines need none."""
    missing = []
    open_braces = 0  # > 0 inside a flow mapping spread over lines (its key line carries the comment)
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        inside, open_braces = open_braces > 0, open_braces + stripped.count("{") - stripped.count("}")
        if inside or not stripped or stripped.startswith(("#", "{")) or "#" in line or stripped.endswith(":"):
            continue
        if re.match(r"^(- )?[\w\"*/.-]+:\s*\S", stripped) or stripped.startswith("- "):
            missing.append(f"{path.name}:{number}: {stripped}")
    # params.yaml predates this rule in places (list items, family names); hold complete profiles to it fully
    # (an overlay's keys are explained by the comments of the base it merges into)
    if path != PARAMS and not is_overlay(path):
        assert not missing, "values without a comment:\n" + "\n".join(missing)


def test_paper_profile_values():
    params = load_params(PAPER)
    llm = load_llm_config(PAPER)
    assert params["profile"] == "paper"
    assert resolve_source(llm.backbone.source).kind == "hf"
    assert Path(llm.backbone.source).name == "Qwen2.5-7B-Instruct"
    assert llm.generation.backend == "vllm" and llm.backbone.dtype == "bfloat16"
    assert llm.evaluation.n_patients == 0  # the whole test split
    assert {"mimic_iv", "tjh"} <= set(params["datasets"])
    assert metrics_config(PAPER).bootstrap_resamples == 100
    section = load_rl_section(params, PAPER)
    assert {(p["dataset"], p["task"]) for p in section.pairs} == {
        ("mimic_iv", "mortality"), ("mimic_iv", "readmission"), ("tjh", "mortality")}
    eag = resolve_variant(section, "eag_rl", PAPER)
    assert (eag.eps_min, eag.eps_max, eag.adaptive_clip) == (0.2, 0.4, True)
    assert (eag.use_vllm, eag.vllm_mode) == (True, "colocate")  # RL generates on vLLM beside training
    launch = load_launch_config(PAPER)
    assert launch.processes > 1 and launch.accelerate_config == "profiles/accelerate/ddp.yaml"
    reward = reward_config(params, eag, PAPER)
    assert (reward.weighting, reward.lam) == ("paper", 0.6)
    assert (reward.released_loglik, reward.released_margin, reward.released_iou) == (1.0, 0.5, 0.1)


def test_configure_selects_the_paper_profile_and_sets_a_data_path(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text())
    from tests.benchmark.data.test_tjh import write_tiny_workbook

    workbook = write_tiny_workbook(tmp_path / "tjh.xlsx")  # configure reads it (a corrupt one fails there)
    configure(params, tjh=str(workbook), profile=str(PAPER))
    data = load_params(params)
    assert data["profile"] == "paper"
    assert data["datasets"]["tjh"]["path"] == str(workbook.resolve())
    assert data["datasets"]["tjh"]["n_test"] == 200  # the rest of the entry is kept
    assert data["datasets"]["mimic_iv"]["path"].startswith("/path/to/")  # placeholder until --mimic-iv DIR
    assert "# PLACEHOLDER" in params.read_text()  # comments survive the round trip
