# EAG-RL reproducibility suite: a container that runs exactly the README's two commands (see README, "Docker").
#
#   DOCKER_BUILDKIT=1 docker build -t eagrl .        CPU image: `make test` at build, `make repro` at run
#   DOCKER_BUILDKIT=1 docker build --build-arg BASE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 --build-arg VARIANT=gpu \
#       -t eagrl:gpu .                               GPU image: CUDA torch + vllm (run with --gpus all)
#   docker run --rm -v "$PWD/results:/suite/results" eagrl
#
# Behind a TLS-intercepting proxy, give pip the CA bundle (or a whole pip.conf) as a BuildKit secret; it is
# mounted for the install steps only and never stored in the image:
#   docker build --secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt [--secret id=pip_conf,src=pip.conf] ...
# Without a registry: docker/build-local-base.sh builds a Debian base locally (--build-arg BASE=eagrl-base:bookworm).
ARG BASE=python:3.11-slim
FROM ${BASE}

# cpu: the Makefile's choice (PyTorch's CPU wheel where its index answers, else PyPI). gpu: the `gpu` extra (vllm)
# and PyPI's CUDA torch (no GPU is visible while building, so the choice is made here). PyPI's torch wheel brings
# its own CUDA libraries (torch 2.13.0: CUDA 13.0, ~4 GB), so any base with Python >= 3.11 works; the host's
# driver must support that CUDA. Ubuntu 22.04 bases have Python 3.10: too old.
ARG VARIANT=cpu
# The user that owns /suite: pass --build-arg UID=$(id -u) so that bind-mounted folders stay yours.
ARG UID=1000
ARG GID=1000

# python3 (>= 3.11), venv, make and git (DVC needs git), from the base's package manager where it lacks them.
RUN if ! command -v make >/dev/null || ! command -v git >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv python3-pip make git ca-certificates && rm -rf /var/lib/apt/lists/*; fi \
    && (getent group "$GID" >/dev/null || echo "eagrl:x:$GID:" >> /etc/group) \
    && (getent passwd "$UID" >/dev/null || echo "eagrl:x:$UID:$GID::/home/eagrl:/bin/bash" >> /etc/passwd) \
    && mkdir -p /home/eagrl/.cache/huggingface /suite/.dvc/cache /suite/models /suite/outputs \
    && chown -R "$UID:$GID" /home/eagrl /suite

ENV HOME=/home/eagrl \
    HF_HOME=/home/eagrl/.cache/huggingface \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
USER ${UID}:${GID}
WORKDIR /suite

# Dependencies first, in a layer of their own: a change to the source does not reinstall them.
COPY --chown=${UID}:${GID} pyproject.toml Makefile ./
RUN --mount=type=secret,id=pip_ca,required=false,mode=0444 \
    --mount=type=secret,id=pip_conf,required=false,mode=0444 \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && if [ "$VARIANT" = gpu ]; then export EXTRAS=dev,gpu TORCH_INDEX=; fi \
    && make deps

COPY --chown=${UID}:${GID} . .

# The README's test command: installs the suite (editable, no dependencies: they are above) and runs the tests;
# the image builds only if they pass.
RUN --mount=type=secret,id=pip_ca,required=false,mode=0444 \
    --mount=type=secret,id=pip_conf,required=false,mode=0444 \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && if [ "$VARIANT" = gpu ]; then export EXTRAS=dev,gpu TORCH_INDEX=; fi \
    && make test \
    && rm -rf .pytest_cache .benchmarks

# What a run writes and what is worth keeping between runs: mount them (-v) or let Docker make volumes.
VOLUME ["/suite/.dvc/cache", "/suite/models", "/suite/outputs", "/home/eagrl/.cache/huggingface"]

# The README's pipeline command.
CMD ["make", "repro"]
