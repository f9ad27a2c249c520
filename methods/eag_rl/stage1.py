"""Stage 1 of EAG-RL as pipeline stages: expert-guided MCTS → trajectories → SFT → the stage-1 policy.

``eagrl mcts DATASET [TASK]`` (DVC ``mcts@pair<i>``, one per (dataset, task) of ``eag_rl.rl.pairs``: stage 1
exists to start stage 2, so it runs where stage 2 does), for TASK, or every task of the data set:

1. a seeded, label-balanced subset of the *train* split (``eag_rl.search``);
2. the expert's top-k features of each patient, read from the expert's importance file
   (``models/experts/<dataset>/<expert>/<task>/importance_train.jsonl``; the expert is a parameter,
   ConCare by default);
3. the QD prompts (:mod:`benchmark.serialize`, chat template of the proposer's tokenizer);
4. the search of :mod:`methods.eag_rl.mcts` with the LLM proposer of :mod:`methods.eag_rl.proposer`
   (the backbone itself, or ``eag_rl.proposer.teacher``), resumable chunk by chunk;
5. the quality filter and class balancing of :mod:`methods.eag_rl.distill`;
6. for comparison, one *unguided* QD answer per patient sampled from the same model with the same
   temperature, scored with the same reward — ``summary.json`` reports both means.

Writes ``outputs/eag_rl/<dataset>/<task>/mcts/``: ``trajectories.jsonl`` (kept trajectories with rewards
and tree statistics per patient), ``sft.jsonl`` (the SFT set: id, label, reward parts, the completion
text), ``summary.json`` and the ``search/`` chunks used for resumption (kept only while the search
fingerprint — settings, patients, model weights, code — is unchanged).

``eagrl sft-stage1 DATASET [TASK]`` (DVC ``sft_stage1@pair<i>``) fine-tunes LoRA adapters on the whole
trajectory given the prompt (:func:`methods.llm.sft.train_lora_sft`) into
``models/llm/<dataset>/wo_stage2/<task>/adapter/`` (the stage-1 policy is the "w/o stage 2" row's model). ``eagrl eval-stage1 DATASET [TASK]`` (``eval_stage1@pair<i>``)
evaluates that policy like every LLM method (QD format) into ``outputs/llm/<dataset>/wo_stage2/<task>/`` —
the "EAG-RL w/o stage 2" row.

The settings are those of :func:`methods.eag_rl.config.load_stage1_config`; the folders those of
:mod:`benchmark.paths`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import ParamsSource, load_params, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.launch import is_main_process
from benchmark.method_catalog import STAGE1_METHOD
from benchmark.paths import (
    COHORTS,
    EAG_RL_OUTPUTS,
    LLM,
    LLM_MODELS,
    adapter_dir,
    cohort_dir,
    importance_path,
    llm_model_dir,
    llm_output_dir,
    search_dir,
)
from benchmark.runtime import LOGGER, atomic_directory, atomic_write_json, atomic_write_text, start_stage
from benchmark.stage_cli import add_dataset, params_epilog, stage_parser
from methods.eag_rl.config import (
    DistillConfig,
    ProposerConfig,
    SearchConfig,
    SFTStageConfig,
    Stage1Config,
    load_stage1_config,
)
from methods.eag_rl.distill import build_sft_records
from methods.eag_rl.mcts import MCTSConfig, PatientTask, Step, run_search
from methods.eag_rl.rewards import RewardConfig, composite_reward
from methods.experts.importance import read_importance
from methods.llm.config import LLMConfig, load_llm_config
from methods.llm.formats import final_question


def expert_top_k(dataset: str, expert: str, task: str, split: str = "train") -> dict[str, list[str]]:
    """Patient id → the expert's top-k features (from the expert's importance file)."""
    path = importance_path(dataset, expert, task, split)
    return {record["id"]: record["top_k"] for record in read_importance(path)}


def expert_hint_text(features: list[str]) -> str:
    """The line that shows the proposer what the guiding expert found salient for one patient.

    Expert guidance reaches the search twice: through this hint (the proposer conditions on the expert's
    top-k features, so candidates name them far more often than the unguided model does) and through
    R_att of the reward (candidates that name them score higher). The stage-1 SFT set pairs each kept
    trajectory with the *plain* prompt: the policy has to learn to name the features without the hint.
    """
    if not features:
        return ""
    names = features[0] if len(features) == 1 else ", ".join(features[:-1]) + " and " + features[-1]
    return (f"Hint from an expert EHR model trained on this hospital's records: the most important features "
            f"for this patient are {names}.")


def proposer_prompts(tokenizer, subset: Cohort, task: str, top_k: dict[str, list[str]], llm: LLMConfig,
                     hint: bool) -> list[str]:
    """The QD prompts the proposer continues: the plain prompt, plus the expert hint when ``hint``."""
    from methods.llm.chat import render_all
    from methods.llm.formats import answer_instructions
    from methods.llm.prompting import build_prompts

    if not hint:
        return [r.text for r in render_all(tokenizer, build_prompts(subset, task, "qd", llm.prompt),
                                           llm.prompt.chat_template)]
    prompts = []
    for i, patient in enumerate(subset.ids):
        instructions = answer_instructions("qd", task) + "\n" + expert_hint_text(top_k[str(patient)])
        prompts += build_prompts(subset.select(np.array([i])), task, "qd", llm.prompt, instructions=instructions)
    return [r.text for r in render_all(tokenizer, prompts, llm.prompt.chat_template)]


def search_subset(cohort: Cohort, task: str, config: SearchConfig) -> Cohort:
    """The train patients searched for ``task``."""
    from methods.llm.prompting import stratified_indices

    train = cohort.subset("train")
    return train.select(stratified_indices(train.label(task), config.n_patients, config.seed, config.balance))


def _load_model(llm: LLMConfig, proposer: ProposerConfig):
    """(model, tokenizer) that proposes steps: the backbone, or the teacher directory."""
    from methods.llm.backbone import load_backbone, load_tokenizer, resolve_device, torch_dtype

    if proposer.teacher is None:
        return load_backbone(llm.backbone)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(proposer.teacher, dtype=torch_dtype(llm.backbone.dtype),
                                                 local_files_only=True)
    model.to(resolve_device(llm.backbone.device)).eval()
    return model, load_tokenizer(proposer.teacher)


def _code_digest() -> str:
    """Hash of the code that shapes a search's results (proposer, answer formats, parser, search, reward)."""
    import methods.eag_rl.mcts as mcts_module
    import methods.eag_rl.proposer as proposer_module
    import methods.eag_rl.rewards as rewards_module
    import methods.llm.formats as formats_module
    import methods.llm.parsing as parsing_module

    digest = hashlib.sha256()
    for module in (mcts_module, proposer_module, rewards_module, formats_module, parsing_module):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def weights_digest(model, samples_per_tensor: int = 4096) -> str:
    """Hash of a model's weights: every parameter's name, shape and an evenly strided sample of its values.

    The search's identity must change when the model is re-trained at the same path (the testbed LM is
    re-trained by ``pretrain_testbed`` in place; a search fingerprinted on the path alone reused the old
    model's chunks, measured at d280348). A strided sample keeps this fast for a multi-billion-parameter
    model, and training moves every sampled value.
    """
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // samples_per_tensor)].to("cpu", torch.float32)
            digest.update(f"{name}:{tuple(tensor.shape)}:".encode())
            digest.update(sample.numpy().tobytes())
    return digest.hexdigest()


