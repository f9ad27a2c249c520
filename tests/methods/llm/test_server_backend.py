"""The server backend (an OpenAI-compatible completions server) and vLLM's tensor parallelism, without a GPU:
a stub server in a thread answers like `vllm serve` does, and a stand-in `vllm` module records what the vLLM
backend asks of it."""

from __future__ import annotations

import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmark.config import ConfigError
from methods.llm import generation as gen
from methods.llm.config import BackboneConfig, GenerationConfig

pytest.importorskip("openai")


class _Stub(BaseHTTPRequestHandler):
    """POST /v1/completions: choice i of prompt p reads '<p's last 4 characters>#<i>', 'length' for n_tokens
    beyond 3; GET /v1/models lists one model; POST /v1/load_lora_adapter registers a name."""

    requests: list[tuple[str, dict]] = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        self.requests.append((self.path, {}))
        self._send({"object": "list", "data": [{"id": "served-model", "object": "model", "created": 0, "owned_by": "x"}]})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, body))
        if self.path.endswith("/load_lora_adapter"):
            self._send({"ok": True})
            return
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = [{"index": p * body["n"] + i, "text": f"{prompt[-4:]}#{i}", "logprobs": None,
                    "finish_reason": "stop" if body["max_tokens"] > 3 else "length"}
                   for p, prompt in enumerate(prompts) for i in range(body["n"])]
        self._send({"id": "c", "object": "text_completion", "created": 0, "model": body["model"],
                    "choices": list(reversed(choices))})  # any order: the backend sorts by index


@pytest.fixture
def server():
    _Stub.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def _backbone(tiny_model_dir, tmp_path):
    from methods.llm.backbone import build_backbone

    backbone = BackboneConfig(source=str(tiny_model_dir), dir=str(tmp_path / "backbone"), dtype="float32", device="cpu")
    build_backbone(backbone)
    return backbone


def test_server_backend_answers_in_prompt_major_order_in_batches(server, tiny_model_dir, tmp_path):
    config = GenerationConfig(backend="server", server_url=server, batch_size=2, seed=5)
    generator = gen.make_generator(config, _backbone(tiny_model_dir, tmp_path))
    assert generator.backend == "server" and generator.model == "served-model"  # the first listed model
    prompts = ["alpha-0001", "beta-0002", "gamma-0003"]
    out = generator.generate(prompts, gen.SamplingParams(max_new_tokens=8, n=2, temperature=0.7, seed=5))
    assert [c.text for c in out] == ["0001#0", "0001#1", "0002#0", "0002#1", "0003#0", "0003#1"]
    assert all(c.finished and c.n_tokens > 0 for c in out)
    sent = [body for path, body in _Stub.requests if path.endswith("/completions")]
    assert [body["prompt"] for body in sent] == [prompts[:2], prompts[2:]]  # batch_size prompts per request
    assert [body["seed"] for body in sent] == [5, 6] and sent[0]["temperature"] == 0.7
    cut = generator.generate(prompts[:1], gen.SamplingParams(max_new_tokens=2))
    assert not cut[0].finished  # finish_reason 'length'


def test_server_backend_registers_a_lora_adapter_and_names_it(server, tiny_model_dir, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    config = GenerationConfig(backend="server", server_url=server, server_model="base")
    generator = gen.make_generator(config, _backbone(tiny_model_dir, tmp_path), adapter=adapter)
    loads = [body for path, body in _Stub.requests if path.endswith("/load_lora_adapter")]
    assert loads == [{"lora_name": generator.model, "lora_path": str(adapter.resolve())}]
    generator.generate(["x-1234"], gen.SamplingParams())
    assert _Stub.requests[-1][1]["model"] == generator.model != "base"


def test_server_backend_needs_a_url():
    with pytest.raises(ConfigError, match="server_url"):
        gen.choose_backend(GenerationConfig(backend="server"))
    assert gen.choose_backend(GenerationConfig(backend="server", server_url="http://h/v1")) == "server"


def test_vllm_backend_shards_over_the_configured_gpus(monkeypatch, tiny_model_dir, tmp_path):
    created = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            created.update(kwargs)

        def get_tokenizer(self):
            return None

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM))
    monkeypatch.setattr(gen, "vllm_available", lambda: True)
    config = GenerationConfig(backend="vllm", vllm_tensor_parallel_size=4)
    generator = gen.make_generator(config, _backbone(tiny_model_dir, tmp_path))
    assert generator.backend == "vllm" and created["tensor_parallel_size"] == 4
