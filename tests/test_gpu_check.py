"""benchmarks/gpu_check.sh on a machine without a GPU: it imports, answers --help, and --dry-run runs every part
(SFT, RL through EAGRLTrainer, evaluation) on a tiny model on the CPU and writes its report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def test_help_needs_no_gpu():
    done = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    assert "--dry-run" in done.stdout and "qwen2.5-7b" in done.stdout


def test_seven_b_shape_is_qwen25_7b():
    from benchmarks.gpu_check import QWEN25_7B

    h, layers, inter, vocab = (QWEN25_7B[k] for k in ("hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size"))
    kv = h // QWEN25_7B["num_attention_heads"] * QWEN25_7B["num_key_value_heads"]
    params = 2 * vocab * h + layers * (2 * h * h + 2 * h * kv + 3 * h * inter)
    assert 7.5e9 < params < 7.7e9  # Qwen2.5-7B: 7.61 B parameters


@pytest.mark.slow
def test_dry_run_runs_every_part_on_the_cpu(tmp_path):
    from benchmarks.gpu_check import main

    out = tmp_path / "gpu_check.md"
    assert main(["--dry-run", "--out", str(out)]) == 0
    text = out.read_text()
    assert "gpu none (CPU)" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| part")]
    assert [r.split(" | ")[0] for r in rows] == ["| SFT (fp32 LoRA r=16 on all linear layers, TRL SFTTrainer)",
                                                 "| RL (EAGRLTrainer, ε(τ); generation: HF generate)",
                                                 "| Evaluation (HF generate, greedy; vLLM not importable)"]