def _fingerprint(config: Stage1Config, llm: LLMConfig, tasks: list[PatientTask], model_digest: str) -> str:
    """Identity of a search: settings, patients, prompts, model weights and code; saved chunks are reused only on
    a match."""
    blob = json.dumps({"code": _code_digest(), "mcts": to_mapping(config.mcts), "reward": to_mapping(config.reward),
                       "proposer": to_mapping(config.proposer), "backbone": to_mapping(llm.backbone),
                       "weights": model_digest,
                       "prompt": to_mapping(llm.prompt), "patients": [(t.id, t.prompt, t.expert_top_k) for t in tasks]},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _random_rewards(generator, tasks: list[PatientTask], prompts: list[str], config: Stage1Config,
                    llm: LLMConfig) -> list[float]:
    """Reward of one unguided QD answer per patient (plain prompt, no hint), sampled like the proposer samples."""
    from methods.llm.generation import SamplingParams
    from methods.llm.parsing import parse_answer

    params = SamplingParams(max_new_tokens=llm.methods.qd.max_new_tokens, temperature=config.proposer.temperature,
                            top_p=config.proposer.top_p, seed=config.mcts.seed, n=1)
    completions = generator.generate(prompts, params, desc="unguided")
    rewards = []
    for task, completion in zip(tasks, completions, strict=True):
        answer = parse_answer(completion.text, "qd")
        rewards.append(composite_reward(answer.probability if answer.parsed else None, answer.features, task.label,
                                        task.expert_top_k, task.vocabulary, config.reward).total)
    return rewards


def stage_tasks(cohort: Cohort, task: str | None) -> list[str]:
    """``[task]`` (checked against the cohort's tasks), or every task of the cohort when ``task`` is None."""
    from benchmark.config import ConfigError

    if task is None:
        return list(cohort.tasks)
    if task not in cohort.tasks:
        raise ConfigError(f"data set '{cohort.name}' has no task '{task}' (its tasks: {cohort.tasks}); "
                          f"fix eag_rl.rl.pairs in params.yaml")
    return [task]


def _stage_name(stage: str, dataset: str, task: str | None) -> str:
    return f"{stage}@{dataset}" + (f"-{task}" if task else "")


def run_mcts(dataset: str, params: ParamsSource = "params.yaml", cohort_root: str | Path = COHORTS,
             out_root: str | Path = EAG_RL_OUTPUTS, task: str | None = None) -> Path:
    """Stage ``mcts@pair<i>``: search, filter and balance for ``task`` (None: every task of the data set)."""
    params = load_params(params)
    from methods.eag_rl.proposer import LLMProposer, render_trajectory
    from methods.llm.generation import HFGenerator
    from methods.llm.prompting import rendered_prompts

    config = load_stage1_config(params)
    llm = load_llm_config(params, finetuned=True)
    start_stage(_stage_name("mcts", dataset, task), config.mcts.seed,
                {"dataset": dataset, "task": task, "eag_rl": to_mapping(config), "backbone": to_mapping(llm.backbone)},
                threads=llm.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohort_root))
    tasks_to_search = stage_tasks(cohort, task)
    model, tokenizer = _load_model(llm, config.proposer)
    generator = HFGenerator(model, tokenizer, batch_size=llm.generation.batch_size)
    model_digest = weights_digest(model)
    for task in tasks_to_search:
        subset = search_subset(cohort, task, config.search)
        top_k = expert_top_k(dataset, config.search.expert, task)
        plain = [r.text for r in rendered_prompts(tokenizer, subset, task, "qd", llm.prompt)]
        guided = proposer_prompts(tokenizer, subset, task, top_k, llm, config.proposer.expert_hint)
        labels = subset.label(task)
        tasks = [PatientTask(str(pid), text, int(y), top_k[str(pid)], cohort.feature_names)
                 for pid, text, y in zip(subset.ids, guided, labels, strict=True)]
        folder = search_dir(dataset, task, out_root)
        chunks = folder / "search"
        fingerprint = _fingerprint(config, llm, tasks, model_digest)
        stamp = chunks / "fingerprint.txt"
        if chunks.exists() and (not stamp.exists() or stamp.read_text().strip() != fingerprint):
            shutil.rmtree(chunks)  # settings changed: the saved chunks belong to another search
        chunks.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stamp, fingerprint + "\n")
        proposer = LLMProposer(generator, final_question(task), config.proposer.step_tokens,
                               config.proposer.final_tokens, config.proposer.temperature, config.proposer.top_p,
                               config.proposer.scaffold)
        records = run_search(tasks, proposer, config.mcts, config.reward, chunks)
        rows, summary = build_sft_records(records, config.distill)
        for row in rows:
            row["completion"] = render_trajectory([_step(s) for s in row["steps"]])
        random_rewards = _random_rewards(generator, tasks, plain, config, llm)
        summary.update({
            "dataset": dataset, "task": task, "expert": config.search.expert,
            "mean_reward_best": float(np.mean([r["trajectories"][0]["reward"] for r in records if r["trajectories"]])),
            "mean_reward_random": float(np.mean(random_rewards)),
            "parsed_best": float(np.mean([r["trajectories"][0]["parsed"] for r in records if r["trajectories"]])),
            "positives_searched": int(labels.sum()), "negatives_searched": int((1 - labels).sum()),
            "mean_tree_nodes": float(np.mean([r["tree"]["nodes"] for r in records])),
        })
        atomic_write_text(folder / "trajectories.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        atomic_write_text(folder / "sft.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        atomic_write_json(folder / "summary.json", summary)
        LOGGER.info("mcts@%s/%s: %d patients, %d SFT examples, mean reward best %.3f vs unguided %.3f", dataset, task,
                    len(records), len(rows), summary["mean_reward_best"], summary["mean_reward_random"])
    return llm_model_dir(dataset, STAGE1_METHOD, root=out_root)


def _step(data: dict[str, Any]) -> Step:
    return Step(**{**data, "features": tuple(data.get("features", ()))})


def run_sft(dataset: str, params: ParamsSource = "params.yaml", cohort_root: str | Path = COHORTS,
            mcts_root: str | Path = EAG_RL_OUTPUTS, out_root: str | Path = LLM_MODELS, task: str | None = None) -> Path:
    """Stage ``sft_stage1@pair<i>``: LoRA SFT on the task's SFT set (None: every task) → the stage-1 policy."""
    params = load_params(params)
    from methods.llm.backbone import load_backbone
    from methods.llm.prompting import build_prompts
    from methods.llm.sft import TrainSettings, sft_records, train_lora_sft

    config = load_stage1_config(params)
    llm = load_llm_config(params, finetuned=True)
    start_stage(_stage_name("sft_stage1", dataset, task), config.sft.seed,
                {"dataset": dataset, "task": task, "sft": to_mapping(config.sft), "lora": to_mapping(llm.lora)},
                threads=llm.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohort_root))
    settings = TrainSettings(config.sft.max_steps, config.sft.batch_size, config.sft.gradient_accumulation_steps,
                             config.sft.learning_rate, config.sft.warmup_steps, config.sft.max_length, config.sft.seed)
    tasks_to_train = stage_tasks(cohort, task)
    for task in tasks_to_train:
        rows = [json.loads(line) for line in (search_dir(dataset, task, mcts_root) / "sft.jsonl").read_text().splitlines()
                if line.strip()]
        if not rows:
            raise RuntimeError(f"{search_dir(dataset, task, mcts_root) / 'sft.jsonl'}: no trajectory passed the quality "
                               f"filter; lower eag_rl.distill thresholds or search more patients (eag_rl.search.n_patients)")
        index = {str(pid): i for i, pid in enumerate(cohort.ids)}
        chosen = cohort.select(np.array([index[row["id"]] for row in rows]))
        prompts = build_prompts(chosen, task, "qd", llm.prompt)
        model, tokenizer = load_backbone(llm.backbone, trainable=True)
        records = sft_records(tokenizer, prompts, [row["completion"] for row in rows], llm.prompt.chat_template)
        with atomic_directory(llm_model_dir(dataset, STAGE1_METHOD, task, out_root)) as tmp:
            log = train_lora_sft(model, tokenizer, records, settings, llm.lora, tmp / "adapter",
                                 length_key="eag_rl.sft.max_length")
            if is_main_process():  # launch.processes > 1: rank 0 writes
                atomic_write_json(tmp / "train_log.json", log)
    return llm_model_dir(dataset, STAGE1_METHOD, root=out_root)


