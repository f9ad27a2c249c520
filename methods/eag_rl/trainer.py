"""EAG-RL stage 2's trainer: TRL's ``GRPOTrainer`` (pinned: trl==1.16.0) with ε(τ) and dynamic sampling.

What is overridden, and why
---------------------------
:class:`EAGRLTrainer` subclasses ``trl.GRPOTrainer`` and overrides three methods of the pinned version;
TRL itself is not forked or patched.

* ``_generate_and_score_completions(inputs)`` — calls ``super()`` (generation, rewards, group-relative
  advantages, old / reference log-probabilities, exactly as TRL does), then

  1. **dynamic sampling** (DAPO; only when configured): groups whose rewards do not vary carry no
     advantage; they are dropped and replaced by groups of freshly drawn patients, generated and
     scored by further ``super()`` calls (see *Dynamic sampling* below);
  2. **ε(τ)** (only when the adaptive clip is configured, or span entropies are measured): one extra
     no-grad forward of the current policy — the policy that sampled the batch, i.e. the "old" policy
     of the surrogate — gives the per-token entropies of every completion
     (``_get_per_token_logps_and_entropies(..., compute_entropy=True)``, TRL's own helper, so the same
     temperature-scaled distribution the tokens were sampled from). The tokens of each completion's
     ``<Important Features>`` span are found from the decoded text and per-token character offsets
     (:func:`methods.eag_rl.spans.span_token_mask`), and :func:`methods.eag_rl.clipping.adaptive_epsilon` turns the span
     mean entropies into ``inputs["epsilon_high"]``, a ``(B,)`` tensor. Groups of ``num_generations``
     are contiguous at this point (TRL shuffles only afterwards, in ``_prepare_inputs``), which is what
     the ``group`` normalisation scope relies on. Extra ``(B,)`` tensors survive TRL's
     ``shuffle_sequence_dict`` and ``split_tensor_dict`` (they index every tensor with ndim ≥ 1 by row).

* ``_compute_loss(model, inputs)`` — when ``inputs`` carries ``epsilon_high``, sets
  ``self.epsilon_high`` to that tensor unsqueezed to ``(B, 1)`` for the duration of
  ``super()._compute_loss`` and restores the scalar afterwards. TRL computes
  ``torch.clamp(coef_1, 1 - self.epsilon_low, 1 + self.epsilon_high)`` and the clip-ratio metrics
  ``coef_1 > 1 + self.epsilon_high``; both broadcast a ``(B, 1)`` bound over the tokens of each row.
  One detail of torch forces a second, value-preserving change: ``torch.clamp`` refuses a Python
  number for one bound and a tensor for the other, so ``self.epsilon_low`` is also set (temporarily)
  to a 0-dim float32 tensor of the same value. With ε(τ) ≡ the scalar the loss is TRL's own, bit for
  bit (tested).

* ``_calculate_rewards(...)`` — calls ``super()`` and keeps the ``(B, n_funcs)`` reward matrix, which
  dynamic sampling needs (TRL returns only advantages).

When does the clip matter at all? With TRL's defaults (``num_iterations = 1`` and
``steps_per_generation == gradient_accumulation_steps``) every batch is used for exactly one optimiser
step, the ratio π/π_old is identically 1 and *no* clip bound — ε(τ) included — changes anything. The
stage therefore trains with ``num_iterations ≥ 2`` (μ of GRPO): each generation batch serves μ optimiser
steps, and from the second one on the ratio moves and the clip bounds bite.

Dynamic sampling (DAPO)
-----------------------
TRL 1.16 has no dynamic sampling, so it is implemented here, after ``super()`` has scored a batch: a group
is kept when its rewards vary (``max − min > tolerance``). While fewer groups than the batch needs are
kept, ``target`` new patients are drawn (seeded, without replacement within a round) from the training
set, each repeated ``num_generations`` times, and generated + scored by another ``super()`` call, up to
``max_rounds`` calls in all. Advantages are group-relative, so groups from different rounds can be mixed
(with ``scale_rewards = 'batch'`` the std of each round's own batch is used). If the batch is still short
after ``max_rounds``, it is filled with zero-variance groups (advantage 0: they add only the KL term and
count in the token normaliser) — a documented departure from DAPO, which keeps sampling without bound.
Batches of different rounds are merged by re-padding prompt-aligned tensors on the left and
completion-aligned ones on the right (:func:`methods.eag_rl.batches.concat_batches`). Every ``super()`` call
logs its own reward statistics, so the logged ``reward`` averages over all rounds, dropped groups included.

Several processes, and vLLM
---------------------------
Under ``accelerate launch`` (``launch.processes`` > 1) each process generates and scores its own slice of the
batch; TRL gathers the rewards of all processes to normalise advantages and keeps the process's slice. The
``(B, n_funcs)`` matrix kept here is sliced the same way, so ε(τ), dynamic sampling and the trajectory
records see the rows of this process only. A local generation batch is ``prompts_per_generation ×
num_generations`` rows, whole groups, so ``group``-scoped ε(τ) never spans processes (``batch`` scope is the
process's batch). Dynamic sampling runs as many rounds on every process as the process that needs the most
(rounds are collectives), and each process draws its own new patients.

With ``use_vllm`` (``eag_rl.rl.train``) TRL generates through vLLM inside ``super()._generate_and_score_completions``
(weights synced to vLLM with the LoRA adapter merged, TRL's own code); nothing overridden here generates, so ε(τ),
dynamic sampling and the loss apply unchanged. TRL then adds ``sampling_per_token_logps`` and
``importance_sampling_ratio`` (its correction for vLLM's sampling numerics) to the batch;
:func:`methods.eag_rl.batches.concat_batches` re-pads both. Not exercised on CPU (vLLM needs CUDA): ``benchmarks/gpu_check.sh`` runs it on a GPU.

Logged metrics (trainer logs, and the ``curves.csv`` of the stage)
------------------------------------------------------------------
``eps_tau/mean|std|min|max`` (ε(τ) of the batch), ``span_entropy/mean`` (mean over trajectories with a
span), ``span_entropy/found`` (share of trajectories with a non-empty ``<Important Features>`` span),
``reward_parts/{loglik,margin,attention,parsed,total}`` (from the reward adapter),
``dynamic_sampling/{kept_groups,rounds,filled_zero_variance}``, plus TRL's own ``reward``, ``kl``,
``entropy``, ``clip_ratio/*``, ``completions/*``, ``step_time`` (the trainer's log only: the stage leaves
timing columns out of ``curves.csv``, :func:`methods.eag_rl.curves.is_timing`).

Trajectory records (``trajectory_records``, the ``epsilon.csv`` of the stage)
------------------------------------------------------------------------------
One row per trained trajectory of every training generation batch, for every variant (columns
:data:`TRAJECTORY_COLUMNS`): the step and generation round it was generated at, its group (one patient's
``num_generations`` completions), the patient ``id`` (the dataset column; empty without one), the total
reward, R_att (``attention``) and whether the answer parsed (from a reward function that keeps its last
:class:`~methods.eag_rl.rewards.RewardParts` as ``last_parts``, as
:class:`~methods.eag_rl.reward_adapter.CompositeReward` does; NaN otherwise), the advantage, and — only where span entropies are measured (ε(τ) or
``measure_span_entropy``; NaN otherwise) — the span entropy, span length and ε(τ). With dynamic sampling
the rows are those of the merged batch that was trained on, each keeping its own patient and parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

from methods.eag_rl.batches import concat_batches, select_rows, varying_groups
from methods.eag_rl.clipping import adaptive_epsilon, span_mean_entropy
from methods.eag_rl.spans import span_token_mask
from methods.llm.fused_head import fit_logprob_chunk

# Columns of the trajectory records (epsilon.csv), in order.
TRAJECTORY_COLUMNS = ("step", "round", "group", "id", "reward", "attention", "parsed", "advantage", "span_entropy",
                      "span_tokens", "epsilon_high")

# Loss types whose surrogate clips the ratio to [1 - ε_low, 1 + ε_high] (where ε(τ) has a meaning).
CLAMP_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo")


@dataclass(frozen=True)
class AdaptiveClip:
    """ε(τ) settings: bounds and normalisation scope (see :mod:`methods.eag_rl.clipping`)."""

    eps_min: float = 0.2
    eps_max: float = 0.4
    scope: Literal["group", "batch"] = "group"


@dataclass(frozen=True)
class DynamicSampling:
    """DAPO dynamic sampling: rounds of generation at most, and what counts as "rewards vary"."""

    max_rounds: int = 3
    tolerance: float = 1e-6
    seed: int = 42


class EAGRLTrainer(GRPOTrainer):
    """``GRPOTrainer`` with the trajectory-specific upper clip ε(τ) and DAPO dynamic sampling.

    ``adaptive_clip`` (or ``None`` for TRL's scalar bounds), ``dynamic_sampling`` (or ``None``), and
    ``measure_span_entropy`` (log span entropies even without ε(τ); costs the extra forward) are the
    only additions to ``GRPOTrainer``'s arguments. See the module docstring for the overridden methods.
    """

    def __init__(self, *args, adaptive_clip: AdaptiveClip | None = None,
                 dynamic_sampling: DynamicSampling | None = None, measure_span_entropy: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        fit_logprob_chunk(self.model.get_output_embeddings().weight.shape[0])
        if adaptive_clip is not None and self.loss_type not in CLAMP_LOSS_TYPES:
            raise ValueError(f"the adaptive clip ε(τ) needs a clipped-ratio loss {CLAMP_LOSS_TYPES}, "
                             f"got loss_type='{self.loss_type}'")
        if adaptive_clip is not None and not adaptive_clip.eps_min <= adaptive_clip.eps_max:
            raise ValueError(f"eps_min ({adaptive_clip.eps_min}) must not exceed eps_max ({adaptive_clip.eps_max})")
        self.adaptive_clip = adaptive_clip
        self.dynamic_sampling = dynamic_sampling
        self.measure_span_entropy = measure_span_entropy or adaptive_clip is not None
        self._last_rewards_per_func: torch.Tensor | None = None
        self._last_trajectories: list[dict[str, Any]] = []
        self._generation_round = 0
        self.trajectory_records: list[dict[str, Any]] = []  # one row per trained trajectory (epsilon.csv)

    # -- rewards -------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        # TRL gathers the rewards of every process (advantages are group-relative over the whole batch); keep this
        # process's rows, the ones its generation batch holds (TRL slices its advantages the same way).
        rank, n = self.accelerator.process_index, len(prompts)
        self._last_rewards_per_func = rewards_per_func[rank * n:(rank + 1) * n].detach().clone()
        self._last_trajectories = self._trajectory_fields(inputs)
        return rewards_per_func

    def _trajectory_fields(self, inputs) -> list[dict[str, Any]]:
        """Per completion of the batch just scored: patient ``id``, ``attention`` (R_att) and ``parsed``.

        R_att and the parse flag come from the first reward function whose ``last_parts`` covers the batch
        (:class:`~methods.eag_rl.reward_adapter.CompositeReward`); without one they are NaN, never a made-up value.
        """
        parts = next((f.last_parts for f in self.reward_funcs
                      if len(getattr(f, "last_parts", None) or ()) == len(inputs)), None)
        return [{"id": row.get("id"),
                 "attention": float(parts[i].attention) if parts else math.nan,
                 "parsed": float(parts[i].parsed) if parts else math.nan} for i, row in enumerate(inputs)]

    def _last_rewards(self) -> torch.Tensor:
        """(B,) weighted reward of the last scored batch (NaN where every function returned None)."""
        per_func = self._last_rewards_per_func
        weights = self.reward_weights.to(per_func.device).unsqueeze(0)
        rewards = (per_func * weights).nansum(dim=1)
        rewards[torch.isnan(per_func).all(dim=1)] = torch.nan
        return rewards

    # -- generation ------------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        rewards, trajectories = self._last_rewards(), self._last_trajectories
        if mode == "train" and self.dynamic_sampling is not None:
            output, rewards, trajectories = self._dynamic_sampling(inputs, output, rewards, trajectories)
        if mode == "train":
            measured = self._attach_epsilon(output) if self.measure_span_entropy else None
            self._record_trajectories(output, rewards, trajectories, measured)
        self._generation_round += 1
        return output

    def _draw_groups(self, n_prompts: int, round_index: int) -> list[dict[str, Any]]:
        """``n_prompts`` distinct training rows (seeded), each repeated ``num_generations`` times."""
        dataset = self.train_dataset
        generator = torch.Generator().manual_seed(  # each process draws its own patients
            self.dynamic_sampling.seed + 100_003 * self._generation_round + round_index
            + 7_919 * self.accelerator.process_index)
        order = torch.randperm(len(dataset), generator=generator)[: min(n_prompts, len(dataset))]
        rows = [dataset[int(i)] for i in order]
        return [dict(row) for row in rows for _ in range(self.num_generations)]

    def _dynamic_sampling(self, inputs, output, rewards, trajectories):
        """Keep groups whose rewards vary; top up with groups of new patients (see module docstring).

        Returns the merged batch, its rewards and its trajectory fields (row-aligned).
        """
        settings, group = self.dynamic_sampling, self.num_generations
        target = rewards.numel() // group
        kept, kept_rewards, spare, spare_rewards = [], [], [], []
        kept_fields, spare_fields = [], []
        pick = lambda fields, rows: [fields[i] for i in rows.tolist()]  # noqa: E731
        n_kept, rounds = 0, 1
        while True:
            varying = varying_groups(rewards, group, settings.tolerance)
            rows_of = lambda groups: (groups.nonzero().flatten().unsqueeze(1) * group  # noqa: E731
                                      + torch.arange(group)).flatten()
            take = varying.nonzero().flatten()[: max(target - n_kept, 0)]
            if take.numel():
                chosen = torch.zeros_like(varying)
                chosen[take] = True
                kept.append(select_rows(output, rows_of(chosen)))
                kept_rewards.append(rewards[rows_of(chosen)])
                kept_fields.append(pick(trajectories, rows_of(chosen)))
                n_kept += take.numel()
            if (~varying).any():
                spare.append(select_rows(output, rows_of(~varying)))
                spare_rewards.append(rewards[rows_of(~varying)])
                spare_fields.append(pick(trajectories, rows_of(~varying)))
            if not self._any_process_short(n_kept < target) or rounds >= settings.max_rounds:
                break
            output = super()._generate_and_score_completions(self._draw_groups(target, rounds))
            rewards, trajectories = self._last_rewards(), self._last_trajectories
            rounds += 1
        filled = 0
        for batch, batch_rewards, fields in zip(spare, spare_rewards, spare_fields, strict=True):
            if n_kept + filled >= target:
                break
            n = min(target - n_kept - filled, batch_rewards.numel() // group)
            rows = torch.arange(n * group)
            kept.append(select_rows(batch, rows))
            kept_rewards.append(batch_rewards[rows])
            kept_fields.append(pick(fields, rows))
            filled += n
        merged = concat_batches(kept, self._tokenizer.pad_token_id)
        self._metrics["train"]["dynamic_sampling/kept_groups"].append(float(n_kept))
        self._metrics["train"]["dynamic_sampling/rounds"].append(float(rounds))
        self._metrics["train"]["dynamic_sampling/filled_zero_variance"].append(float(filled))
        return merged, torch.cat(kept_rewards), [row for fields in kept_fields for row in fields]

    def _any_process_short(self, short: bool) -> bool:
        """Whether any process still needs groups. Each round's generation and scoring are collectives (TRL gathers
        rewards across processes; vLLM server mode gathers prompts), so every process runs as many rounds as the
        process that needs the most; a process already full draws and discards. One process: ``short`` itself."""
        if self.accelerator.num_processes == 1:
            return short
        flag = torch.tensor([float(short)], device=self.accelerator.device)
        return bool(self.accelerator.gather(flag).max().item() > 0)

    def span_entropies(self, output: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-token entropies ``(B, T)``, span mask ``(B, T)``) of a scored batch under the current policy."""
        prompt_ids, prompt_mask = output["prompt_ids"], output["prompt_mask"]
        completion_ids, completion_mask = output["completion_ids"], output["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            _, entropies, _ = self._get_per_token_logps_and_entropies(
                self.model, input_ids, attention_mask, completion_ids.size(1),
                batch_size=self.args.per_device_train_batch_size, compute_entropy=True)
        span = span_token_mask(self._tokenizer, completion_ids.cpu(), completion_mask.cpu()).to(entropies.device)
        return entropies.float() * completion_mask, span * completion_mask

    def _attach_epsilon(self, output: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Log span entropies (and set ``output["epsilon_high"]`` under ε(τ)); returns (H, span mask, ε or None)."""
        entropies, span = self.span_entropies(output)
        h = span_mean_entropy(entropies, span)
        found = ~torch.isnan(h)
        metrics = self._metrics["train"]
        metrics["span_entropy/found"].append(found.float().mean().item())
        metrics["span_entropy/mean"].append(h[found].mean().item() if found.any() else float("nan"))
        eps = None
        if self.adaptive_clip is not None:
            clip = self.adaptive_clip
            eps = adaptive_epsilon(entropies, span, self.num_generations, clip.eps_min, clip.eps_max, clip.scope)
            output["epsilon_high"] = eps.to(output["advantages"].device)
            metrics["eps_tau/mean"].append(eps.mean().item())
            metrics["eps_tau/std"].append(eps.std().item() if eps.numel() > 1 else 0.0)
            metrics["eps_tau/min"].append(eps.min().item())
            metrics["eps_tau/max"].append(eps.max().item())
        return h, span, eps

    def _record_trajectories(self, output: dict[str, Any], rewards: torch.Tensor,
                             trajectories: list[dict[str, Any]],
                             measured: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None) -> None:
        """Append one :data:`TRAJECTORY_COLUMNS` row per trajectory of the batch (module docstring)."""
        step = int(self.state.global_step)
        advantages = output["advantages"].detach().float().cpu()
        h, span, eps = measured if measured is not None else (None, None, None)
        nan = math.nan
        for row in range(advantages.numel()):
            fields = trajectories[row] if row < len(trajectories) else {"id": None, "attention": nan, "parsed": nan}
            self.trajectory_records.append({
                "step": step, "round": self._generation_round, "group": row // self.num_generations,
                "id": fields["id"], "reward": float(rewards[row]), "attention": fields["attention"],
                "parsed": fields["parsed"], "advantage": float(advantages[row]),
                "span_entropy": float(h[row]) if h is not None else nan,
                "span_tokens": int(span[row].sum().item()) if span is not None else nan,
                "epsilon_high": float(eps[row]) if eps is not None else float(self.epsilon_high)})

    # -- loss --------------------------------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        eps = inputs.get("epsilon_high")
        if eps is None:
            return super()._compute_loss(model, inputs)
        low, high = self.epsilon_low, self.epsilon_high
        device = inputs["completion_ids"].device
        # torch.clamp takes both bounds as numbers or both as tensors: make the lower one a tensor too.
        self.epsilon_low = torch.tensor(low, dtype=torch.float32, device=device)
        self.epsilon_high = eps.to(device=device, dtype=torch.float32).unsqueeze(1)
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self.epsilon_low, self.epsilon_high = low, high
