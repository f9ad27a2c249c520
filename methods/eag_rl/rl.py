"""Stage ``rl``: EAG-RL stage 2 (attention-aligned policy optimisation), its GRPO / DAPO baselines and ablations.

``eagrl rl DATASET TASK VARIANT`` trains one variant on one task with TRL's ``GRPOTrainer`` (subclassed in
:mod:`methods.eag_rl.trainer`: ε(τ), dynamic sampling) and then evaluates the trained policy in the
Question-Decomposition format on the same test patients as every other LLM method.

Per training step: ``prompts_per_generation`` training patients (a seeded, class-balanced subset of the train
split) are rendered as QD prompts (:mod:`benchmark.serialize` + the chat template), ``num_generations``
completions are sampled per patient, each is scored with the composite reward R of
:mod:`methods.eag_rl.rewards` (the expert's top-k features come from the expert's importance file of the
train split), advantages are group-relative, and the clipped surrogate is optimised on LoRA weights for
``num_iterations`` steps per generation batch (μ ≥ 2: with μ = 1 the ratio is identically 1 and no clip
bound, ε(τ) included, has any effect). A KL penalty β to the initial policy is added (TRL's k3 estimator;
for a stage-1 start TRL keeps a frozen copy of the stage-1 adapter as the reference).

Variants (``eag_rl.rl.variants`` in params.yaml; each overrides fields of ``eag_rl.rl.train``)
------------------------------------------------------------------------------------------
=================  ============================================================================
``eag_rl``         composite reward (paper λ weighting) + adaptive upper clip ε(τ) ∈ [0.2, 0.4]
``grpo``           classification reward only, symmetric clip 0.2, ``loss_type: grpo``
``dapo``           classification reward only, clip 0.2 / 0.28, ``loss_type: dapo`` (token-level),
                   dynamic sampling (groups whose rewards do not vary are replaced), β = 0 as in DAPO
``wo_stage1``      EAG-RL from the base model (fresh LoRA) instead of the stage-1 policy
``wo_ratt``        EAG-RL without R_att (``reward.use_attention: false``)
``wo_eps``         EAG-RL with a fixed symmetric clip 0.2 instead of ε(τ)
``released_weights`` EAG-RL with the released code's reward weights 1.0 / 0.5 / 0.1
=================  ============================================================================

"w/o stage 2" is the stage-1 policy itself, evaluated by the stage-1 (SFT) stage. A variant with another
``expert`` (e.g. ``expert: gru``) is guidance from another expert (beyond the paper).

Outputs (``models/llm/<dataset>/<variant>/<task>/``)
--------------------------------------------------
* ``adapter/`` — the trained LoRA adapter (PEFT; load with ``load_backbone(config, adapter=...)``);
* ``curves.csv`` / ``curves.json`` — one row per optimiser step: reward and its parts, KL, entropy,
  ε(τ) statistics, span entropy, clip ratios (``dvc plots show ... -x step -y <column>``); not the trainer's
  timings (``step_time``, ``train_runtime``, ``*_per_second``: :func:`methods.eag_rl.curves.is_timing`), which go
  to the log.
  Generation-batch columns (reward, reward parts, ε(τ), span entropy, completion lengths, dynamic
  sampling) are those of the batch the step trained on: the μ steps of one batch repeat them;
* ``epsilon.csv`` — one row per trained trajectory (every variant): step, group, patient id, reward, R_att,
  parsed, advantage, span entropy and ε(τ) (where measured) (:data:`methods.eag_rl.trainer.TRAJECTORY_COLUMNS`);
* ``predictions.csv`` — QD answers of the trained policy on the evaluation patients (``llm.evaluation``),
  in the predictions format of :mod:`benchmark.evaluate` (written by the LLM layer's ``evaluate_task``);
* ``metrics.json`` — :func:`benchmark.evaluate.evaluate` of those predictions (bootstrap mean/std/CI),
  the LLM layer's ``run`` block, a ``descriptor`` (:mod:`benchmark.descriptor`: method = the variant,
  family from the variant) and a ``training`` summary (steps, training patients, generation batches, final
  reward, device, dtype, threads);
* ``summary.json`` — the resolved configuration and the same ``training`` summary.

No output holds a wall-clock time (its hash would change on every run and DVC would re-run everything
downstream): load, training and evaluation times go to the stage's log, and ``results/runtime.md`` gives
each stage's wall time.

The pieces: the settings come from :mod:`methods.eag_rl.config` and :mod:`methods.eag_rl.variants`, the training
set from :mod:`methods.eag_rl.training_data`, the rewards from :mod:`methods.eag_rl.reward_adapter`, the run is
assembled by :mod:`methods.eag_rl.grpo_setup` and its curves written by :mod:`methods.eag_rl.curves`; this module
runs the seeds, evaluates each and writes the stage's outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config import ConfigError, Params, ParamsSource, load_params, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.descriptor import MethodDescriptor
from benchmark.launch import in_launched_process, is_main_process
from benchmark.paths import COHORTS, EXPERTS, LLM_MODELS, cohort_dir, importance_path, llm_model_dir
from benchmark.runtime import (
    LOGGER,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    map_in_processes,
    seed_everything,
    start_stage,
)
from benchmark.seeds import seed_block as seed_block_of
from benchmark.seeds import seed_subdir
from benchmark.stage_cli import add_cohorts, add_dataset, params_epilog, stage_parser
from methods.eag_rl.config import SECTION, RLConfig, load_rl_section
from methods.eag_rl.grpo_setup import build_trainer, device_and_dtype, grpo_args, load_policy, save_adapter
from methods.eag_rl.reward_adapter import reward_functions
from methods.eag_rl.rewards import RewardConfig
from methods.eag_rl.training_data import expert_top_k, training_rows
from methods.eag_rl.variants import guiding_expert, resolve_variant, reward_config, variant_seeds
from methods.llm.config import LLMConfig, load_llm_config


def run_rl(dataset: str, task: str, variant: str, params: ParamsSource = "params.yaml",
           cohorts: str | Path = COHORTS, experts: str | Path = EXPERTS, stage1_root: str | Path = LLM_MODELS,
           out_root: str | Path = LLM_MODELS, max_steps: int | None = None, evaluate_after: bool = True) -> Path:
    """Train ``variant`` on ``dataset``/``task`` in each of its seeds and evaluate every run (outputs: module docstring)."""
    params = load_params(params)
    section = load_rl_section(params, params.source)
    if {"dataset": dataset, "task": task} not in section.pairs:
        LOGGER.warning("rl: (%s, %s) is not among %s.rl.pairs; running it anyway", dataset, task, SECTION)
    config = resolve_variant(section, variant, params.source)
    if max_steps is not None:
        config = dataclasses.replace(config, max_steps=max_steps)
    seeds = variant_seeds(section, config, params.source)
    rewards = reward_config(params, config, params.source)
    llm = load_llm_config(params, finetuned=True)
    device, dtype = device_and_dtype(config, llm)
    start_stage(f"rl@{dataset}-{task}-{variant}", seeds[0],
                {"dataset": dataset, "task": task, "variant": variant, "seeds": seeds, "rl": to_mapping(config),
                 "reward": to_mapping(rewards), "device": device, "dtype": dtype},
                threads=llm.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohorts))
    if task not in cohort.tasks:
        raise ConfigError(f"data set '{dataset}' has no task '{task}' (its tasks: {cohort.tasks})")
    expert = guiding_expert(params, config)
    run = RunContext(dataset, task, variant, cohort, rewards, llm, device, dtype, expert,
                     importance_path(dataset, expert, task, "train", experts),
                     importance_path(dataset, expert, task, "test", experts), stage1_root, params)
    target = llm_model_dir(dataset, variant, task, out_root)
    with atomic_directory(target) as folder:
        jobs = [(run, dataclasses.replace(config, seed=seed), folder if i == 0 else folder / seed_subdir(seed),
                 evaluate_after) for i, seed in enumerate(seeds)]
        processes = min(section.seed_processes, len(seeds))
        if processes > 1 and in_launched_process():
            LOGGER.info("rl: under accelerate launch the seeds run one after the other (seed_processes ignored)")
            processes = 1
        if processes > 1:
            # Seeds are independent runs, and the 0.9M-parameter testbed keeps two threads only half busy (one RL
            # step: 0.47 s on 2 threads, 0.62 s on 1, measured): three 1-thread runs side by side beat three in a row.
            LOGGER.info("rl: %d seeds in %d processes", len(seeds), processes)
            results = map_in_processes(train_one, {job[1].seed: job for job in jobs}, processes,
                                       max(1, llm.threads // processes))
        else:
            results = {}
            for i, job in enumerate(jobs):
                LOGGER.info("rl@%s-%s-%s: seed %d (%d of %d)", dataset, task, variant, job[1].seed, i + 1, len(seeds))
                results[job[1].seed] = train_one(*job)
        if evaluate_after and is_main_process():
            metrics = results[seeds[0]]
            metrics["seeds"] = seed_block(results, seeds)
            atomic_write_json(folder / "metrics.json", metrics)
            LOGGER.info("rl@%s-%s-%s: AUROC over %d seeds %.3f ± %.3f", dataset, task, variant, len(seeds),
                        metrics["seeds"]["metrics"]["auroc"]["mean"], metrics["seeds"]["metrics"]["auroc"]["std"])
    return target


@dataclass(frozen=True)
class RunContext:
    """What every seed of one variant's stage shares: data, reward, backbone, device and the guiding expert."""

    dataset: str
    task: str
    variant: str
    cohort: Cohort
    rewards: RewardConfig
    llm: LLMConfig
    device: str
    dtype: str
    expert: str
    importance: Path  # the expert's train-split importance (R_att during training)
    test_importance: Path  # its test-split importance (test-time alignment)
    stage1_root: str | Path
    params: Params


