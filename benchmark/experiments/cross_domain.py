"""Stage ``cross-domain``: train on a source domain, test zero-shot on a target domain (issue 8, part 2).

``eagrl cross-domain SOURCE TARGET TASK METHOD`` evaluates one method, trained on SOURCE, on TARGET's
test patients, for one task both data sets have (mortality is the only shared one). The pairs the pipeline
runs are ``cross_domain.pairs`` in params.yaml: synthetic ``icu`` → ``ward`` by default;
``eagrl configure --tjh`` adds ``synthetic_icu`` → ``tjh``, and with MIMIC-IV configured too
``mimic_iv`` → ``tjh`` (the paper's setting, Table 3).

How each kind of method meets the other domain
----------------------------------------------
* **DL models** (experts, hybrids; :mod:`benchmark.method_catalog`) read fixed feature columns. The target's
  patients are re-expressed on the *source's* feature list with the documented feature mapping
  (:func:`benchmark.data.mapping.map_cohort`: same-name features and the unit-converted pairs of
  ``resources/feature_mapping.yaml``); source features with no target counterpart are missing, so the
  DL view imputes them with the *source's* train median (the value the model saw for "never measured"), and
  all values are z-scored with the source's train statistics. Evaluated on the whole target test split.
  ``metrics.json`` records which columns were mapped.
* **Trained LLM methods** (label_sft, wo_stage2, the RL variants) load the adapter trained on SOURCE and read
  TARGET's prompts as they are (its own features, units and reference ranges): text needs no mapping.
* **Prompting methods** (vanilla, think_answer, qd, and the base policy ``base_policy_<key>``: the same
  prompts on the fine-tuned methods' backbone) learn nothing from any domain, so their row of a pair is
  simply zero-shot on TARGET: their in-domain target evaluation on the same patients. That evaluation
  (``outputs/llm/<target>/<method>/<task>/``, the llm_eval stage, a DVC dependency of this one) is reused
  when it covers the same patients with the same generation length — the greedy decoding would repeat it
  token for token — and generated afresh otherwise; ``run.reused_from`` says which. The row is kept so
  that every pair has the base model's row; its descriptor names SOURCE as ``train_dataset``, which places
  it in the pair.
* LLM methods are scored on ``llm.evaluation`` (the same seeded target-test subset as the in-domain LLM
  evaluation of the target, so in-domain and cross-domain rows are paired).

Outputs: ``outputs/cross_domain/<source>_to_<target>/<method>/<task>/`` with ``predictions.csv`` and
``metrics.json`` (descriptor: ``dataset`` = TARGET, ``train_dataset`` = SOURCE). ``eagrl report-cross-domain``
(:mod:`benchmark.reports.shift`) writes ``results/cross_domain.*`` and its plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.config import ConfigError, from_mapping, load_params, option, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.data.mapping import feature_map, map_cohort
from benchmark.descriptor import DESCRIPTOR_KEY, MethodDescriptor
from benchmark.experiments.robustness import check_adapter, check_trained, score_dl
from benchmark.method_catalog import MethodSpec, resolve
from benchmark.paths import COHORTS, CROSS_DOMAIN, LLM, cohort_dir, cross_domain_dir, llm_output_dir
from benchmark.protocol import Methods
from benchmark.runtime import LOGGER, atomic_directory, atomic_write_json, start_stage
from benchmark.stage_cli import add_cohorts, params_epilog, stage_parser

SECTION = "cross_domain"
METRICS = "metrics.json"


@dataclass
class CrossDomainConfig:
    """The ``cross_domain`` section of params.yaml."""

    pairs: list[dict[str, str]] = option([{"source": "synthetic_icu", "target": "synthetic_ward", "task": "mortality"}],
                                         help="(source, target, task) triples evaluated: the DVC matrix 'pair'.")
    split: str = option("test", help="Target split the DL models are scored on (every patient; LLMs use llm.evaluation).")
    seed: int = option(42, help="Seed logged with the stage (evaluation itself is deterministic).")
    threads: int = option(2, minimum=1, help="torch threads of the DL form (LLM methods use llm.threads).")
    trained: list[str] = option(["label_sft", "wo_stage2", "eag_rl"], help="Trained LLM methods tested on the target with the source's adapters (the DVC matrix 'method' of cross_domain_trained): label_sft, wo_stage2 and keys of eag_rl.rl.variants. C5 needs eag_rl.")


def load_cross_domain_config(params: dict[str, Any], source: str | Path = "params.yaml") -> CrossDomainConfig:
    """The ``cross_domain`` section, checked (each pair has source, target and task; source != target)."""
    config = from_mapping(CrossDomainConfig, params.get(SECTION), f"{source}: {SECTION}")
    for i, pair in enumerate(config.pairs):
        if not isinstance(pair, dict) or set(pair) != {"source", "target", "task"}:
            raise ConfigError(f"{source}: {SECTION}.pairs[{i}] must be a mapping with keys source, target and task, "
                              f"got {pair!r}")
        if pair["source"] == pair["target"]:
            raise ConfigError(f"{source}: {SECTION}.pairs[{i}]: source and target are both '{pair['source']}'")
    check_trained(config.trained, (params.get("eag_rl") or {}).get("rl") or {}, f"{SECTION}.trained", source)
    return config


def mapping_summary(source: Cohort, target: Cohort) -> dict[str, Any]:
    """Which source columns a target patient fills (``feature_map`` from target to source), for the record."""
    mapping = feature_map(target.feature_names, source.feature_names)
    fed = {name: (None if j is None else {"from": target.feature_names[j], "factor": factor})
           for name, (j, factor) in zip(source.feature_names, mapping, strict=True)}
    return {"columns": fed, "mapped": sum(v is not None for v in fed.values()), "of": len(fed)}


def in_domain_matches(in_domain: Path, target: Cohort, task: str, method: str, llm, methods: Methods) -> bool:
    """Whether a prompting method's target evaluation ``in_domain`` is what this stage would generate.

    True when it scored the patients this stage scores (``llm.evaluation`` on the target) with the same
    generation length, under greedy decoding, which then repeats it token for token.
    """
    import json

    from benchmark.evaluate import read_predictions

    predictions, metrics_file = in_domain / "predictions.csv", in_domain / METRICS
    if llm.generation.temperature > 0 or not (predictions.exists() and metrics_file.exists()):
        return False
    recorded = json.loads(metrics_file.read_text()).get("run", {})
    setting = getattr(llm.methods, method, None) or getattr(llm.methods, methods.llm_method(method).style)
    expected = [str(i) for i in methods.evaluation_subset(target, task, llm).ids]
    return recorded.get("max_new_tokens") == setting.max_new_tokens and \
        list(read_predictions(predictions)["id"]) == expected


def copy_in_domain(in_domain: Path, out: Path, params_path: str | Path, descriptor: MethodDescriptor,
                   backbone: str) -> dict[str, Any]:
    """Copy ``in_domain``'s predictions to ``out`` and score them under the cross-domain ``descriptor``."""
    import json

    from benchmark.evaluate import evaluate, metrics_config, read_predictions

    shutil.copyfile(in_domain / "predictions.csv", out / "predictions.csv")
    metrics = evaluate(read_predictions(out / "predictions.csv"), metrics_config(params_path))
    recorded = json.loads((in_domain / METRICS).read_text()).get("run", {})
    metrics["run"] = {**recorded, "zero_shot": True, "reused_from": str(in_domain)}
    metrics[DESCRIPTOR_KEY] = dataclasses.replace(descriptor, backbone=backbone).to_dict()
    atomic_write_json(out / METRICS, metrics)
    return metrics


