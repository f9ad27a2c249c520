#!/usr/bin/env bash
# One-GPU check of the paper-scale engines (benchmarks/gpu_check.py): a Qwen2.5-7B-shaped model with random
# weights (no download), a few steps of bf16 LoRA SFT, of RL through our GRPO trainer, and evaluation (vLLM
# with load_format=dummy where vLLM is importable); prints tokens/s, s/step and peak GPU memory of each and
# writes results/gpu_check.md naming the machine. Needs one CUDA GPU with >= 60 GB; about 5-10 minutes.
#
#   benchmarks/gpu_check.sh              the check
#   benchmarks/gpu_check.sh --dry-run    tiny model on the CPU (seconds): checks the code path anywhere
#   benchmarks/gpu_check.sh --help       every flag
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout "${GPU_CHECK_TIMEOUT:-600}" "$PY" -m benchmarks.gpu_check "$@"
