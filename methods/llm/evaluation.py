"""Stage ``llm-eval``: evaluate one LLM baseline on every task of one data set.

For each task of the cohort: the evaluation subset (``llm.evaluation``: a seeded, label-stratified subset
of the test split, the same patients for every method), the method's prompts, batched generation,
parsing, then under ``outputs/llm/<dataset>/<method>/<task>/``:

* ``predictions.csv`` — the predictions file of :mod:`benchmark.evaluate` (id, label, probability,
  parsed, completion); unparsable answers have ``parsed=False`` and no probability;
* ``metrics.json`` — :func:`benchmark.evaluate.evaluate` on it (bootstrap CIs, parse-failure rate, and
  under ``"worst_case"`` the same metrics with every unparsable answer scored confidently wrong), plus
  the method and the generation counts (new tokens, finished completions) under ``"run"``. Wall time and
  throughput go to the log only: an output with a timing would change its hash on every run.

Label SFT loads its adapter from ``models/llm/<dataset>/label_sft/<task>/adapter/`` (stage ``label_sft``).
``eagrl report-llm`` collects every ``metrics.json`` into ``results/llm.{md,csv,json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.alignment import ALIGNMENT_FILE, mechanism_block, per_patient_alignment, salient_sets
from benchmark.config import ParamsSource, load_params, to_mapping
from benchmark.data.cohort import Cohort
from benchmark.descriptor import DESCRIPTOR_KEY, STANDARD, MethodDescriptor
from benchmark.evaluate import evaluate, metrics_config, read_predictions, write_predictions
from benchmark.paths import COHORTS, LLM, LLM_MODELS, RESULTS, adapter_dir, cohort_dir, llm_output_dir
from benchmark.runtime import LOGGER, atomic_directory, atomic_write_json, atomic_write_text, start_stage
from benchmark.stage_cli import add_cohorts, add_dataset, add_params, params_epilog, stage_parser
from benchmark.tables import write_table
from methods.llm.config import LLMConfig, check_base_policy, load_llm_config
from methods.llm.generation import generator_for
from methods.llm.prompting import METHODS, Method, evaluation_subset, get_method, rendered_prompts
from methods.llm.sft import label_scores

PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"


def _hf_model(generator, config: LLMConfig, adapter: Path | None):
    """(model, tokenizer) for teacher-forced scoring: the generator's own, or a fresh HF load under vLLM."""
    if getattr(generator, "backend", "") == "hf":
        return generator.model, generator.tokenizer
    from methods.llm.backbone import load_backbone

    return load_backbone(config.backbone, adapter=adapter)


def _answers(generator, rendered: Sequence, method: Method, config: LLMConfig, cohort: Cohort, task: str,
             max_new_tokens: int | None, adapter: Path | None) -> tuple[Any, list, list, np.ndarray, np.ndarray]:
    """The method's completions of the prompts, parsed: (sampling params, completions, answers, probabilities, parsed)."""
    from methods.llm.generation import SamplingParams
    from methods.llm.parsing import parse_all

    if max_new_tokens is None:
        setting = getattr(config.methods, method.key, None) or getattr(config.methods, method.style)
        max_new_tokens = setting.max_new_tokens
    params = SamplingParams.from_config(config.generation, max_new_tokens)
    completions = generator.generate([r.text for r in rendered], params, desc=f"{method.key} {cohort.name}/{task}")
    answers = parse_all([c.text for c in completions], method.answer_format, cohort.feature_names)
    probabilities = np.array([a.probability if a.parsed else np.nan for a in answers], dtype=float)
    parsed = np.array([a.parsed for a in answers], dtype=bool)
    if method.answer_format == "label" and config.label_sft.score != "parsed":
        model, scoring_tokenizer = _hf_model(generator, config, adapter)
        scores = label_scores(model, scoring_tokenizer, [r.text for r in rendered], config.label_sft.score,
                              batch_size=config.generation.batch_size)
        probabilities = np.where(parsed, scores, np.nan)
    return params, completions, answers, probabilities, parsed


def _run_block(cohort: Cohort, task: str, method: Method, config: LLMConfig, params, generator, completions: list,
               answers: list, adapter: Path | None) -> dict[str, Any]:
    """The ``run`` block of metrics.json: what was run and the generation counts (no timings: they go to the log)."""
    return {
        "dataset": cohort.name, "task": task, "method": method.key, "method_name": method.name,
        "split": config.evaluation.split, "max_new_tokens": params.max_new_tokens,
        "backend": getattr(generator, "backend", "?"), "new_tokens": int(sum(c.n_tokens for c in completions)),
        "finished": int(sum(c.finished for c in completions)),
        "features_named": int(sum(bool(a.features) for a in answers)),
        "adapter": str(adapter) if adapter else None, "base_policy": method.base_policy,
    }


