# EAG-RL reproducibility suite: a container that runs exactly the README's two commands.
#
#   docker build -t eagrl .                          CPU image (default): `make test` at build, `make repro` at run
#   docker build --build-arg VARIANT=gpu -t eagrl:gpu .   GPU image: CUDA torch + vllm (run with --gpus all)
#   docker run --rm -v "$PWD/results:/suite/results" eagrl
FROM python:3.11-slim

ARG VARIANT=cpu
# CPU: PyTorch's CPU index is searched too, so `torch==2.13.0` resolves to 2.13.0+cpu instead of a multi-GB
# CUDA build. GPU: the `gpu` extra (vllm) and PyPI's CUDA torch.
ENV EXTRAS=dev
RUN if [ "$VARIANT" = "cpu" ]; then echo "https://download.pytorch.org/whl/cpu" > /etc/pip-extra-index; \
    else echo "" > /etc/pip-extra-index; fi

RUN apt-get update && apt-get install -y --no-install-recommends make git && rm -rf /var/lib/apt/lists/*
WORKDIR /suite
COPY . .

# The README's test command: creates .venv, installs the suite, runs the tests (the image builds only if they pass).
RUN export PIP_EXTRA_INDEX_URL="$(cat /etc/pip-extra-index)" \
    && if [ "$VARIANT" = "gpu" ]; then export EXTRAS=dev,gpu; fi \
    && make test EXTRAS="$EXTRAS"

# The README's pipeline command.
CMD ["make", "repro"]