def run_eval(dataset: str, params: ParamsSource = "params.yaml", cohort_root: str | Path = COHORTS,
             policy_root: str | Path = LLM_MODELS, out_root: str | Path = LLM, task: str | None = None) -> Path:
    """Stage ``eval_stage1@pair<i>``: the stage-1 policy evaluated like every LLM method (QD format), as ``wo_stage2``.

    Writes ``<out_root>/<dataset>/wo_stage2/<task>/`` for ``task`` (None: every task of the data set).
    """
    params = load_params(params)
    from methods.llm.evaluation import evaluate_task
    from methods.llm.generation import generator_for
    from methods.llm.prompting import Method

    llm = load_llm_config(params, finetuned=True)
    config = load_stage1_config(params)
    start_stage(_stage_name("eval_stage1", dataset, task), llm.generation.seed,
                {"dataset": dataset, "task": task, "llm": to_mapping(llm)}, threads=llm.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohort_root))
    method = Method(STAGE1_METHOD, "EAG-RL w/o stage 2 (the stage-1 policy)", "qd", "qd", family="ablation",
                    trained=True)
    out = llm_output_dir(dataset, STAGE1_METHOD, root=out_root)
    tasks_to_evaluate = stage_tasks(cohort, task)
    for task in tasks_to_evaluate:
        adapter = adapter_dir(dataset, STAGE1_METHOD, task, policy_root)
        with atomic_directory(out / task) as tmp:
            metrics = evaluate_task(cohort, task, method, llm, generator_for(llm, adapter), tmp, params, adapter,
                                    expert_top_k=expert_top_k(dataset, config.search.expert, task, "test"))
        LOGGER.info("eval_stage1@%s/%s: AUROC %.3f, alignment with %s %.3f", dataset, task, metrics["auroc"]["point"],
                    config.search.expert, metrics["mechanism"]["alignment_expert"])
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl mcts``, ``eagrl sft-stage1`` and ``eagrl eval-stage1``."""
    epilog = "\n\n".join(params_epilog(f"eag_rl.{name}", cls) for name, cls in (
        ("search", SearchConfig), ("proposer", ProposerConfig), ("mcts", MCTSConfig), ("reward", RewardConfig),
        ("distill", DistillConfig), ("sft", SFTStageConfig)))
    for name, handler, text in (
        ("mcts", run_mcts, "Expert-guided MCTS trajectories for one task of a data set (DVC stage mcts@pair<i>)."),
        ("sft-stage1", run_sft, "LoRA SFT on the MCTS trajectories: the stage-1 policy (DVC stage sft_stage1@pair<i>)."),
        ("eval-stage1", run_eval, "Evaluate the stage-1 policy, QD format (DVC stage eval_stage1@pair<i>)."),
    ):
        parser = stage_parser(subparsers, name, text, __doc__, epilog)
        add_dataset(parser)
        parser.add_argument("task", nargs="?", default=None,
                            help="A task of that data set (the pipeline runs one per eag_rl.rl.pairs entry); "
                                 "omitted = every task of the data set.")
        parser.set_defaults(handler=lambda args, run=handler: run(args.dataset, args.params, task=args.task))
