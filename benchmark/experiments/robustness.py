"""Stages ``robustness-dl`` and ``robustness-llm``: every method on perturbed test sets (issue 8, part 1).

The perturbations and their levels are those of :mod:`benchmark.perturb` (``robustness.dl.levels`` and
``robustness.llm.levels`` in params.yaml, e.g. ``none``, ``shuffle:0.2`` ... ``shuffle:1``, ``noise:0.1``,
``mask:0.5``); one seed (``robustness.seed``) draws every perturbation, per patient, so the DL models and the
LLMs see the same perturbed values for the patients they share.

``eagrl robustness-dl DATASET GROUP [MODEL ...]`` — the DL-side models of a ``robustness.dl_groups`` group
(``experts``, ``hybrid``; all of its models, or the ones named) on every task of DATASET: the whole test
split, each level; under shuffling the *columns* move (the model reads other features' values in a slot).
Cheap: seconds per expert (hybrid_fusion re-embeds each perturbed record with the LLM), so the pipeline runs
one stage per data set and group (``robustness_dl@<dataset>``, ``robustness_hybrid@<dataset>``) rather
than one per model: a DVC stage costs seconds of its own.

``eagrl robustness-llm DATASET TASK METHOD`` — an LLM method (vanilla, think_answer, qd, label_sft,
wo_stage2 or an RL variant; see :mod:`benchmark.method_catalog`) on one task: a seeded, label-stratified
subset of ``robustness.llm.n_patients`` test patients (generation on 2 CPU cores is the cost), each level;
under shuffling the prompt *lines* move (each keeps its name and values), under noise / masking the prompt
shows the perturbed values. One generator (backbone + adapter) serves every level. An RL variant trained in
several seeds is evaluated in each of them (its metrics.json's ``seeds`` block): the first seed's files as
below, every further seed's in ``<condition>/seeds/<seed>/``, and the first seed's ``metrics.json`` gains a
``seeds`` block (:func:`benchmark.seeds.seed_block`) that ``results/rl_comparison`` pools over; the robustness
table itself shows the first seed.

Outputs, one folder per condition: ``outputs/robustness/<dataset>/<method>/<task>/<condition>/`` (LLM methods)
and ``outputs/robustness/<dataset>/<group>/<model>/<task>/<condition>/`` (DL models), with
``predictions.csv`` (:func:`benchmark.evaluate.write_predictions`) and ``metrics.json``
(:func:`benchmark.evaluate.evaluate` + a ``descriptor`` whose ``condition`` is the perturbation, e.g.
``shuffle:0.4``; level 0 is ``none``). ``eagrl report-robustness`` (:mod:`benchmark.reports.shift`) turns
them into ``results/robustness.*`` and the curves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmark.config import ConfigError, from_mapping, load_params, option, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.descriptor import DESCRIPTOR_KEY, MethodDescriptor
from benchmark.evaluate import evaluate, metrics_config, read_predictions, write_predictions
from benchmark.method_catalog import DEFAULT_DL_GROUPS, PROMPTING, SFT_TRAINED, MethodSpec, dl_groups, resolve
from benchmark.paths import COHORTS, ROBUSTNESS, cohort_dir, robustness_dir
from benchmark.perturb import Perturbation, parse_levels, perturb_for_dl, perturb_values, serializer_kwargs
from benchmark.protocol import Methods
from benchmark.runtime import LOGGER, atomic_directory, atomic_write_json, start_stage
from benchmark.seeds import seed_block
from benchmark.stage_cli import add_cohorts, add_dataset, params_epilog, stage_parser

SECTION = "robustness"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"
DL_LEVELS = ["none", "shuffle:0.4", "shuffle:1", "noise:0.3", "mask:0.5"]
LLM_LEVELS = ["none", "shuffle:1"]


@dataclass
class DLRobustnessConfig:
    """``robustness.dl``: the levels the DL-side models are evaluated at."""

    levels: list[str] = option(list(DL_LEVELS), help="Conditions: 'none' and '<shuffle|noise|mask>:<level>' (benchmark/perturb.py).")
    split: str = option("test", help="Split evaluated (every patient of it).")


@dataclass
class LLMRobustnessConfig:
    """``robustness.llm``: the levels, patients and (dataset, task) pairs of the LLM methods."""

    levels: list[str] = option(list(LLM_LEVELS), help="Conditions, as for the DL models (each costs a generation pass per method).")
    n_patients: int = option(16, minimum=0, help="Seeded, label-stratified subset of the test split per pair for the prompting baselines on the pretrained LLM (0 = all): generation is the cost. Fine-tuned methods (llm.finetuned) use their own llm.evaluation patients.")
    seed: int = option(42, help="Seed of that subset (the same patients for every LLM method and level).")
    pairs: list[dict[str, str]] = option([{"dataset": "synthetic_icu", "task": "mortality"}],
                                         help="(dataset, task) pairs of every LLM method, RL variants included (so each must be in eag_rl.rl.pairs).")
    prompting: list[str] = option(["vanilla"], help="Prompting baselines perturbed here (the DVC matrix 'method' of robustness_llm; any of vanilla, think_answer, qd): C4 compares EAG-RL with the base LLM, Vanilla prompting (benchmark/reports/paper/claims.yaml).")
    trained: list[str] = option(["label_sft", "wo_stage2", "eag_rl", "grpo", "wo_ratt"], help="Trained LLM methods perturbed here (the DVC matrix 'method' of robustness_llm_trained): label_sft, wo_stage2 (the stage-1 policy) and keys of eag_rl.rl.variants (in every training seed). C4 needs eag_rl; each costs one generation pass per level and seed.")


@dataclass
class RobustnessConfig:
    """The ``robustness`` section of params.yaml."""

    seed: int = option(42, help="Seed of every perturbation (drawn per patient id).")
    threads: int = option(2, minimum=1, help="torch threads of the DL stages (LLM stages use llm.threads).")
    dl_groups: list[dict[str, Any]] = option(DEFAULT_DL_GROUPS, help="DL-side model groups: {name, root, models (dotted params key), family}.")
    dl: DLRobustnessConfig = option(default_factory=DLRobustnessConfig, help="DL models.")
    llm: LLMRobustnessConfig = option(default_factory=LLMRobustnessConfig, help="LLM methods.")

    def dl_levels(self) -> list[Perturbation]:
        return parse_levels(self.dl.levels, f"{SECTION}.dl.levels")

    def llm_levels(self) -> list[Perturbation]:
        return parse_levels(self.llm.levels, f"{SECTION}.llm.levels")


def check_trained(chosen: list[str], rl: dict[str, Any], key: str, source: str | Path = "params.yaml") -> None:
    """Refuse trained LLM methods (``chosen``, read from ``key``) that no stage trains: each must be label_sft,
    wo_stage2 or a variant of ``eag_rl.rl.variants``.

    Without an ``eag_rl.rl.variants`` mapping (a params file without stage 2) the variants cannot be checked.
    """
    if not rl.get("variants"):
        return
    trained = [*SFT_TRAINED, *rl["variants"]]
    unknown = [v for v in chosen if v not in trained]
    if unknown:
        raise ConfigError(f"{source}: {key} names {unknown}, which no stage trains (trained LLM methods: "
                          f"{trained}); remove them from {key} or add them to eag_rl.rl.variants")


def load_robustness_config(params: dict[str, Any], source: str | Path = "params.yaml") -> RobustnessConfig:
    """The ``robustness`` section as a checked :class:`RobustnessConfig` (defaults where absent)."""
    config = from_mapping(RobustnessConfig, params.get(SECTION), f"{source}: {SECTION}")
    config.dl_levels(), config.llm_levels()  # fail early on a bad level
    for i, pair in enumerate(config.llm.pairs):
        if not isinstance(pair, dict) or set(pair) != {"dataset", "task"}:
            raise ConfigError(f"{source}: {SECTION}.llm.pairs[{i}] must be a mapping with keys dataset and task")
    unknown = [m for m in config.llm.prompting if m not in PROMPTING]
    if unknown:
        raise ConfigError(f"{source}: {SECTION}.llm.prompting names {unknown}; the prompting baselines are {list(PROMPTING)}")
    rl = (params.get("eag_rl") or {}).get("rl") or {}
    check_trained(config.llm.trained, rl, f"{SECTION}.llm.trained", source)
    if rl.get("variants") and any(m != "label_sft" for m in config.llm.trained):  # stage 1 and 2 train on eag_rl.rl.pairs
        trained = rl.get("pairs") or []
        for i, pair in enumerate(config.llm.pairs):
            if pair not in trained:
                raise ConfigError(f"{source}: {SECTION}.llm.pairs[{i}] = {pair} is not in eag_rl.rl.pairs {trained}: the "
                                  f"stage-1 policy and the RL variants (robustness_llm_trained) are trained there only; add it "
                                  f"to eag_rl.rl.pairs or remove it from {SECTION}.llm.pairs")
    for group in dl_groups(params):
        if group.levels is not None:
            parse_levels(group.levels, f"{source}: {SECTION}.dl_groups[{group.name}].levels")
    return config


def score_dl(expert, cohort: Cohort, task: str, out: Path, params_path: str | Path,
             descriptor: MethodDescriptor, run: dict[str, Any]) -> dict[str, Any]:
    """Predict ``cohort`` with a DL model and write ``predictions.csv`` + ``metrics.json`` into ``out``.

    Shared by the robustness and cross-domain stages: the metrics are those of every method
    (:func:`benchmark.evaluate.evaluate`), with the descriptor and a ``run`` block added. The time it took
    goes to the log only (an output with a timing would change its hash on every run).
    """
    started = time.perf_counter()
    probabilities = expert.predict_proba(cohort)
    write_predictions(out / PREDICTIONS, cohort.ids, cohort.label(task), probabilities)
    metrics = evaluate(read_predictions(out / PREDICTIONS), metrics_config(params_path))
    metrics["run"] = dict(run)
    metrics[DESCRIPTOR_KEY] = descriptor.to_dict()
    atomic_write_json(out / METRICS, metrics)
    LOGGER.info("%s %s/%s %s: %d patients predicted and scored in %.3f s", descriptor.method, descriptor.dataset, task,
                descriptor.condition, len(cohort), time.perf_counter() - started)
    return metrics


def _dl_spec(method: str, params: dict[str, Any], params_path: str | Path, stage: str, methods: Methods) -> MethodSpec:
    spec = resolve(method, params, methods, str(params_path))
    if spec.kind != "dl":
        raise ConfigError(f"'{method}' is an LLM method; `eagrl {stage}` takes DL models (experts, hybrids)")
    return spec


def group_models(group: str, params: dict[str, Any], models: list[str] | None = None,
                 source: str | Path = "params.yaml") -> list[str]:
    """The models of the ``robustness.dl_groups`` group ``group`` (or the subset ``models``, checked)."""
    groups = {g.name: g for g in dl_groups(params)}
    if group not in groups:
        raise ConfigError(f"{source}: robustness.dl_groups has no group '{group}' (it has {sorted(groups)})")
    members = groups[group].members(params)
    unknown = [m for m in models or [] if m not in members]
    if unknown:
        raise ConfigError(f"{source}: {unknown} not in group '{group}' (its models, {groups[group].models}: {members})")
    return list(models) if models else members


def run_dl(dataset: str, group: str, models: list[str] | None = None, params_path: str | Path = "params.yaml",
           cohort_root: str | Path = COHORTS, out_root: str | Path = ROBUSTNESS,
           model_root: str | Path | None = None, *, methods: Methods) -> Path:
    """Stage ``robustness_dl@<dataset>`` / ``robustness_hybrid@<dataset>``: the DL models of ``group`` (or
    ``models`` of it), every task and level; returns the group's folder ``<out_root>/<dataset>/<group>``."""
    params = load_params(params_path)
    config = load_robustness_config(params, params_path)
    models = group_models(group, params, models, params_path)
    levels = group_levels(group, params, config, params_path)
    start_stage(f"robustness_dl@{dataset}-{group}", config.seed,
                {"dataset": dataset, "group": group, "models": models, "robustness": to_mapping(config)},
                threads=config.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohort_root)).subset(config.dl.split)
    folder = robustness_dir(dataset, group, root=out_root)
    folder.mkdir(parents=True, exist_ok=True)
    for model in models:
        spec = _dl_spec(model, params, params_path, "robustness-dl", methods)
        if model_root is not None:
            spec = dataclasses.replace(spec, root=Path(model_root))
        _perturbed_scores(dataset, model, spec, cohort, config, params_path, folder / model, levels, methods)
    return folder


