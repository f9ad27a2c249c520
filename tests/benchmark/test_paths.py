"""benchmark.paths: each path shape on an example, and no other module keeps its own artifact root."""

from __future__ import annotations

import ast
from pathlib import Path

from benchmark import paths
from tests.conftest import REPO

ROOT_PREFIXES = ("results", "models", "outputs", "data/cohorts")


def test_roots():
    assert {name: value.as_posix() for name, value in vars(paths).items() if name.isupper()} == {
        "COHORTS": "data/cohorts", "RESULTS": "results", "MODELS": "models",
        "EXPERTS": "models/experts", "HYBRID": "models/hybrid", "BACKBONE": "models/backbone",
        "TESTBED": "models/testbed", "LLM_MODELS": "models/llm", "OUTPUTS": "outputs", "LLM": "outputs/llm", "EAG_RL_OUTPUTS": "outputs/eag_rl",
        "ROBUSTNESS": "outputs/robustness", "CROSS_DOMAIN": "outputs/cross_domain",
    }


def test_shapes():
    assert paths.cohort_dir("tjh") == Path("data/cohorts/tjh")
    assert paths.expert_dir("tjh", "concare") == Path("models/experts/tjh/concare")
    assert paths.expert_dir("tjh", "concare", "mortality") == Path("models/experts/tjh/concare/mortality")
    assert paths.expert_dir("tjh", "mlp_fusion", "mortality", paths.HYBRID) == Path("models/hybrid/tjh/mlp_fusion/mortality")
    assert paths.importance_path("tjh", "concare", "mortality") == \
        Path("models/experts/tjh/concare/mortality/importance_train.jsonl")
    assert paths.importance_path("tjh", "concare", "mortality", "test") == \
        Path("models/experts/tjh/concare/mortality/importance_test.jsonl")
    assert paths.llm_model_dir("tjh", "label_sft") == Path("models/llm/tjh/label_sft")
    assert paths.llm_model_dir("tjh", "grpo", "mortality") == Path("models/llm/tjh/grpo/mortality")
    assert paths.adapter_dir("tjh", "wo_stage2", "mortality") == Path("models/llm/tjh/wo_stage2/mortality/adapter")
    assert paths.search_dir("tjh", "mortality") == Path("outputs/eag_rl/tjh/mortality/mcts")
    assert paths.llm_output_dir("tjh", "qd") == Path("outputs/llm/tjh/qd")
    assert paths.llm_output_dir("tjh", "qd", "mortality") == Path("outputs/llm/tjh/qd/mortality")
    assert paths.robustness_dir("tjh", "experts") == Path("outputs/robustness/tjh/experts")
    assert paths.robustness_dir("tjh", "qd", "mortality") == Path("outputs/robustness/tjh/qd/mortality")
    assert paths.cross_domain_dir("mimic_iv", "tjh", "qd", "mortality") == \
        Path("outputs/cross_domain/mimic_iv_to_tjh/qd/mortality")


def test_every_function_takes_another_root(tmp_path):
    assert paths.cohort_dir("tjh", tmp_path) == tmp_path / "tjh"
    assert paths.expert_dir("tjh", "gru", "mortality", tmp_path) == tmp_path / "tjh/gru/mortality"
    assert paths.importance_path("tjh", "gru", "mortality", "val", tmp_path) == \
        tmp_path / "tjh/gru/mortality/importance_val.jsonl"
    assert paths.llm_model_dir("tjh", "dapo", "mortality", str(tmp_path)) == tmp_path / "tjh/dapo/mortality"
    assert paths.adapter_dir("tjh", "label_sft", "mortality", tmp_path) == tmp_path / "tjh/label_sft/mortality/adapter"
    assert paths.search_dir("tjh", "mortality", tmp_path) == tmp_path / "tjh/mortality/mcts"
    assert paths.llm_output_dir("tjh", "qd", "mortality", tmp_path) == tmp_path / "tjh/qd/mortality"
    assert paths.robustness_dir("tjh", "qd", "mortality", tmp_path) == tmp_path / "tjh/qd/mortality"
    assert paths.cross_domain_dir("a", "b", "qd", "mortality", tmp_path) == tmp_path / "a_to_b/qd/mortality"


def root_constants(path: Path) -> list[str]:
    """``line: NAME`` of every module-level assignment in ``path`` whose value is ``Path("<artifact root>...")``."""
    found = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            value = node.value
            if (isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) == "Path"
                    and value.args and isinstance(value.args[0], ast.Constant) and isinstance(value.args[0].value, str)
                    and any(value.args[0].value == p or value.args[0].value.startswith(p + "/") for p in ROOT_PREFIXES)):
                target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
                found.append(f"{node.lineno}: {ast.unparse(target)}")
    return found


def test_no_module_but_benchmark_paths_defines_an_artifact_root():
    found = []
    for folder in ("benchmark", "methods", "eagrl"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path != REPO / "benchmark" / "paths.py":
                found += [f"{path.relative_to(REPO).as_posix()}:{hit}" for hit in root_constants(path)]
    assert not found, "artifact roots outside benchmark/paths.py (import them from there):\n" + "\n".join(found)


def test_the_scan_sees_a_root_constant(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('from pathlib import Path\nimport pathlib\nRESULTS = Path("results")\n'
                      'X: Path = pathlib.Path("models/rl")\nY = Path("outputs/llm")\nZ = Path("data/cohorts")\n'
                      'OK = Path("params.yaml")\nALSO_OK = Path("resultsx")\n\ndef f():\n    local = Path("results")\n')
    assert root_constants(module) == ["3: RESULTS", "4: X", "5: Y", "6: Z"]
    assert [hit.split(": ")[1] for hit in root_constants(REPO / "benchmark" / "paths.py")] == \
        ["COHORTS", "RESULTS", "MODELS", "OUTPUTS"]
