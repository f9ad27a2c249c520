"""Stage-1 tests run on the LLM layer's tiny model; its fixtures are shared from there."""

from tests.methods.llm.conftest import tiny_model_dir, workdir  # noqa: F401