def evaluate_task(cohort: Cohort, task: str, method_key: str | Method, config: LLMConfig, generator,
                  out_dir: Path, params: ParamsSource = "params.yaml", adapter: Path | None = None,
                  condition: str = STANDARD, max_new_tokens: int | None = None,
                  train_dataset: str | None = None, expert_top_k: Mapping[str, Sequence[str]] | None = None,
                  **serialize_kwargs) -> dict[str, Any]:
    """Run one method on one task and write its predictions and metrics into ``out_dir``.

    ``method_key`` is a key of :data:`~methods.llm.prompting.METHODS` or a :class:`Method` (for methods
    defined outside this layer: EAG-RL policies, RL baselines, ablations; their descriptor then names
    them). ``max_new_tokens`` defaults to ``llm.methods.<key>``, else to the setting of the method's
    prompt style. ``condition`` names a perturbed test set in the descriptor (e.g. ``"shuffle:0.6"``),
    ``train_dataset`` a cross-domain source, ``expert_top_k`` (patient id → the guiding expert's top-k) adds the
    test-time alignment with the expert to the ``mechanism`` block (:mod:`benchmark.alignment`), and ``serialize_kwargs`` (e.g. ``shuffle_fraction=0.6``)
    go to :func:`benchmark.serialize.serialize_patient`.
    """
    method = get_method(method_key)
    started = time.perf_counter()
    subset = evaluation_subset(cohort, task, config.evaluation)
    labels = subset.label(task)
    tokenizer = generator.tokenizer
    rendered = rendered_prompts(tokenizer, subset, task, method.style, config.prompt, **serialize_kwargs)
    sampling, completions, answers, probabilities, parsed = _answers(generator, rendered, method, config, cohort, task,
                                                                     max_new_tokens, adapter)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(out_dir / PREDICTIONS, subset.ids, labels, probabilities, parsed, [c.text for c in completions])
    metrics = evaluate(read_predictions(out_dir / PREDICTIONS), metrics_config(params))
    metrics["run"] = _run_block(cohort, task, method, config, sampling, generator, completions, answers, adapter)
    truth = salient_sets(subset.salient, subset.feature_names)
    metrics["mechanism"] = mechanism_block([a.features for a in answers], parsed, [c.finished for c in completions],
                                           truth, list(subset.ids), expert_top_k)
    alignment = per_patient_alignment([a.features for a in answers], list(subset.ids), truth, expert_top_k)
    atomic_write_text(out_dir / ALIGNMENT_FILE, alignment.to_csv(index=False))
    metrics[DESCRIPTOR_KEY] = MethodDescriptor(dataset=cohort.name, task=task, method=method.reported_key, family=method.family,
                                               backbone=config.backbone.source, condition=condition,
                                               train_dataset=train_dataset).to_dict()
    atomic_write_json(out_dir / METRICS, metrics)
    stats = getattr(generator, "stats", None)
    LOGGER.info("llm-eval %s %s/%s: n=%d parse failures=%d AUROC %.3f AUPRC %.3f (%.1f s, %.1f tokens/s)", method.key,
                cohort.name, task, metrics["n"], metrics["parse_failures"], metrics["auroc"]["point"],
                metrics["auprc"]["point"], time.perf_counter() - started,
                stats.tokens_per_second if stats else float("nan"))
    return metrics


def run_method(dataset: str, method_key: str, params: ParamsSource = "params.yaml",
               cohort_root: str | Path = COHORTS, out_root: str | Path = LLM,
               adapter_root: str | Path = LLM_MODELS, config: LLMConfig | None = None) -> Path:
    """Stage ``llm_eval@<dataset>-<method>``: every task of the data set; returns the method's folder."""
    params = load_params(params)
    method = get_method(method_key)
    if method.base_policy and config is None:
        check_base_policy(params)
    config = config or load_llm_config(params, finetuned=method.on_finetuned_backbone)
    start_stage(f"llm_eval@{dataset}-{method_key}", config.generation.seed,
                {"dataset": dataset, "method": method_key, "llm": to_mapping(config)}, threads=config.threads)
    cohort = Cohort.load(cohort_dir(dataset, cohort_root))
    out = llm_output_dir(dataset, method_key, root=out_root)
    with atomic_directory(out) as tmp:
        generator = None if method.trained else generator_for(config, None)
        for task in cohort.tasks:
            adapter = adapter_dir(dataset, method_key, task, adapter_root) if method.trained else None
            task_generator = generator_for(config, adapter) if method.trained else generator
            evaluate_task(cohort, task, method_key, config, task_generator, tmp / task, params, adapter)
    return out


