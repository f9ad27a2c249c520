"""Every evaluable method by name: how to load it and run it, for the robustness and cross-domain stages.

A name resolves to a :class:`MethodSpec` of one of two kinds:

* ``dl`` — a model with the expert interface (``predict_proba(cohort)``), loaded by
  :meth:`benchmark.protocol.Methods.load_model` from ``<root>/<dataset>/<model>/<task>/model.pt``. The *groups* of
  such models are data (``robustness.dl_groups`` in params.yaml): each names a checkpoint root, the params
  key that lists its models and a result-table family. The default groups are the experts
  (``models/experts``, ``experts.models``) and the hybrid models (``models/hybrid``, ``hybrid.models``); a
  group whose params key is absent simply has no models yet.
* ``llm`` — a :class:`benchmark.protocol.LLMMethod` and, for trained methods, a LoRA adapter:

  =====================  ==========  ==================================================  =============
  name                   prompt      adapter (:func:`benchmark.paths.adapter_dir`)        family
  =====================  ==========  ==================================================  =============
  vanilla, think_answer  own style   none                                                prompting
  qd                     qd          none                                                prompting
  base_policy_<key>      <key>'s     none; on llm.finetuned's backbone                  prompting
  label_sft              vanilla     ``models/llm/<dataset>/label_sft/<task>/adapter``   finetune
  wo_stage2              qd          ``models/llm/<dataset>/wo_stage2/<task>/adapter``   ablation
  an RL variant          qd          ``models/llm/<dataset>/<variant>/<task>/adapter``   the variant's
  =====================  ==========  ==================================================  =============

  RL variants are the keys of ``eag_rl.rl.variants`` (eag_rl, grpo, dapo, wo_stage1, wo_ratt, wo_eps,
  released_weights by default); the family is the variant's ``family`` (eag_rl / rl / ablation).

A name found in two places is an error (the tables could not tell the rows apart). The methods themselves come
from a :class:`benchmark.protocol.Methods` (``eagrl.registry.METHODS`` in the app): this module names and
places them, it does not import them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmark.config import ConfigError, from_mapping, option, section
from benchmark.descriptor import FAMILIES
from benchmark.paths import EXPERTS, HYBRID, LLM_MODELS, adapter_dir, expert_dir
from benchmark.protocol import Methods
from benchmark.seeds import seed_folders

STAGE1_METHOD = "wo_stage2"  # the stage-1 policy is the paper's "w/o stage 2" ablation
SFT_TRAINED = ("label_sft", STAGE1_METHOD)  # trained LLM methods that are not RL variants
PROMPTING = ("vanilla", "think_answer", "qd")
BASE_POLICY = tuple(f"base_policy_{key}" for key in PROMPTING)  # methods.llm.prompting.BASE_POLICY_METHODS

DEFAULT_DL_GROUPS = [
    {"name": "experts", "root": str(EXPERTS), "models": "experts.models", "family": "expert"},
    {"name": "hybrid", "root": str(HYBRID), "models": "hybrid.models", "family": "hybrid",
     "levels": ["none", "shuffle:1"]},  # hybrid_fusion re-embeds every perturbed record with the LLM
]


@dataclass
class DLGroup:
    """A group of DL-side models that share a checkpoint root (``robustness.dl_groups`` entry)."""

    name: str = option(help="Name of the group (for messages), e.g. 'experts' or 'hybrid'.")
    root: str = option(help="Checkpoint root: a model's checkpoint is <root>/<dataset>/<model>/<task>/model.pt.")
    models: str = option(help="Dotted params key that lists the group's models, e.g. 'experts.models'; absent key = no models.")
    family: str = option("expert", help="Result-table family of the group's models (benchmark/descriptor.py).")
    levels: list[str] | None = option(None, help="Robustness conditions of this group's models; null = robustness.dl.levels (a group whose models are costly per level, such as the hybrids that re-embed every perturbed record with the LLM, can take fewer).")

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"dl_groups: group '{self.name}' has family '{self.family}'; use one of {FAMILIES}")

    def members(self, params: dict[str, Any]) -> list[str]:
        """The models the params list under ``models`` (empty when that key is absent)."""
        try:
            value = section(params, self.models)
        except ConfigError:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"params.yaml: '{self.models}' (models of group '{self.name}') must be a list")
        return [str(v) for v in value]


@dataclass(frozen=True)
class MethodSpec:
    """How to run one method: ``kind`` dl (a checkpoint) or llm (a prompt style and maybe an adapter)."""

    name: str
    kind: Literal["dl", "llm"]
    family: str
    root: Path | None = None  # dl: checkpoint root; llm: adapter root (None = no adapter)
    llm_method: Any = None  # a benchmark.protocol.LLMMethod for kind llm

    def checkpoint(self, dataset: str, task: str) -> Path:
        """The DL checkpoint trained on ``dataset`` for ``task``."""
        if self.kind != "dl" or self.root is None:
            raise ConfigError(f"method '{self.name}' is not a DL model")
        return expert_dir(dataset, self.name, task, self.root) / "model.pt"

    def adapter(self, dataset: str, task: str) -> Path | None:
        """The LoRA adapter trained on ``dataset`` for ``task``, or None for a prompting method."""
        if self.kind != "llm" or self.root is None:
            return None
        return adapter_dir(dataset, self.name, task, self.root)

    def seed_adapters(self, dataset: str, task: str) -> dict[int, Path] | None:
        """Training seed → LoRA adapter of an RL variant trained in several seeds, its first seed first (from the
        ``seeds`` block of the variant's metrics.json, :func:`benchmark.seeds.seed_folders`); None for any other
        method, and for a variant whose metrics.json is not written yet."""
        adapter = self.adapter(dataset, task)
        if adapter is None or not (adapter.parent / "metrics.json").exists():
            return None
        folders = seed_folders(adapter.parent)
        first = [seed for seed, folder in folders.items() if folder == adapter.parent]
        return {seed: folders[seed] / "adapter" for seed in first + [s for s in folders if s not in first]}

    @property
    def trained(self) -> bool:
        """Whether the method learns from the source data set (prompting methods do not)."""
        return self.kind == "dl" or self.root is not None

    @property
    def on_finetuned_backbone(self) -> bool:
        """Whether an LLM method runs on ``llm.finetuned``'s backbone: trained ones and the base policy."""
        return self.kind == "llm" and (self.trained or bool(getattr(self.llm_method, "base_policy", False)))


def dl_groups(params: dict[str, Any], where: str = "params.yaml: robustness.dl_groups") -> list[DLGroup]:
    """The configured DL groups (``robustness.dl_groups``; the experts + hybrid defaults when absent)."""
    entries = (params.get("robustness") or {}).get("dl_groups", DEFAULT_DL_GROUPS)
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: must be a list of {{name, root, models, family}}")
    return [from_mapping(DLGroup, entry, f"{where}[{i}]") for i, entry in enumerate(entries)]


def rl_variants(params: dict[str, Any], methods: Methods, source: str = "params.yaml") -> dict[str, str]:
    """RL variant name → family (``eag_rl.rl.variants`` resolved over ``eag_rl.rl.train``)."""
    return {name: variant.family for name, variant in methods.rl_plan(params, source).variants.items()}


def _llm(name: str, params: dict[str, Any], methods: Methods, source: str) -> MethodSpec | None:
    if name in PROMPTING or name in BASE_POLICY or name == "label_sft":
        method = methods.llm_method(name)
        return MethodSpec(name, "llm", method.family, LLM_MODELS if name == "label_sft" else None, method)
    if name == STAGE1_METHOD:
        method = methods.policy_method(STAGE1_METHOD, "EAG-RL w/o stage 2 (the stage-1 policy)", "ablation")
        return MethodSpec(name, "llm", "ablation", LLM_MODELS, method)
    variants = rl_variants(params, methods, source)
    if name in variants:
        return MethodSpec(name, "llm", variants[name], LLM_MODELS, methods.policy_method(name, name, variants[name]))
    return None


def resolve(name: str, params: dict[str, Any], methods: Methods, source: str = "params.yaml") -> MethodSpec:
    """The :class:`MethodSpec` of ``name`` (see the module docstring); unknown names list the known ones."""
    found: list[MethodSpec] = []
    llm = _llm(name, params, methods, source)
    if llm is not None:
        found.append(llm)
    groups = dl_groups(params)
    for group in groups:
        if name in group.members(params):
            found.append(MethodSpec(name, "dl", group.family, Path(group.root)))
    if len(found) > 1:
        raise ConfigError(f"{source}: method name '{name}' is both {[f'{s.kind}/{s.family}' for s in found]}; "
                          f"rename one of them")
    if not found:
        known = [*PROMPTING, "label_sft", STAGE1_METHOD, *rl_variants(params, methods, source)]
        for group in groups:
            known += group.members(params)
        raise ConfigError(f"{source}: unknown method '{name}'; known methods: {known} (DL groups: "
                          f"{[g.name + ' <- ' + g.models for g in groups]})")
    return found[0]