def _load_pair(source: str, target: str, task: str, cohort_root: str | Path) -> tuple[Cohort, Cohort]:
    """The source and target cohorts, both checked to have ``task``."""
    source_cohort = Cohort.load(cohort_dir(source, cohort_root))
    target_cohort = Cohort.load(cohort_dir(target, cohort_root))
    for name, cohort in (("source", source_cohort), ("target", target_cohort)):
        if task not in cohort.tasks:
            raise ConfigError(f"cross-domain: {name} '{cohort.name}' has no task '{task}' (its tasks: {cohort.tasks})")
    return source_cohort, target_cohort


def _run_dl(source: str, target: str, task: str, method: str, spec: MethodSpec, config: CrossDomainConfig,
            cohorts: tuple[Cohort, Cohort], descriptor: MethodDescriptor, out: Path, params_path: str | Path,
            methods: Methods) -> None:
    """A DL model trained on ``source`` scored on the target's patients mapped onto the source's features."""
    source_cohort, target_cohort = cohorts
    start_stage(f"cross_domain@{source}-{target}-{task}-{method}", config.seed,
                {"source": source, "target": target, "task": task, "method": method, "kind": "dl",
                 "cross_domain": to_mapping(config)}, threads=config.threads)
    checkpoint = spec.checkpoint(source, task)
    expert = methods.load_model(checkpoint)
    mapped = map_cohort(target_cohort.subset(config.split), source_cohort)
    with atomic_directory(out) as tmp:
        summary = mapping_summary(source_cohort, target_cohort)
        metrics = score_dl(expert, mapped, task, tmp, params_path, descriptor,
                           {"source": source, "target": target, "task": task, "method": method, "view": "dl",
                            "split": config.split, "checkpoint": str(checkpoint), "mapping": summary})
    LOGGER.info("cross-domain %s %s -> %s/%s (%d of %d columns mapped): AUROC %.3f AUPRC %.3f", method, source,
                target, task, summary["mapped"], summary["of"], metrics["auroc"]["mean"], metrics["auprc"]["mean"])


