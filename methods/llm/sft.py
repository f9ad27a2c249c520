"""Supervised fine-tuning with LoRA through TRL's ``SFTTrainer``, and the Label SFT baseline built on it.

:func:`train_lora_sft` is the generic part (EAG-RL's stage-1 SFT on reasoning trajectories uses it too):
prompt/completion records → a PEFT LoRA adapter, trained with the loss on the completion tokens only.
With a chat template the records are conversational (persona = system, patient = user, target =
assistant), so TRL renders them with the same template that generation uses; without one they are the
plain prompt text and the target followed by EOS.

Label SFT (stage ``label_sft@<dataset>``): the Vanilla prompt, and as target the label itself written in
the Vanilla answer format, ``{"answer": 1}`` or ``{"answer": 0}`` — a direct answer without reasoning.
One adapter per task, trained on a seeded subset of the train split (``llm.label_sft``), saved under
``models/llm/<dataset>/label_sft/<task>/adapter/`` with ``train_log.json`` beside it (loss per step; the time per step goes to the log).
At evaluation the tuned model generates its answer as every method does (parsed flag, completion);
the reported probability of a parsed answer is read from the model (``llm.label_sft.score``,
:func:`label_scores`), a continuous risk that AUROC can rank, instead of a hard 0/1:

* ``first_token`` — ``P(1) / (P(0) + P(1))`` at the label token of ``{"answer": 0}`` / ``{"answer": 1}``,
  the answer the training taught;
* ``expected_digits`` — ``Σ_d d/10 · P(d)`` over the first decimal after ``{"answer": 0.``, normalised over
  the ten digits: for a model that still writes decimals (it then writes ``0`` first for every patient,
  and ``first_token`` only sees the little mass left on ``1``);
* ``parsed`` — the generated number itself.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import ConfigError, ParamsSource, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.launch import is_main_process
from benchmark.paths import COHORTS, LLM_MODELS, cohort_dir, llm_model_dir
from benchmark.runtime import LOGGER, atomic_directory, atomic_write_json, atomic_write_text, start_stage
from benchmark.serialize import SEPARATOR, Prompt
from benchmark.stage_cli import add_cohorts, add_dataset, params_epilog, stage_parser
from methods.llm.chat import has_chat_template, messages
from methods.llm.config import LabelSFTConfig, LLMConfig, LoRASettings, load_llm_config
from methods.llm.formats import json_answer

TRAIN_LOG = "train_log.json"


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of one SFT run (Label SFT fills it from ``llm.label_sft``)."""

    max_steps: int = 16
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    warmup_steps: int = 2
    max_length: int = 640
    seed: int = 42

    @classmethod
    def from_label_sft(cls, config: LabelSFTConfig) -> TrainSettings:
        """The optimisation part of ``llm.label_sft``."""
        return cls(config.max_steps, config.batch_size, config.gradient_accumulation_steps, config.learning_rate,
                   config.warmup_steps, config.max_length, config.seed)


def label_answer(label: int) -> str:
    """The Label SFT target: the label in the Vanilla answer format, e.g. ``{"answer": 1}``."""
    return json_answer(int(label))


def decimal_answers() -> list[str]:
    """``{"answer": 0.0`` … ``{"answer": 0.9``: the Vanilla answer cut after its first decimal, one per digit."""
    return [json_answer(digit / 10)[:-1] for digit in range(10)]


def label_scores(model, tokenizer, prompts: Sequence[str], score: str, batch_size: int = 16,
                 progress: bool = True) -> np.ndarray:
    """The risk Label SFT reports for each rendered prompt under readout ``score`` (module docstring).

    Both readouts look at one next-token distribution (:func:`methods.llm.scoring.next_token_choice`), so
    they measure the answer the model would write and nothing after it; values lie in [0, 1].
    ``expected_digits`` assumes digits are single tokens after ``0.`` (as in SmolLM2, Llama and Qwen
    tokenizers); where digit pairs merge, the mass of a merged pair such as ``83`` is not counted.
    """
    from methods.llm.scoring import next_token_choice

    if score == "first_token":
        return next_token_choice(model, tokenizer, prompts, [label_answer(0), label_answer(1)], batch_size,
                                 progress)[:, 1]
    if score == "expected_digits":
        choice = next_token_choice(model, tokenizer, prompts, decimal_answers(), batch_size, progress)
        return choice @ (np.arange(10) / 10.0)
    raise ValueError(f"no model readout for score {score!r}; expected 'first_token' or 'expected_digits'")