def group_levels(group: str, params: dict[str, Any], config: RobustnessConfig,
                 source: str | Path = "params.yaml") -> list[Perturbation]:
    """The conditions the models of ``robustness.dl_groups`` group ``group`` are evaluated at: the group's own
    ``levels`` when it sets them, else ``robustness.dl.levels``."""
    own = {g.name: g for g in dl_groups(params)}[group].levels
    if own is None:
        return config.dl_levels()
    return parse_levels(own, f"{source}: robustness.dl_groups[{group}].levels")


def _perturbed_scores(dataset: str, model: str, spec: MethodSpec, cohort: Cohort, config: RobustnessConfig,
                      params_path: str | Path, out: Path, levels: list[Perturbation], methods: Methods) -> None:
    """One DL model on every task and each of ``levels`` of ``cohort`` into ``out`` (written atomically)."""
    with atomic_directory(out) as tmp:
        for task in cohort.tasks:
            checkpoint = spec.checkpoint(dataset, task)
            expert = methods.load_model(checkpoint)
            for perturbation in tqdm(levels, desc=f"robustness {model} {dataset}/{task}", leave=False):
                perturbed = perturb_for_dl(cohort, perturbation, config.seed)
                descriptor = MethodDescriptor(dataset=dataset, task=task, method=model, family=spec.family,
                                              condition=perturbation.condition)
                run = {"dataset": dataset, "task": task, "method": model, "view": "dl", "split": config.dl.split,
                       "perturbation": {**dataclasses.asdict(perturbation), "seed": config.seed},
                       "checkpoint": str(checkpoint)}
                metrics = score_dl(expert, perturbed, task, tmp / task / perturbation.slug, params_path,
                                   descriptor, run)
                LOGGER.info("robustness %s %s/%s %s: AUROC %.3f AUPRC %.3f", model, dataset, task,
                            perturbation.condition, metrics["auroc"]["mean"], metrics["auprc"]["mean"])