def _run_llm(source: str, target: str, task: str, method: str, spec: MethodSpec, target_cohort: Cohort,
             descriptor: MethodDescriptor, out: Path, params_path: str | Path, llm_config, llm_root: str | Path,
             methods: Methods) -> None:
    """An LLM method on the target's prompts: the target's own evaluation where it matches, else generated afresh."""
    llm = llm_config or methods.llm_config(params_path, finetuned=spec.on_finetuned_backbone)
    start_stage(f"cross_domain@{source}-{target}-{task}-{method}", llm.generation.seed,
                {"source": source, "target": target, "task": task, "method": method, "kind": "llm",
                 "trained": spec.trained, "llm": to_mapping(llm)}, threads=llm.threads)
    adapter = spec.adapter(source, task)
    check_adapter(adapter, method)
    if not spec.trained:
        in_domain = llm_output_dir(target, method, task, llm_root)
        if in_domain_matches(in_domain, target_cohort, task, method, llm, methods):
            with atomic_directory(out) as tmp:
                metrics = copy_in_domain(in_domain, tmp, params_path, descriptor, llm.backbone.source)
            LOGGER.info("cross-domain %s %s -> %s/%s: the target's own evaluation %s (same patients and length), "
                        "AUROC %.3f", method, source, target, task, in_domain, metrics["auroc"]["mean"])
            return
        LOGGER.info("cross-domain %s: no matching in-domain evaluation at %s; generating", method, in_domain)
    with atomic_directory(out) as tmp:
        metrics = methods.evaluate_llm(target_cohort, task, spec.llm_method, llm, methods.generator(llm, adapter),
                                       tmp, params_path, adapter, train_dataset=source)
        metrics["run"]["zero_shot"] = not spec.trained  # prompting: nothing learnt from the source
        atomic_write_json(tmp / METRICS, metrics)
    LOGGER.info("cross-domain %s %s -> %s/%s: AUROC %.3f, parse failures %d/%d", method, source, target, task,
                metrics["auroc"]["mean"], metrics["parse_failures"], metrics["n"])


def run(source: str, target: str, task: str, method: str, params_path: str | Path = "params.yaml",
        cohort_root: str | Path = COHORTS, out_root: str | Path = CROSS_DOMAIN,
        model_root: str | Path | None = None, llm_config=None, llm_root: str | Path = LLM, *,
        methods: Methods) -> Path:
    """Stage ``cross_domain*@...``: ``method`` trained on ``source`` tested on ``target``; returns its folder."""
    params = load_params(params_path)
    config = load_cross_domain_config(params, params_path)
    spec = resolve(method, params, methods, str(params_path))
    if model_root is not None and spec.root is not None:
        spec = dataclasses.replace(spec, root=Path(model_root))
    if {"source": source, "target": target, "task": task} not in config.pairs:
        LOGGER.warning("cross-domain: (%s -> %s, %s) is not among %s.pairs; running it anyway", source, target, task,
                       SECTION)
    source_cohort, target_cohort = _load_pair(source, target, task, cohort_root)
    reported = spec.llm_method.reported_key if spec.kind == "llm" else method  # base_policy_vanilla -> vanilla
    descriptor = MethodDescriptor(dataset=target, task=task, method=reported, family=spec.family,
                                  train_dataset=source)
    out = cross_domain_dir(source, target, method, task, out_root)
    if spec.kind == "dl":
        _run_dl(source, target, task, method, spec, config, (source_cohort, target_cohort), descriptor, out,
                params_path, methods)
    else:
        _run_llm(source, target, task, method, spec, target_cohort, descriptor, out, params_path, llm_config,
                 llm_root, methods)
    return out


def register(subparsers: argparse._SubParsersAction, methods: Methods) -> None:
    """Add ``eagrl cross-domain`` (it runs ``methods``)."""
    parser = stage_parser(subparsers, "cross-domain",
                          "One method trained on SOURCE, tested on TARGET (DVC stages cross_domain*).",
                          __doc__, params_epilog("cross_domain", CrossDomainConfig))
    parser.add_argument("source", help="Data set the method was trained on.")
    parser.add_argument("target", help="Data set it is tested on.")
    parser.add_argument("task", help="A task of both data sets (mortality).")
    parser.add_argument("method", help="A DL model (expert/hybrid) or an LLM method (vanilla, think_answer, qd, "
                                       "label_sft, wo_stage2, an RL variant).")
    add_cohorts(parser)
    parser.add_argument("--out", default=str(CROSS_DOMAIN), help="Folder that receives <source>_to_<target>/<method>/<task>/.")
    parser.add_argument("--models", default=None, help="Override the method's checkpoint/adapter root.")
    parser.set_defaults(handler=lambda a: run(a.source, a.target, a.task, a.method, a.params, a.cohorts, a.out,
                                              a.models, methods=methods))