def sft_records(tokenizer, prompts: Sequence[Prompt], completions: Sequence[str],
                use_template: bool = True) -> list[dict[str, Any]]:
    """Prompt/completion records for TRL: conversational with a chat template, plain text without."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if use_template and has_chat_template(tokenizer):
        return [{"prompt": messages(p), "completion": [{"role": "assistant", "content": c}]}
                for p, c in zip(prompts, completions, strict=True)]
    return [{"prompt": p.text + SEPARATOR, "completion": c} for p, c in zip(prompts, completions, strict=True)]


def record_lengths(tokenizer, records: Sequence[dict[str, Any]]) -> list[int]:
    """Tokens of each SFT record, prompt and completion together, as the trainer will see them."""
    lengths = []
    for record in records:
        if isinstance(record["prompt"], list):  # conversational: the chat template's rendering
            ids = tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=True)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            lengths.append(len(ids))
        else:
            lengths.append(len(tokenizer(record["prompt"] + record["completion"]).input_ids))
    return lengths


def check_lengths(tokenizer, records: Sequence[dict[str, Any]], max_length: int, key: str) -> None:
    """Refuse records longer than ``max_length``: the trainer would cut them from the right, so the answer it
    is meant to learn (at the end) would be lost without a word. ``key`` names the setting to raise."""
    lengths = record_lengths(tokenizer, records)
    over = [n for n in lengths if n > max_length]
    if over:
        raise ConfigError(f"{key} = {max_length}: {len(over)} of {len(lengths)} training sequences are longer "
                          f"(longest {max(over)} tokens), and truncation would cut off the answers they teach; "
                          f"raise {key} to at least {max(over)} (memory grows with it) or shorten the prompts")


def train_lora_sft(model, tokenizer, records: list[dict[str, Any]], settings: TrainSettings, lora: LoRASettings,
                   out_dir: str | Path, progress: bool = True, length_key: str = "max_length") -> dict[str, Any]:
    """Train fresh LoRA adapters on ``records`` with TRL's SFTTrainer; save them to ``out_dir``.

    Returns the training log: loss per step, trainable parameter count, settings (no wall-clock time: it
    is written into outputs, whose hash must not change from run to run; the time goes to the log). The base
    model's weights are not changed (only the adapters train). Records longer than ``settings.max_length``
    are refused (:func:`check_lengths`; ``length_key`` names that setting in params.yaml).
    """
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from methods.llm.backbone import add_lora
    from methods.llm.fused_head import fit_logprob_chunk

    check_lengths(tokenizer, records, settings.max_length, length_key)
    torch.manual_seed(settings.seed)
    peft_model = add_lora(model, lora)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    bf16 = next(model.parameters()).dtype == torch.bfloat16
    with tempfile.TemporaryDirectory(prefix="sft-") as scratch:
        args = SFTConfig(
            output_dir=scratch, max_steps=settings.max_steps, per_device_train_batch_size=settings.batch_size,
            gradient_accumulation_steps=settings.gradient_accumulation_steps, learning_rate=settings.learning_rate,
            warmup_steps=settings.warmup_steps, lr_scheduler_type="linear", logging_steps=1, save_strategy="no",
            report_to="none", seed=settings.seed, data_seed=settings.seed, max_length=settings.max_length,
            completion_only_loss=True, bf16=bf16, use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0, disable_tqdm=not progress, gradient_checkpointing=False,
        )
        trainer = SFTTrainer(model=peft_model, args=args, train_dataset=Dataset.from_list(records),
                             processing_class=tokenizer)
        fit_logprob_chunk(peft_model.get_output_embeddings().weight.shape[0])
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        save_trained_adapter(trainer, out_dir)
    log = {"steps": settings.max_steps, "loss": losses, "trainable_parameters": int(trainable),
           "examples": len(records), "settings": to_mapping(settings), "lora": to_mapping(lora)}
    LOGGER.info("sft: %d steps in %.1f s (%.2f s/step), loss %.3f -> %.3f, %d trainable parameters",
                settings.max_steps, seconds, seconds / max(settings.max_steps, 1), losses[0] if losses else float("nan"),
                losses[-1] if losses else float("nan"), trainable)
    return log


def save_trained_adapter(trainer, folder: str | Path, selected_adapters: list[str] | None = None) -> None:
    """Save the trainer's PEFT adapter(s) to ``folder`` from the main process only; call it on every process.

    Under FSDP or DeepSpeed ZeRO-3 the weights are sharded across processes: they are gathered first (a
    collective, hence every process) with accelerate's ``get_state_dict``; under one process or DDP each
    process holds them whole and the main one saves its own. ``selected_adapters`` (e.g. ``["default"]``)
    leaves out other adapters, such as TRL's frozen reference copy.
    """
    accelerator = trainer.accelerator
    sharded = trainer.is_fsdp_enabled or (
        trainer.is_deepspeed_enabled and accelerator.state.deepspeed_plugin.zero_stage == 3)
    state_dict = accelerator.get_state_dict(trainer.model_wrapped) if sharded else None
    if trainer.is_world_process_zero():
        model = accelerator.unwrap_model(trainer.model)
        extra = {"selected_adapters": selected_adapters} if selected_adapters else {}
        model.save_pretrained(str(folder), state_dict=state_dict, **extra)
        for config in Path(folder).rglob(ADAPTER_CONFIG):
            sort_module_lists(config)


ADAPTER_CONFIG = "adapter_config.json"


def sort_module_lists(config_path: Path) -> None:
    """Rewrite a PEFT ``adapter_config.json`` with its module lists sorted.

    PEFT keeps ``target_modules`` as a Python set and saves it in set order, which changes with
    ``PYTHONHASHSEED``: two runs of the same stage wrote the same weights under different file hashes, and DVC
    re-ran every stage downstream. Sorted, the file is a function of the settings alone.
    """
    data = json.loads(config_path.read_text())
    for key in ("target_modules", "modules_to_save"):  # sets of module names (a regex string stays as it is)
        if isinstance(data.get(key), list):
            data[key] = sorted(data[key])
    atomic_write_text(config_path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def label_sft_training_set(cohort: Cohort, task: str, config: LabelSFTConfig) -> Cohort:
    """The train-split patients Label SFT learns from (seeded; balanced or prevalence-stratified)."""
    from methods.llm.prompting import stratified_indices

    train = cohort.subset("train")
    return train.select(stratified_indices(train.label(task), config.n_train, config.seed, config.balance))


def train_label_sft(dataset: str, params: ParamsSource = "params.yaml", cohort_root: str | Path = COHORTS,
                    out_root: str | Path = LLM_MODELS, config: LLMConfig | None = None) -> Path:
    """Stage ``label_sft@<dataset>``: one adapter per task of the data set, ``out_root/<dataset>/label_sft/<task>/adapter``."""
    from methods.llm.backbone import load_backbone
    from methods.llm.prompting import build_prompts, get_method

    config = config or load_llm_config(params, finetuned=True)
    start_stage(f"label_sft@{dataset}", config.label_sft.seed,
                {"dataset": dataset, "label_sft": to_mapping(config.label_sft), "lora": to_mapping(config.lora),
                 "backbone": to_mapping(config.backbone)}, threads=config.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohort_root))
    method = get_method("label_sft")
    settings = TrainSettings.from_label_sft(config.label_sft)
    out = llm_model_dir(dataset, "label_sft", root=out_root)
    with atomic_directory(out) as tmp:
        for task in cohort.tasks:
            subset = label_sft_training_set(cohort, task, config.label_sft)
            labels = subset.label(task)
            prompts = build_prompts(subset, task, method.style, config.prompt)
            model, tokenizer = load_backbone(config.backbone, trainable=True)
            records = sft_records(tokenizer, prompts, [label_answer(y) for y in labels], config.prompt.chat_template)
            log = train_lora_sft(model, tokenizer, records, settings, config.lora, tmp / task / "adapter",
                                 length_key="llm.label_sft.max_length")
            log.update({"dataset": dataset, "task": task, "patients": len(subset), "positives": int(labels.sum()),
                        "ids_sha": _ids_digest(subset.ids)})
            if is_main_process():  # launch.processes > 1: rank 0 writes
                atomic_write_json(tmp / task / TRAIN_LOG, log)
    return out


def _ids_digest(ids: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()[:16]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl label-sft``."""
    parser = stage_parser(subparsers, "label-sft",
                          "Train the Label SFT adapters of one data set (DVC stage label_sft@<dataset>).",
                          __doc__, params_epilog("llm.label_sft", LabelSFTConfig))
    add_dataset(parser)
    add_cohorts(parser)
    parser.add_argument("--out", default=str(LLM_MODELS), help="Folder that receives <dataset>/label_sft/<task>/adapter.")
    parser.set_defaults(handler=lambda args: train_label_sft(args.dataset, args.params, args.cohorts, args.out))