# ---------------------------------------------------------------------------------------------- report
REPORT_COLUMNS = ["dataset", "task", "method", "backbone", "n", "positives", "auroc", "auroc_ci", "auprc", "auprc_ci",
                  "parse_failure_rate", "auroc_worst_case"]


def collect(root: str | Path = LLM) -> list[dict[str, Any]]:
    """One row per ``<dataset>/<method>/<task>/metrics.json`` under ``root`` (sorted, paper method names)."""
    order = {key: i for i, key in enumerate(METHODS)}
    rows = []
    for path in sorted(Path(root).glob(f"*/*/*/{METRICS}")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # a hidden folder is the temporary output of a stage that is writing or was killed
        data = json.loads(path.read_text())
        run = data.get("run", {})
        rows.append({
            "dataset": run.get("dataset", path.parts[-4]), "task": run.get("task", path.parts[-2]),
            "method": run.get("method_name", path.parts[-3]), "_order": order.get(run.get("method"), 99),
            "backbone": data.get(DESCRIPTOR_KEY, {}).get("backbone") or "",
            "n": data["n"], "positives": data["positives"],
            "auroc": f"{data['auroc']['mean']:.3f} ± {data['auroc']['std']:.3f}",
            "auroc_ci": f"[{data['auroc']['ci_low']:.3f}, {data['auroc']['ci_high']:.3f}]",
            "auprc": f"{data['auprc']['mean']:.3f} ± {data['auprc']['std']:.3f}",
            "auprc_ci": f"[{data['auprc']['ci_low']:.3f}, {data['auprc']['ci_high']:.3f}]",
            "parse_failure_rate": round(data["parse_failure_rate"], 3),
            "auroc_worst_case": _pm(data.get("worst_case", {}).get("auroc")),
        })
    rows.sort(key=lambda r: (r["dataset"], r["task"], r.pop("_order")))
    return rows


def _pm(entry: dict[str, float] | None) -> str:
    """``mean ± std`` of a metric entry; empty when the file has none (written before the block existed)."""
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}" if entry else ""


def report(root: str | Path = LLM, stem: str | Path = RESULTS / "llm", params: ParamsSource = "params.yaml") -> list[Path]:
    """Write ``results/llm.{md,csv,json}`` from every LLM metrics file."""
    params = load_params(params)
    rows = collect(root)
    if not rows:
        raise FileNotFoundError(f"{root}: no */*/*/{METRICS} found; run the llm_eval stages first")
    config = load_llm_config(params)
    tuned = load_llm_config(params, finetuned=True)
    intro = (f"LLM baselines on the evaluation subset of each data set ({config.evaluation.split} split, "
             f"{config.evaluation.n_patients or 'all'} patients stratified by label, seed {config.evaluation.seed}); "
             f"prompting on `{config.backbone.source}`; fine-tuned methods (Label SFT) and the base policy (prompting "
             f"methods of `llm.base_policy`, untrained) on `{tuned.backbone.source}`, "
             f"{tuned.evaluation.n_patients or 'all'} patients (the `backbone` and `n` columns). Bootstrap mean ± std and 95 % CI; unparsable answers are scored "
             f"by the `metrics.unparsable` rule and counted in parse_failure_rate; auroc_worst_case scores them "
             f"confidently wrong instead (a lower bound). Wall times: `results/runtime.md`.")
    return write_table(rows, stem, "LLM baselines", intro, REPORT_COLUMNS)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eagrl llm-eval`` and ``eagrl report-llm``."""
    parser = stage_parser(subparsers, "llm-eval",
                          "Evaluate one LLM baseline on every task of one data set (DVC stage llm_eval).",
                          __doc__, params_epilog("llm", LLMConfig, " (see methods/llm/config.py)"))
    add_dataset(parser)
    parser.add_argument("method", choices=sorted(METHODS), help="LLM method.")
    add_cohorts(parser)
    parser.add_argument("--out", default=str(LLM), help="Folder that receives <dataset>/<method>/<task>/.")
    parser.add_argument("--adapters", default=str(LLM_MODELS), help="Root of the trained LLM methods (<dataset>/<method>/<task>/adapter).")
    parser.set_defaults(handler=lambda args: run_method(args.dataset, args.method, args.params, args.cohorts,
                                                        args.out, args.adapters))
    rep = stage_parser(subparsers, "report-llm", "Collect LLM metrics into results/llm.{md,csv,json}.", params=False)
    rep.add_argument("--root", default=str(LLM), help="Folder of the llm-eval outputs.")
    rep.add_argument("--out", default="results/llm", help="Stem of the result tables.")
    add_params(rep)
    rep.set_defaults(handler=lambda args: report(args.root, args.out, args.params))