def seed_block(results: dict[int, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """The ``seeds`` block of the variant's metrics.json (:func:`benchmark.seeds.seed_block`): each seed's bootstrap
    means of AUROC, AUPRC and the parse-failure rate, their mean and std, and where each seed's predictions are."""
    per_seed = {seed: {"auroc": results[seed]["auroc"]["mean"], "auprc": results[seed]["auprc"]["mean"],
                       "parse_failure_rate": results[seed]["parse_failure_rate"]} for seed in seeds}
    return seed_block_of(per_seed, seeds)


def _gathered_trajectories(trainer) -> list:
    """The trained trajectories of every process (a collective under launch.processes > 1: run it on every process)."""
    trajectories = trainer.trajectory_records
    if trainer.accelerator.num_processes > 1:  # every process's trajectories (a collective: on every process)
        from accelerate.utils import gather_object

        trajectories = gather_object(trajectories)
    return trajectories


def _evaluate_seed(run: RunContext, config: RLConfig, folder: Path, training: dict[str, Any]) -> dict[str, Any]:
    """The trained seed's policy evaluated on the test patients → its metrics.json (with descriptor and training)."""
    evaluated = time.perf_counter()
    test = run.cohort.subset(run.llm.evaluation.split)
    top_k = dict(zip(map(str, test.ids), expert_top_k(run.test_importance, list(map(str, test.ids))), strict=True))
    metrics = evaluate_policy(folder / "adapter", run.cohort, run.task, run.llm, run.params, folder, top_k)
    metrics["descriptor"] = MethodDescriptor(dataset=run.dataset, task=run.task, method=run.variant,
                                             family=config.family, backbone=run.llm.backbone.source).to_dict()
    metrics["training"] = training
    atomic_write_json(folder / "metrics.json", metrics)
    LOGGER.info("rl@%s-%s-%s seed %d: AUROC %.3f±%.3f AUPRC %.3f±%.3f, parse failures %d/%d (evaluation %.0f s)",
                run.dataset, run.task, run.variant, config.seed, metrics["auroc"]["mean"], metrics["auroc"]["std"],
                metrics["auprc"]["mean"], metrics["auprc"]["std"], metrics["parse_failures"], metrics["n"],
                time.perf_counter() - evaluated)
    return metrics


def train_one(run: RunContext, config: RLConfig, folder: Path, evaluate_after: bool = True) -> dict[str, Any]:
    """One seed: train with GRPOTrainer, save adapter, curves, trajectories, summary and (evaluated) metrics in
    ``folder``; returns the metrics (empty without evaluation)."""
    import torch

    from methods.eag_rl.curves import write_curves
    from methods.eag_rl.trainer import TRAJECTORY_COLUMNS

    seed_everything(config.seed)
    started = time.perf_counter()  # timings: for the log only
    model, tokenizer, peft_config = load_policy(run.dataset, run.task, config, run.llm, run.dtype, run.device,
                                                run.stage1_root)
    rows = training_rows(run.cohort, run.task, config, tokenizer, run.llm, run.importance)
    reward, weights = reward_functions(run.rewards, config, run.cohort.feature_names)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grpo-") as scratch:
        trainer, recorder = build_trainer(model, tokenizer, rows, reward, config,
                                          grpo_args(config, scratch, run.device, run.dtype, weights), peft_config)
        loaded = time.perf_counter()
        result = trainer.train()
        trained = time.perf_counter()
        save_adapter(trainer, folder / "adapter")
    trajectories = _gathered_trajectories(trainer)
    if not trainer.is_world_process_zero():  # launch.processes > 1: rank 0 writes and evaluates
        del trainer, model
        gc.collect()
        return {}
    write_curves(folder, recorder.rows)
    atomic_write_text(folder / "epsilon.csv", pd.DataFrame(
        trajectories, columns=list(TRAJECTORY_COLUMNS)).to_csv(index=False))
    step_times = [r["step_time"] for r in recorder.rows if "step_time" in r]
    training = {
        "steps": int(result.global_step), "train_patients": len(rows),
        "generation_batches": trainer._generation_round,
        "final_reward": next((r["reward"] for r in reversed(recorder.rows) if "reward" in r), None),
        "device": run.device, "dtype": run.dtype, "torch_threads": torch.get_num_threads(),
    }
    del trainer, model
    gc.collect()
    summary = {"dataset": run.dataset, "task": run.task, "variant": run.variant, "expert": run.expert,
               "config": to_mapping(config), "reward": to_mapping(run.rewards), "training": training}
    metrics = _evaluate_seed(run, config, folder, training) if evaluate_after else {}
    atomic_write_json(folder / "summary.json", summary)
    LOGGER.info("rl@%s-%s-%s seed %d: %d steps in %.0f s (%.2f s/step, mean logged step time %s; load %.0f s) -> %s",
                run.dataset, run.task, run.variant, config.seed, training["steps"], trained - loaded,
                (trained - loaded) / max(training["steps"], 1), f"{np.mean(step_times):.2f} s" if step_times else "n/a",
                loaded - started, folder)
    return metrics

def evaluate_policy(adapter: Path, cohort: Cohort, task: str, llm: LLMConfig, params: Params,
                    out: Path, expert_top_k: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """QD answers of backbone + ``adapter`` on the LLM evaluation patients → ``predictions.csv`` + metrics.

    Delegates to the LLM layer's :func:`methods.llm.evaluation.evaluate_task` with the ``qd`` method: the
    same patients (``llm.evaluation``), prompt rendering (``llm.prompt``), decoding (``llm.generation``) and
    length (``llm.methods.qd.max_new_tokens``) as the QD baseline, so paired tests against it apply. The
    caller replaces the descriptor (method = the RL variant). ``expert_top_k`` (id → the guiding expert's
    top-k on the evaluated split) adds the test-time alignment with the expert.
    """
    from methods.llm.evaluation import evaluate_task
    from methods.llm.generation import make_generator

    generator = make_generator(llm.generation, llm.backbone, adapter=adapter)
    metrics = evaluate_task(cohort, task, "qd", llm, generator, out, params, adapter, expert_top_k=expert_top_k)
    del generator
    gc.collect()
    return metrics


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl rl``."""
    parser = stage_parser(subparsers, "rl",
                          "EAG-RL stage 2 / GRPO / DAPO / ablations: train one variant on one task, then evaluate it.",
                          __doc__, params_epilog("eag_rl.rl.train", RLConfig, " (a variant overrides single fields)"))
    add_dataset(parser, help="A data set under 'datasets' in params.yaml.")
    parser.add_argument("task", help="A task of that data set, e.g. mortality.")
    parser.add_argument("variant", help="A variant under eag_rl.rl.variants: eag_rl, grpo, dapo, wo_stage1, wo_ratt, "
                                        "wo_eps, released_weights, ...")
    add_cohorts(parser, help="Folder of the cohorts (data/cohorts).")
    parser.add_argument("--experts", default=str(EXPERTS), help="Folder of the experts (models/experts).")
    parser.add_argument("--stage1", default=str(LLM_MODELS), help="Root of the stage-1 policy (models/llm: <dataset>/wo_stage2/<task>/adapter).")
    parser.add_argument("--out", default=str(LLM_MODELS), help="Root of this stage's outputs (models/llm: <dataset>/<variant>/<task>).")
    parser.add_argument("--max-steps", type=int, default=None, help="Override the variant's max_steps (quick checks).")
    parser.add_argument("--no-eval", action="store_true", help="Train only (no predictions / metrics).")
    parser.set_defaults(handler=lambda a: run_rl(a.dataset, a.task, a.variant, a.params, a.cohorts, a.experts,
                                                 a.stage1, a.out, a.max_steps, not a.no_eval))
