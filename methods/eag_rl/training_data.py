"""Stage 2's training set: seeded train patients as rendered QD prompts, with labels and the expert's top-k."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.config import ConfigError
from benchmark.data.cohort import Cohort
from methods.eag_rl.config import SECTION, RLConfig
from methods.llm.config import LLMConfig


def expert_top_k(path: Path, ids: list[str]) -> list[list[str]]:
    """The expert's ``top_k`` of each patient id, in the order of ``ids``; missing patients are an error."""
    from methods.experts.importance import read_importance

    try:
        records = {str(r["id"]): list(r["top_k"]) for r in read_importance(path)}
    except FileNotFoundError as error:
        raise ConfigError(f"{error} (train the expert first: `dvc repro train_expert`, or change "
                          f"{SECTION}.rl.train.expert)") from None
    missing = [i for i in ids if i not in records]
    if missing:
        raise ConfigError(f"{path}: no importance for {len(missing)} training patients (e.g. {missing[:3]}); "
                          f"the expert was trained on another cohort - re-run its stage")
    return [records[i] for i in ids]


def training_rows(cohort: Cohort, task: str, config: RLConfig, tokenizer, llm: LLMConfig,
                  top_k_path: Path) -> list[dict[str, Any]]:
    """One row per training patient: rendered QD prompt, label, the expert's top-k, id."""
    from methods.llm.prompting import rendered_prompts, stratified_indices

    train = cohort.subset("train")
    subset = train.select(stratified_indices(train.label(task), config.n_train, config.seed, config.balance))
    rendered = rendered_prompts(tokenizer, subset, task, "qd", llm.prompt)
    ids = [str(i) for i in subset.ids]
    top_k = expert_top_k(top_k_path, ids)
    labels = subset.label(task)
    return [{"prompt": r.text, "label": int(y), "expert_top_k": k, "id": i}
            for r, y, k, i in zip(rendered, labels, top_k, ids, strict=True)]