def _llm_spec(method: str, params: dict[str, Any], params_path: str | Path, stage: str, methods: Methods) -> MethodSpec:
    spec = resolve(method, params, methods, str(params_path))
    if spec.kind != "llm":
        raise ConfigError(f"'{method}' is a DL model; use `eagrl robustness-dl` / the DL form of `eagrl {stage}`")
    return spec


def seed_folder(seed: int) -> str:
    """Where a further training seed's files lie inside a condition's folder: ``seeds/<seed>``, one level deeper
    than the DL groups' ``<group>/<model>/<task>/<condition>`` files, so the reports do not read it as a method."""
    return f"seeds/{seed}"


def check_adapter(adapter: Path | None, method: str) -> None:
    """Raise a :class:`ConfigError` naming the stage to run when a trained method's adapter is missing."""
    if adapter is not None and not (adapter / "adapter_config.json").exists():
        raise ConfigError(f"{adapter}: no LoRA adapter (adapter_config.json) for '{method}'; run its training "
                          f"stage first (label_sft / sft_stage1 / rl, or `dvc repro`)")


def run_llm(dataset: str, task: str, method: str, params_path: str | Path = "params.yaml",
            cohort_root: str | Path = COHORTS, out_root: str | Path = ROBUSTNESS,
            adapter_root: str | Path | None = None, llm_config=None, *, methods: Methods) -> Path:
    """Stage ``robustness_llm*@...``: one LLM method on one task at every level; returns its folder."""
    params = load_params(params_path)
    config = load_robustness_config(params, params_path)
    spec = _llm_spec(method, params, params_path, "robustness-llm", methods)
    if adapter_root is not None and spec.root is not None:
        spec = dataclasses.replace(spec, root=Path(adapter_root))
    llm = llm_config or methods.llm_config(params_path, finetuned=spec.on_finetuned_backbone)
    if not spec.on_finetuned_backbone:  # prompting on the pretrained LLM: the robustness subset; methods on the
        # fine-tuned backbone (trained ones and the base policy): their own evaluation
        llm = dataclasses.replace(llm, evaluation=dataclasses.replace(llm.evaluation, n_patients=config.llm.n_patients,
                                                                      seed=config.llm.seed))
    levels = config.llm_levels()
    start_stage(f"robustness_llm@{dataset}-{task}-{method}", config.seed,
                {"dataset": dataset, "task": task, "method": method, "family": spec.family,
                 "robustness": to_mapping(config), "llm": to_mapping(llm)}, threads=llm.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohort_root))
    if task not in cohort.tasks:
        raise ConfigError(f"data set '{dataset}' has no task '{task}' (its tasks: {cohort.tasks})")
    split = cohort.subset(llm.evaluation.split)
    adapters = spec.seed_adapters(dataset, task) or {None: spec.adapter(dataset, task)}  # an RL variant: every seed
    for adapter in adapters.values():  # every seed's adapter is there before anything is written
        check_adapter(adapter, method)
    out = robustness_dir(dataset, method, task, out_root)
    with atomic_directory(out) as tmp:
        per_seed: dict[str, dict[int, dict[str, float]]] = {p.slug: {} for p in levels}
        for i, (seed, seed_adapter) in enumerate(adapters.items()):
            generator = methods.generator(llm, seed_adapter)
            for perturbation in levels:
                folder = tmp / perturbation.slug if i == 0 else tmp / perturbation.slug / seed_folder(seed)
                metrics = methods.evaluate_llm(perturb_values(split, perturbation, config.seed), task,
                                               spec.llm_method, llm, generator, folder, params_path, seed_adapter,
                                               condition=perturbation.condition,
                                               **serializer_kwargs(perturbation, config.seed))
                per_seed[perturbation.slug][seed] = {"auroc": metrics["auroc"]["mean"],
                                                     "auprc": metrics["auprc"]["mean"],
                                                     "parse_failure_rate": metrics["parse_failure_rate"]}
                LOGGER.info("robustness %s%s %s/%s %s: AUROC %.3f, parse failures %d/%d", method,
                            "" if seed is None else f" seed {seed}", dataset, task, perturbation.condition,
                            metrics["auroc"]["mean"], metrics["parse_failures"], metrics["n"])
            del generator
        if len(adapters) > 1:  # the first seed's metrics.json points at every seed's files
            for slug, results in per_seed.items():
                first = json.loads((tmp / slug / "metrics.json").read_text())
                first["seeds"] = seed_block(results, list(adapters), seed_folder)
                atomic_write_json(tmp / slug / "metrics.json", first)
    return out


