"""The testbed LM: a small causal LM that the pipeline trains itself, so that EAG-RL trains for real on a CPU.

Why it exists
-------------
One RL step of SmolLM2-135M costs about 40 s on 2 cores, so the default profile could afford two optimiser
steps on one patient: not training. The testbed LM is small enough for hundreds of GRPO steps in minutes,
and it is an ordinary Hugging Face model: a ``LlamaForCausalLM`` with a byte-level BPE tokenizer and a
ChatML chat template, saved with ``save_pretrained``. Every LLM method reaches it through the same path as
any other backbone (``llm.backbone.source: models/testbed``: AutoModelForCausalLM, PEFT, TRL). It is *not*
a pretrained LLM: it knows nothing but the records of its cohorts, and the tables name it "testbed LM".

``eagrl pretrain-testbed`` (DVC stage ``pretrain_testbed``)
----------------------------------------------------------
1. the corpus of :mod:`methods.llm.testbed_corpus`: every train record of ``testbed.datasets`` as a QD
   prompt with label-free QD answers (true sub-answers, random features, random probability), and as a
   Vanilla prompt with a label-free ``{"answer": p}`` (the format Label SFT writes);
2. a byte-level BPE tokenizer trained on that text with ``tokenizers`` (digits split one by one, the QD
   tags as single tokens, ChatML specials);
3. a randomly initialised Llama of ``testbed.architecture``, trained as a language model on the
   chat-rendered documents with transformers' ``Trainer`` (``testbed.pretraining``), by default with the
   loss on the answer tokens only (``loss_on``): the record's values cannot be predicted, and on whole
   documents their loss swamps the answer's, so the model learns the answer's form but not to read;
4. a probe on validation records (``testbed.probe``): greedy answers (parse rate, answers that name a
   cohort feature, truncation), sampled groups (share whose named features differ, which is what lets
   the attention reward R_att separate the completions of one GRPO group), and whether the LM reads the
   record at all: its sub-answer against the true deviating features (marked values), beside the best constant answer,
   and the AUROC of its greedy probability.

Writes ``models/testbed/`` (model, tokenizer, ``pretraining.json``: sizes, losses, probe; ``backbone.json``: the
backbone manifest, so the folder loads as a built backbone) and
``results/testbed.md|csv|json`` (the probe and the sizes; timings go to the log only).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmark.config import ConfigError, ParamsSource, from_mapping, load_params, option, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.paths import RESULTS, TESTBED, cohort_dir
from benchmark.runtime import LOGGER, atomic_directory, start_stage
from benchmark.serialize import Prompt
from benchmark.stage_cli import params_epilog, stage_parser
from benchmark.tables import write_table
from methods.llm import formats
from methods.llm.backbone import MANIFEST
from methods.llm.testbed_corpus import SUBQUESTION, Document, build_corpus, deviating_at_last_visit

SECTION = "testbed"
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
QD_TAGS = tuple(token for name in formats.QD_TAGS for token in (formats.open_tag(name), formats.close_tag(name)))


# ------------------------------------------------------------------------------------------- config
@dataclass
class ArchitectureConfig:
    """Size of the testbed LM (a transformers ``LlamaConfig``)."""

    vocab_size: int = option(1024, minimum=1, help="BPE vocabulary, specials and QD tags included.")
    hidden_size: int = option(128, minimum=1, help="Model width.")
    num_hidden_layers: int = option(4, minimum=1, help="Decoder layers.")
    num_attention_heads: int = option(4, minimum=1, help="Attention heads (hidden_size must be divisible by it).")
    num_key_value_heads: int = option(4, minimum=1, help="Key/value heads (grouped-query attention when fewer than the heads).")
    intermediate_size: int = option(384, minimum=1, help="Width of the SwiGLU feed-forward block.")
    max_position_embeddings: int = option(1024, minimum=1, help="Longest sequence the rotary positions are laid out for.")


@dataclass
class PretrainingConfig:
    """Language-model training of the testbed LM on the label-free corpus (transformers ``Trainer``)."""

    answers_per_record: int = option(2, minimum=0, help="Label-free QD answers per (train patient, task): each draws its own features and probability.")
    deviating_features_share: float = option(
        0.0, minimum=0.0, maximum=1.0,
        help="Share of QD answers whose important features are the sub-answer's deviating features (up to top_k, in "
             "record order) instead of a random draw: the clinician's heuristic 'what is far from typical matters', "
             "one mode of the base policy that expert guidance and R_att can select (0 = always random).")
    vanilla_answers_per_record: int = option(1, minimum=0, help="Label-free Vanilla answers {\"answer\": p} per (train patient, task): the answer format Label SFT writes (0 = none: its tokens are then never seen, and Label SFT cannot learn them).")
    max_steps: int = option(800, minimum=1, help="Optimiser steps (200-400 learn the answer format but not to read the record; see results/testbed.md).")
    batch_size: int = option(16, minimum=1, help="Documents per step.")
    learning_rate: float = option(3e-3, minimum=0, help="AdamW peak learning rate (cosine decay after warm-up).")
    warmup_steps: int = option(20, minimum=0, help="Linear warm-up steps.")
    weight_decay: float = option(0.01, minimum=0, help="AdamW decoupled weight decay.")
    max_length: int = option(640, minimum=1, help="Tokens per document at most; a longer one is an error (it would cut the answer).")
    loss_on: Literal["document", "answer"] = option("answer", help="Tokens the language-model loss is taken on: 'document' = record and answer; 'answer' = the answer only (the record's values are unpredictable, and their loss swamps the answer's: the model then learns the answer's form but not to read the record).")
    seed: int = option(42, help="Weights, corpus draws and data order.")
    progress: bool = option(True, help="Progress bar on stderr.")


@dataclass
class ProbeConfig:
    """What the pretrained testbed LM does before any method trains it (on validation records)."""

    n_patients: int = option(32, minimum=0, help="Validation patients per (data set, task), the first ones of the split (0 = all).")
    samples: int = option(4, minimum=1, help="Completions sampled per patient at temperature 1 (a GRPO-sized group).")
    max_new_tokens: int = option(96, minimum=1, help="Tokens per answer at most (= eag_rl.rl.train.max_completion_length).")
    seed: int = option(42, help="Sampling seed.")


@dataclass
class TestbedConfig:
    """The ``testbed`` section of params.yaml."""

    dir: str = option(str(TESTBED), help="Folder of the trained model and tokenizer (a Hugging Face model directory: llm.backbone.source may point here).")
    datasets: list[str] = option(["synthetic_icu"], help="Data sets whose train records make the corpus. Only the RL source domain by default, so cross-domain targets stay unseen.")
    top_k: int = option(3, minimum=1, help="Important features per corpus answer at most (= experts.top_k).")
    min_features: int = option(3, minimum=1, help="Important features per corpus answer at least: the count is drawn uniformly from min_features..top_k (top_k = always top_k names, the size of the expert's list that R_att compares them with).")
    decimals: int = option(2, minimum=0, help="Decimals of values in the records (= llm.prompt.decimals).")
    layout: Literal["full", "compact"] = option("compact", help="Prompt layout of benchmark.serialize the corpus is written in: 'compact' takes about a third of the tokens of 'full' (every token costs RL time on a CPU); methods on the testbed must use the same layout.")
    threads: int = option(2, minimum=1, help="torch CPU threads.")
    architecture: ArchitectureConfig = option(default_factory=lambda: ArchitectureConfig(), help="Model size.")
    pretraining: PretrainingConfig = option(default_factory=lambda: PretrainingConfig(), help="Training.")
    probe: ProbeConfig = option(default_factory=lambda: ProbeConfig(), help="Probe after training.")


def load_testbed_config(params: ParamsSource = "params.yaml") -> TestbedConfig:
    """The ``testbed`` section of ``params`` as a checked :class:`TestbedConfig`."""
    params = load_params(params)
    config = from_mapping(TestbedConfig, params.get(SECTION), f"{params}: {SECTION}")
    architecture = config.architecture
    if architecture.hidden_size % architecture.num_attention_heads:
        raise ConfigError(f"{params}: {SECTION}.architecture.hidden_size ({architecture.hidden_size}) must be "
                          f"divisible by num_attention_heads ({architecture.num_attention_heads})")
    return config


# ------------------------------------------------------------------------------------ tokenizer/model
def chat_text(document: Document, tokenizer) -> str:
    """The document as the model reads it in training: persona, record and answer in the chat template."""
    return tokenizer.apply_chat_template(
        [{"role": "system", "content": document.system}, {"role": "user", "content": document.user},
         {"role": "assistant", "content": document.answer}], tokenize=False)


def prompt_text(document: Document, tokenizer) -> str:
    """The document's prompt as a method renders it for generation: persona and record, then the assistant turn's opening."""
    return tokenizer.apply_chat_template(
        [{"role": "system", "content": document.system}, {"role": "user", "content": document.user}],
        tokenize=False, add_generation_prompt=True)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``: digits one by one, QD tags single tokens, ChatML."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    raw.decoder = decoders.ByteLevel()
    n_reserved = 3 + len(QD_TAGS)
    if vocab_size <= n_reserved + 256:
        raise ConfigError(f"testbed.architecture.vocab_size = {vocab_size}: must exceed the 256 bytes and the "
                          f"{n_reserved} specials and tags")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(QD_TAGS), special_tokens=[PAD, BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=BOS, eos_token=EOS, unk_token=PAD,
                                        pad_token=PAD)
    tokenizer.add_tokens(list(QD_TAGS))
    tokenizer.chat_template = CHATML
    return tokenizer


def build_model(tokenizer, architecture: ArchitectureConfig, seed: int):
    """A randomly initialised ``LlamaForCausalLM`` of ``architecture`` for ``tokenizer`` (tied embeddings)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=architecture.hidden_size,
                         intermediate_size=architecture.intermediate_size,
                         num_hidden_layers=architecture.num_hidden_layers,
                         num_attention_heads=architecture.num_attention_heads,
                         num_key_value_heads=architecture.num_key_value_heads,
                         max_position_embeddings=architecture.max_position_embeddings, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def pretrain(model, tokenizer, texts: list[str], settings: PretrainingConfig, work_dir: Path,
             prompt_texts: list[str] | None = None) -> list[float]:
    """Train ``model`` as a language model on ``texts`` with transformers' ``Trainer``; returns the loss per step.

    With ``settings.loss_on == 'answer'`` the loss skips each text's first ``len(prompt_texts[i])`` tokens (its
    rendered prompt, which must be a prefix of the text)."""
    from datasets import Dataset
    from transformers import (
        DataCollatorForLanguageModeling,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    encoded = tokenizer(texts, add_special_tokens=False)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    if max(lengths) > settings.max_length:
        raise ConfigError(f"testbed.pretraining.max_length = {settings.max_length}: the longest document has "
                          f"{max(lengths)} tokens; raise it (a cut document would teach cut answers)")
    LOGGER.info("testbed corpus: %d documents, %d tokens (mean %.0f, max %d)", len(texts), sum(lengths),
                float(np.mean(lengths)), max(lengths))
    columns = {"input_ids": encoded["input_ids"]}
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    if settings.loss_on == "answer":
        if prompt_texts is None or len(prompt_texts) != len(texts):
            raise ValueError("loss_on 'answer' needs the rendered prompt of every text")
        columns["labels"] = answer_only_labels(encoded["input_ids"],
                                               tokenizer(prompt_texts, add_special_tokens=False)["input_ids"])
        collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    dataset = Dataset.from_dict(columns)
    args = TrainingArguments(output_dir=str(work_dir), max_steps=settings.max_steps,
                             per_device_train_batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                             lr_scheduler_type="cosine", warmup_steps=settings.warmup_steps,
                             weight_decay=settings.weight_decay, logging_steps=1, save_strategy="no", report_to=[],
                             seed=settings.seed, data_seed=settings.seed, use_cpu=_device() == "cpu",
                             dataloader_num_workers=0, disable_tqdm=not settings.progress)
    trainer = Trainer(model=model, args=args, train_dataset=dataset,
                      data_collator=collator)
    trainer.train()
    return [float(row["loss"]) for row in trainer.state.log_history if "loss" in row]


def answer_only_labels(documents: list[list[int]], prompts: list[list[int]]) -> list[list[int]]:
    """Language-model labels that ignore (-100) each document's prompt tokens, so only its answer is learnt."""
    labels = []
    for ids, prefix in zip(documents, prompts, strict=True):
        if ids[:len(prefix)] != prefix:
            raise ValueError("a rendered prompt does not tokenize as a prefix of its document")
        labels.append([-100] * len(prefix) + ids[len(prefix):])
    return labels


def _device() -> str:
    from methods.llm.backbone import resolve_device

    return resolve_device("auto")


# ---------------------------------------------------------------------------------------------- probe
def probe(model, tokenizer, cohorts: list[Cohort], settings: ProbeConfig, decimals: int,
          layout: str = "compact") -> list[dict[str, Any]]:
    """Greedy and sampled QD answers on validation records: one row of format / diversity facts per (data set, task)."""
    from methods.llm.chat import render
    from methods.llm.generation import HFGenerator, SamplingParams
    from methods.llm.parsing import parse_answer
    from methods.llm.prompting import style_prompt

    model.eval()
    generator = HFGenerator(model, tokenizer, batch_size=32, progress=False)
    rows = []
    for cohort in cohorts:
        val = cohort.subset("val")
        n = len(val) if settings.n_patients == 0 else min(settings.n_patients, len(val))
        names = val.feature_names
        for task in val.tasks:
            prompts: list[Prompt] = [style_prompt(val, i, task, "qd", decimals=decimals, layout=layout)
                                   for i in range(n)]
            texts = [render(tokenizer, p).text for p in prompts]
            greedy = generator.generate(texts, SamplingParams(max_new_tokens=settings.max_new_tokens), "probe")
            sampled = generator.generate(texts, SamplingParams(max_new_tokens=settings.max_new_tokens, temperature=1.0,
                                                               seed=settings.seed, n=settings.samples), "probe-sample")
            parsed = [parse_answer(c.text, "qd", names) for c in greedy]
            groups = [sampled[i * settings.samples:(i + 1) * settings.samples] for i in range(n)]
            feature_sets = [[frozenset(parse_answer(c.text, "qd", names).features) for c in g] for g in groups]
            truths = [deviating_at_last_visit(val, i) for i in range(n)]
            said = [sub_answer_items(c.text) for c in greedy]
            rows.append({
                "dataset": cohort.name, "task": task, "patients": n,
                "subanswer_jaccard": float(np.mean([_jaccard(s, t) for s, t in zip(said, truths, strict=True)])),
                "subanswer_constant": float(max(np.mean([_jaccard(s, t) for t in truths]) for s in map(frozenset, truths))),
                "distinct_subanswers": len(set(map(frozenset, said))) / n,
                "probability_auroc": _auroc(val.label(task)[:n], [p.probability for p in parsed]),
                "parse_rate": float(np.mean([p.parsed for p in parsed])),
                "names_feature": float(np.mean([bool(p.features) for p in parsed])),
                "truncated": float(np.mean([not c.finished for c in greedy])),
                "mean_tokens": float(np.mean([c.n_tokens for c in greedy])),
                "sampled_parse_rate": float(np.mean([parse_answer(c.text, "qd", names).parsed for c in sampled])),
                "groups_with_distinct_features": float(np.mean([len(set(s)) > 1 for s in feature_sets])),
            })
    return rows


def sub_answer_items(text: str) -> list[str]:
    """The items of the first ``<Answer>`` of a QD answer (``"Heart Rate ++"``, ...); [] for 'None' or no answer."""
    opening, closing = formats.open_tag(formats.ANSWER_TAG), formats.close_tag(formats.ANSWER_TAG)
    match = re.search(re.escape(opening) + "(.*?)" + re.escape(closing), text, re.S)
    return formats.read_feature_items(match.group(1) if match else "")


def _jaccard(said: Sequence[str], truth: Sequence[str]) -> float:
    union = set(said) | set(truth)
    return len(set(said) & set(truth)) / len(union) if union else 1.0


def _auroc(labels: np.ndarray, probabilities: Sequence[float | None]) -> float | None:
    """AUROC of the greedy answers' probabilities (unparsable: 0.5); None when the labels are one class."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels.tolist())) < 2:
        return None
    return float(roc_auc_score(labels, [0.5 if p is None else p for p in probabilities]))


# ---------------------------------------------------------------------------------------------- stage
def backbone_manifest(config: TestbedConfig, n_parameters: int) -> dict[str, Any]:
    """The backbone manifest (:mod:`methods.llm.backbone`) of the trained folder: it is its own built backbone.

    With ``llm.backbone`` (or ``llm.finetuned.backbone``) ``{source: <dir>, dir: <dir>}`` every LLM stage loads
    the testbed like any local Hugging Face model; no ``build_backbone`` step is needed.
    """
    return {"source": config.dir, "kind": "hf", "weights": "local", "architecture": "LlamaForCausalLM",
            "n_parameters": n_parameters, "chat_template": True, "trained_by": "pretrain_testbed (testbed LM)"}


def cohorts_of(config: TestbedConfig, params: ParamsSource) -> list[Cohort]:
    """The cohorts of ``testbed.datasets``; an unknown name is a one-line error naming the fix."""
    configured = load_params(params).get("datasets") or {}
    missing = [name for name in config.datasets if name not in configured]
    if missing or not config.datasets:
        raise ConfigError(f"{params}: {SECTION}.datasets = {config.datasets}: every name must be a key of "
                          f"`datasets` ({sorted(configured)})")
    return [Cohort.load(cohort_dir(name)) for name in config.datasets]


def run_pretrain(params: ParamsSource = "params.yaml", results: str | Path = RESULTS) -> Path:
    """Stage ``pretrain_testbed``: corpus, tokenizer, model, training, probe (see the module docstring)."""
    params = load_params(params)
    config = load_testbed_config(params)
    start_stage("pretrain_testbed", config.pretraining.seed, to_mapping(config), threads=config.threads)
    started = time.perf_counter()
    cohorts = cohorts_of(config, params)
    documents = build_corpus(cohorts, config.pretraining.answers_per_record, config.pretraining.seed,
                             config.top_k, config.decimals, config.layout,
                             config.pretraining.vanilla_answers_per_record,
                             config.pretraining.deviating_features_share, config.min_features)
    tokenizer = train_tokenizer([f"{d.system}\n{d.user}\n{d.answer}" for d in documents],
                                config.architecture.vocab_size)
    texts = [chat_text(d, tokenizer) for d in documents]
    prompt_texts = [prompt_text(d, tokenizer) for d in documents]
    model = build_model(tokenizer, config.architecture, config.pretraining.seed)
    n_parameters = int(sum(p.numel() for p in model.parameters()))
    LOGGER.info("testbed LM: %d parameters, vocabulary %d", n_parameters, len(tokenizer))
    out = Path(config.dir)
    with atomic_directory(out) as tmp:
        losses = pretrain(model, tokenizer, texts, config.pretraining, tmp / "trainer", prompt_texts)
        trained = time.perf_counter()
        rows = probe(model, tokenizer, cohorts, config.probe, config.decimals, config.layout)
        shutil.rmtree(tmp / "trainer", ignore_errors=True)  # Trainer's scratch folder: not part of the model
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        window = max(1, len(losses) // 10)
        summary = {"n_parameters": n_parameters, "vocabulary": len(tokenizer), "documents": len(documents),
                   "steps": len(losses), "loss_first": float(np.mean(losses[:window])),
                   "loss_last": float(np.mean(losses[-window:])), "probe": rows, "config": to_mapping(config)}
        (tmp / "pretraining.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (tmp / MANIFEST).write_text(json.dumps(backbone_manifest(config, n_parameters), indent=2, sort_keys=True) + "\n")
    LOGGER.info("pretrain_testbed: %.1f s training, %.1f s probe", trained - started, time.perf_counter() - trained)
    table = [{**row, "n_parameters": n_parameters, "steps": len(losses), "loss_last": summary["loss_last"]}
             for row in rows]
    write_table(table, Path(results) / "testbed", "Testbed LM: what the pipeline's small LM does before any method trains it",
                intro=(f"A {n_parameters / 1e6:.2f}M-parameter Llama trained by the pipeline (`pretrain_testbed`) on "
                       f"{len(documents)} label-free QD and Vanilla documents of {', '.join(config.datasets)} (train split): it is "
                       f"not a pretrained LLM. Probe on validation records: greedy answers (parse rate, share that "
                       f"name a cohort feature, truncation at {config.probe.max_new_tokens} tokens) and "
                       f"{config.probe.samples} samples per patient at temperature 1 (share of groups whose named "
                       f"feature sets differ: where R_att can separate a GRPO group). Whether it reads the record: "
                       f"`subanswer_jaccard` is the Jaccard of its greedy answer to '{SUBQUESTION}' "
                       f"against the true deviating features with their marks, `subanswer_constant` what the best single answer "
                       f"repeated for every patient scores, `distinct_subanswers` the share of patients with a "
                       f"different answer, and `probability_auroc` the AUROC of its greedy probability against the "
                       f"task's label (an LM that does not read the record scores the constant and 0.5)."))
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl pretrain-testbed``."""
    parser = stage_parser(subparsers, "pretrain-testbed", "Train the testbed LM (DVC stage pretrain_testbed).",
                          __doc__, params_epilog("testbed", TestbedConfig))
    parser.add_argument("--results", default="results", help="Folder of results/testbed.* (default: results).")
    parser.set_defaults(handler=lambda args: run_pretrain(args.params, args.results))
