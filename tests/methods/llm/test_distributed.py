"""The distributed path on CPU: Label SFT and RL under ``accelerate launch`` in 2 gloo processes.

The stage is started exactly as ``dvc repro`` starts it (``python -m eagrl label-sft ...``) with
``launch.processes: 2`` in its params file, so the relaunch through accelerate's launcher is what runs. The
two runs train on the same global batch (1 process × 4 sequences vs 2 processes × 2 sequences, the same
patients in the same order) and must give the same loss per step and the same adapter weights, within
float32 summation-order differences (tolerances below). An audit hook (``sitecustomize`` on the launched
processes' ``PYTHONPATH``) records every file a rank opens for writing, creates, renames or removes in the
run's folder: rank 1 must have written nothing, rank 0 the outputs.

The RL stage (``eagrl rl``, EAGRLTrainer with ε(τ)) runs in 2 processes too: it must finish, rank 1 must write
nothing, and rank 0's trajectory file must hold both ranks' completions (the ranks sample different
completions, so its loss is not compared with one process).

Marked ``distributed`` (deselected by default: ~70 s + ~40 s on 2 cores); run them with
``make test-distributed`` (= ``pytest -m distributed``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from methods.llm.backbone import build_backbone
from tests.methods.llm.test_sft_and_stages import tiny_config

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
STEPS = 3
LOSS_RTOL = 1e-4  # relative, per step: float32 sums over 4 sequences in one process vs 2 + 2 then all-reduced
WEIGHT_ATOL = 1e-5  # absolute, LoRA weights after STEPS AdamW steps at lr 0.01

AUDIT_HOOK = '''
import atexit, json, os, sys
_root, _rank = os.environ.get("EAGRL_AUDIT_ROOT"), os.environ.get("RANK")
if _root and _rank is not None:
    _writes = []
    _flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT
    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _flags)
            paths = [path] if writing else []
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.symlink"):
            paths = [args[0]]
        elif event == "os.rename":
            paths = [args[0], args[1]]
        else:
            return
        for p in paths:
            if isinstance(p, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(p)).startswith(_root):
                _writes.append(event + " " + os.fsdecode(p))
    sys.addaudithook(_hook)
    atexit.register(lambda: print("EAGRL_RANK_WRITES", _rank, json.dumps(_writes), file=sys.stderr, flush=True))
'''


def _params(model_dir: Path, root: Path, processes: int, batch_size: int) -> dict:
    llm = {"threads": 1, "backbone": {"source": str(model_dir), "dir": str(root / "backbone"), "dtype": "float32",
                                      "device": "cpu"},
           "lora": {"r": 4, "alpha": 8, "top_layers": 0}, "methods": {"label_sft": {"max_new_tokens": 4}},
           "label_sft": {"n_train": 8, "max_steps": STEPS, "batch_size": batch_size, "learning_rate": 0.01,
                         "warmup_steps": 0, "max_length": 1024, "seed": 3}}
    return {"launch": {"processes": processes, "accelerate_config": str(REPO / "profiles/accelerate/ddp.yaml")},
            "llm": llm}


def _run_stage(root: Path, params: dict, argv: list[str]) -> tuple[dict[int, list[str]], str]:
    """``python -m eagrl <argv>`` in ``root/work`` as DVC runs it; returns (writes per rank, stderr)."""
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]),
           "EAGRL_AUDIT_ROOT": str(root / "work"), "OMP_NUM_THREADS": "1"}
    (root / "work").mkdir()
    done = subprocess.run([sys.executable, "-m", "eagrl", *argv, "--params", "../params.yaml"], cwd=root / "work",
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    writes = {int(line.split(" ", 2)[1]): json.loads(line.split(" ", 2)[2])
              for line in done.stderr.splitlines() if line.startswith("EAGRL_RANK_WRITES ")}
    return writes, done.stderr


def _run_label_sft(root: Path, model_dir: Path, cohort, processes: int, batch_size: int):
    """`eagrl label-sft` in ``root``; returns (train logs by task, adapter weights, rank writes, stderr)."""
    from safetensors.numpy import load_file

    root.mkdir()
    cohort.save(root / "cohorts" / cohort.name)
    build_backbone(tiny_config(model_dir, root).backbone)
    writes, stderr = _run_stage(root, _params(model_dir, root, processes, batch_size),
                                ["label-sft", cohort.name, "--cohorts", "../cohorts", "--out", "label_sft"])
    out = root / "work" / "label_sft" / cohort.name
    logs = {task: json.loads((out / task / "train_log.json").read_text()) for task in cohort.tasks}
    weights = {task: load_file(out / task / "adapter_model.safetensors") for task in cohort.tasks}
    return logs, weights, writes, stderr


def test_two_gloo_processes_match_one_process_and_only_rank0_writes(tmp_path, tiny_model_dir, small_icu):
    single_logs, single_weights, _, _ = _run_label_sft(tmp_path / "one", tiny_model_dir, small_icu, 1, 4)
    logs, weights, writes, stderr = _run_label_sft(tmp_path / "two", tiny_model_dir, small_icu, 2, 2)

    assert "2 processes: " in stderr and "accelerate.commands.launch" in stderr  # the stage relaunched itself
    assert set(writes) == {0, 1}, "both ranks ran under the audit hook"
    assert writes[1] == [], f"rank 1 wrote into the run's folder: {writes[1][:5]}"
    assert any("train_log.json" in w for w in writes[0]) and any("logs" in w for w in writes[0])
    assert len(list((tmp_path / "two" / "work" / "logs").glob("*.json"))) == 1  # one stage log, rank 0's

    report = {}
    for task in small_icu.tasks:
        one, two = np.array(single_logs[task]["loss"]), np.array(logs[task]["loss"])
        assert len(one) == len(two) == STEPS
        report[task] = {"single": one.tolist(), "two_processes": two.tolist()}
        np.testing.assert_allclose(two, one, rtol=LOSS_RTOL)
        for key, value in single_weights[task].items():
            np.testing.assert_allclose(weights[task][key], value, atol=WEIGHT_ATOL, err_msg=key)
    print("loss per step, 1 process (batch 4) vs 2 processes (2 x 2):", json.dumps(report))


def test_rl_stage_in_two_gloo_processes(tmp_path, tiny_model_dir, small_icu):
    """`eagrl rl` (EAGRLTrainer with ε(τ)) under 2 processes: it finishes, rank 1 writes nothing, and rank 0's
    trajectory file holds both ranks' completions (each rank samples its own: no loss equality is expected)."""
    from methods.experts.importance import importance_records, write_importance

    params = _params(tiny_model_dir, tmp_path, 2, 2)
    params["llm"].update({"generation": {"batch_size": 4}, "methods": {"qd": {"max_new_tokens": 6}},
                          "evaluation": {"n_patients": 6, "seed": 1}})
    params["metrics"] = {"bootstrap_resamples": 20}
    params["eag_rl"] = {"search": {"expert": "concare"}, "rl": {
        "pairs": [{"dataset": small_icu.name, "task": "mortality"}], "seeds": [42],
        "variants": {"eag_rl": {"family": "eag_rl"}},
        "train": {"initial_policy": "base", "n_train": 8, "num_generations": 2, "prompts_per_generation": 2,
                  "num_iterations": 2, "max_steps": 4, "max_completion_length": 8, "learning_rate": 0.01,
                  "progress": False}}}
    small_icu.save(tmp_path / "cohorts" / small_icu.name)
    build_backbone(tiny_config(tiny_model_dir, tmp_path).backbone)
    for split in ("train", "test"):
        part = small_icu.subset(split)
        importance = part.salient.astype(float) + 1e-3
        records = importance_records(part, "mortality", np.full(len(part), 0.5),
                                     importance / importance.sum(1, keepdims=True), 3)
        write_importance(tmp_path / "experts" / small_icu.name / "concare" / "mortality" / f"importance_{split}.jsonl",
                         records)
    writes, stderr = _run_stage(tmp_path, params, ["rl", small_icu.name, "mortality", "eag_rl", "--cohorts",
                                                   "../cohorts", "--experts", "../experts", "--out", "rl"])
    assert "2 processes: " in stderr
    assert set(writes) == {0, 1} and writes[1] == [], f"rank 1 wrote: {writes.get(1, [])[:5]}"
    out = tmp_path / "work" / "rl" / small_icu.name / "mortality" / "eag_rl"
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "metrics.json").exists()
    import pandas as pd

    trajectories = pd.read_csv(out / "epsilon.csv")
    # 2 generation batches (4 steps, μ = 2) × 2 patients × G = 2 completions on each of the 2 ranks
    assert len(trajectories) == 2 * 2 * 2 * 2 and trajectories["epsilon_high"].between(0.2, 0.4).all()