def register(subparsers: argparse._SubParsersAction, methods: Methods) -> None:
    """Add ``eagrl robustness-dl`` and ``eagrl robustness-llm`` (they run ``methods``)."""
    epilog = params_epilog("robustness", RobustnessConfig)
    dl = stage_parser(subparsers, "robustness-dl",
                      "A DL-side model (expert/hybrid) on perturbed test sets (DVC stage robustness_dl).", __doc__, epilog)
    add_dataset(dl, help="A data set under 'datasets' in params.yaml.")
    dl.add_argument("group", help="A robustness.dl_groups group: experts or hybrid (its models: experts.models, hybrid.models).")
    dl.add_argument("only", nargs="*", metavar="MODEL", help="Only these models of the group (default: all of them).")
    add_cohorts(dl)
    dl.add_argument("--out", default=str(ROBUSTNESS), help="Folder that receives <dataset>/<group>/<model>/<task>/<condition>/.")
    dl.add_argument("--models", default=None, help="Override the group's checkpoint root (<root>/<dataset>/<model>/<task>/model.pt).")
    dl.set_defaults(handler=lambda a: run_dl(a.dataset, a.group, a.only, a.params, a.cohorts, a.out, a.models,
                                             methods=methods))
    llm = stage_parser(subparsers, "robustness-llm",
                       "An LLM method on perturbed prompts of one task (DVC stages robustness_llm*).", __doc__, epilog)
    add_dataset(llm, help="A data set under 'datasets' in params.yaml.")
    llm.add_argument("task", help="A task of that data set, e.g. mortality.")
    llm.add_argument("method", help="vanilla, think_answer, qd, base_policy_<prompting method>, label_sft, wo_stage2 or an eag_rl.rl.variants key.")
    add_cohorts(llm)
    llm.add_argument("--out", default=str(ROBUSTNESS), help="Folder that receives <dataset>/<method>/<task>/<condition>/.")
    llm.add_argument("--adapters", default=None, help="Override the root of the trained LLM methods (models/llm: <dataset>/<method>/<task>/adapter).")
    llm.set_defaults(handler=lambda a: run_llm(a.dataset, a.task, a.method, a.params, a.cohorts, a.out, a.adapters,
                                               methods=methods))
