"""The shared trainer of the neural experts: AdamW, early stopping on validation AUPRC, best weights kept.

Every neural expert (GRU, Transformer, RETAIN, AdaCare, ConCare) is a :class:`TorchExpert`: it only
builds its ``nn.Module`` and, where its importance is not gradient × input, returns the importance from
its forward pass. The loop is the same for all of them:

1. Seed torch with ``train.seed`` *before* the network is built, so weights, dropout masks and batch
   order are a function of the seed (with ``benchmark.runtime.make_deterministic`` the run is
   bit-reproducible on CPU).
2. Each epoch: shuffle the train patients, minimise binary cross-entropy + the model's auxiliary loss
   (ConCare's DeCov) with AdamW and gradient-norm clipping.
3. After each epoch: AUPRC on the validation split (:func:`benchmark.metrics.auprc`, the definition every
   table uses; AUPRC rather than AUROC because the labels are imbalanced, as in the paper group's benchmark). The best epoch's
   weights are kept; training stops after ``patience`` epochs without improvement and the best weights
   are restored.

Network contract: ``network(batch) -> dict`` with ``logit`` (b,) and optionally ``aux_loss`` (a scalar,
already weighted) and ``importance`` (b, d). ``batch`` holds ``values`` (b, T, d) normalised + imputed,
``mask`` (b, T, d) 1 where observed, ``times`` (b, T) days since admission (0 on padding),
``visit_mask`` (b, T) 1 on real visits, ``n_visits`` (b,) and ``static`` (b, s) (standardised age, sex).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from benchmark.config import from_mapping, option
from benchmark.data.cohort import Cohort
from benchmark.metrics import auprc
from benchmark.runtime import LOGGER
from methods.experts.base import AGE_MEAN, AGE_STD, Expert, ExpertError, static_matrix


@dataclass
class TrainConfig:
    """Optimisation settings shared by the neural experts (``experts.train`` in params.yaml)."""

    epochs: int = option(80, minimum=1, help="Most training epochs; early stopping usually ends sooner.")
    batch_size: int = option(32, minimum=1, help="Patients per optimisation step.")
    learning_rate: float = option(1e-3, minimum=0, help="AdamW learning rate.")
    weight_decay: float = option(1e-4, minimum=0, help="AdamW decoupled weight decay.")
    patience: int = option(15, minimum=1, help="Epochs without a better validation AUPRC before training stops.")
    min_delta: float = option(0.0, minimum=0, help="Improvement in validation AUPRC that counts as better.")
    grad_clip: float = option(5.0, minimum=0, help="Clip the gradient norm to this value (0 = no clipping).")
    seed: int = option(42, help="Seed of weights, dropout and batch order.")
    device: str = option("cpu", help="'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when available).")
    eval_batch_size: int = option(1024, minimum=1, help="Patients per forward pass at prediction time.")
    progress: bool = option(True, help="Show a tqdm progress bar over epochs.")


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``; 'auto' picks CUDA when present. An unavailable CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ExpertError(f"experts.train.device is '{name}' but CUDA is not available; use 'cpu' or 'auto'")
    return device


def cohort_tensors(cohort: Cohort, age_mean: float, age_std: float) -> dict[str, torch.Tensor]:
    """The batch dictionary (see the module docstring) for a whole cohort, on the CPU."""
    T = cohort.values.shape[1]
    visit_mask = np.arange(T)[None, :] < cohort.n_visits[:, None]
    times = np.where(visit_mask, np.nan_to_num(cohort.times, nan=0.0), 0.0)
    return {
        "values": torch.as_tensor(np.asarray(cohort.values, dtype=np.float32)),
        "mask": torch.as_tensor(cohort.mask.astype(np.float32)),
        "times": torch.as_tensor(times.astype(np.float32)),
        "visit_mask": torch.as_tensor(visit_mask.astype(np.float32)),
        "n_visits": torch.as_tensor(cohort.n_visits.astype(np.int64)),
        "static": torch.as_tensor(static_matrix(cohort, age_mean, age_std)),
    }


def take(batch: dict[str, torch.Tensor], index: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    """Rows ``index`` of every tensor of ``batch``, moved to ``device``."""
    return {key: value[index].to(device) for key, value in batch.items()}


def last_visit(sequence: torch.Tensor, n_visits: torch.Tensor) -> torch.Tensor:
    """(b, h) the element of ``sequence`` (b, T, h) at each patient's last real visit."""
    index = (n_visits - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, sequence.size(-1))
    return sequence.gather(1, index).squeeze(1)


def batches(n: int, size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    """Index batches over ``n`` patients (shuffled when a generator is given); never a batch of one.

    A one-patient batch is folded into the previous one: ConCare's DeCov loss needs a covariance over
    the batch, and a single example would make it undefined.
    """
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    parts = list(torch.split(order, max(1, size)))
    if len(parts) > 1 and len(parts[-1]) == 1:
        last = parts.pop()
        parts[-1] = torch.cat([parts[-1], last])
    return parts


class TorchExpert(Expert):
    """An expert whose model is a torch ``nn.Module`` trained by the shared loop of this module.

    Subclasses define ``config_class`` (a dataclass with a ``train: TrainConfig`` field) and
    ``network_class`` (built as ``network_class(n_features, n_static, config)``; override
    :meth:`build_network` for other inputs), and set ``importance_source`` to ``"network"`` (the forward pass
    returns ``importance``) or ``"grad_x_input"`` (|gradient of the logit × input| summed over real visits).
    """

    config_class: ClassVar[type]
    network_class: ClassVar[type[nn.Module]]
    importance_source: ClassVar[str] = "network"

    def __init__(self, task: str, config: Any) -> None:
        super().__init__(task, config)
        self.network: nn.Module | None = None
        self.age_mean, self.age_std = AGE_MEAN, AGE_STD

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> Any:
        return from_mapping(cls.config_class, data, f"{cls.name} checkpoint config")

    @property
    def train_config(self) -> TrainConfig:
        return self.config.train

    def build_network(self, n_features: int, n_static: int) -> nn.Module:
        """The untrained network for ``n_features`` dynamic and ``n_static`` static inputs."""
        return self.network_class(n_features, n_static, self.config)

    def tensors(self, cohort: Cohort) -> dict[str, torch.Tensor]:
        """The network's input batch for a whole cohort (:func:`cohort_tensors`).

        Models with inputs beyond the cohort arrays (the hybrids' frozen-LLM embeddings) extend the batch
        here; training, prediction and importance all build their batches through this method.
        """
        return cohort_tensors(cohort, self.age_mean, self.age_std)

    # ------------------------------------------------------------------ training
    def _fit(self, train: Cohort, val: Cohort | None) -> None:
        cfg = self.train_config
        device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        age = np.asarray(train.static[:, 0], dtype=np.float64) if train.static.shape[1] else np.array([])
        if age.size and np.isfinite(age).any() and np.nanstd(age) > 0:
            self.age_mean, self.age_std = float(np.nanmean(age)), float(np.nanstd(age))
        self.network = self.build_network(len(train.features), train.static.shape[1]).to(device)
        data = self.tensors(train)
        labels = torch.as_tensor(train.label(self.task), dtype=torch.float32)
        val_data = self.tensors(val) if val is not None else None
        val_labels = val.label(self.task) if val is not None else None
        optimiser = torch.optim.AdamW(self.network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        generator = torch.Generator().manual_seed(cfg.seed)
        best_score, best_state, best_epoch, waited = -np.inf, None, 0, 0
        self.history = []
        bar = tqdm(range(1, cfg.epochs + 1), desc=f"{self.name}/{self.task}", unit="epoch",
                   disable=not cfg.progress, leave=False)
        for epoch in bar:
            self.network.train()
            total, seen = 0.0, 0
            for index in batches(len(labels), cfg.batch_size, generator):
                batch = take(data, index, device)
                out = self.network(batch)
                loss = loss_fn(out["logit"], labels[index].to(device))
                if out.get("aux_loss") is not None:
                    loss = loss + out["aux_loss"]
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.network.parameters(), cfg.grad_clip)
                optimiser.step()
                total += float(loss.detach()) * len(index)
                seen += len(index)
            record = {"epoch": epoch, "train_loss": total / max(1, seen)}
            if val_data is not None:
                score = float(auprc(val_labels, self._probabilities(val_data)))
                record["val_auprc"] = score
                if score > best_score + cfg.min_delta:
                    best_score, best_epoch, waited = score, epoch, 0
                    best_state = copy.deepcopy(self.network.state_dict())
                else:
                    waited += 1
            self.history.append(record)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}", val_auprc=f"{record.get('val_auprc', float('nan')):.3f}")
            if val_data is not None and waited >= cfg.patience:
                break
        if best_state is not None:
            self.network.load_state_dict(best_state)
        else:
            best_epoch = len(self.history)
        self.network.eval()
        self.summary = {
            "epochs_run": len(self.history), "best_epoch": best_epoch,
            "best_val_auprc": None if best_state is None else best_score,
            "parameters": int(sum(p.numel() for p in self.network.parameters())),
        }

    # ------------------------------------------------------------------ inference
    def _device(self) -> torch.device:
        return next(self.network.parameters()).device

    @torch.no_grad()
    def _probabilities(self, data: dict[str, torch.Tensor]) -> np.ndarray:
        self.network.eval()
        n = len(data["n_visits"])
        out = [torch.sigmoid(self.network(take(data, index, self._device()))["logit"]).cpu()
               for index in batches(n, self.train_config.eval_batch_size, None)]
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def _predict(self, cohort: Cohort) -> np.ndarray:
        return self._probabilities(self.tensors(cohort))

    def _importance(self, cohort: Cohort) -> np.ndarray:
        self.network.eval()
        data = self.tensors(cohort)
        parts = []
        for index in batches(len(cohort), self.train_config.eval_batch_size, None):
            batch = take(data, index, self._device())
            if self.importance_source == "grad_x_input":
                parts.append(gradient_x_input(self.network, batch).cpu())
            else:
                with torch.no_grad():
                    parts.append(self.network(batch)["importance"].cpu())
        return torch.cat(parts).numpy().astype(np.float64)

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        if self.network is None:
            raise ExpertError(f"{self.name}: nothing to save, the expert has not been fitted")
        return {
            "n_features": len(self.features), "n_static": len(self.static_features or []),
            "age_mean": self.age_mean, "age_std": self.age_std,
            "weights": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.age_mean, self.age_std = float(state["age_mean"]), float(state["age_std"])
        self.network = self.build_network(int(state["n_features"]), int(state["n_static"]))
        self.network.load_state_dict(state["weights"])
        try:
            device = resolve_device(self.train_config.device)
        except ExpertError:  # a checkpoint trained on a GPU can still be used on a CPU-only machine
            LOGGER.warning("%s: trained on '%s', which is not available here; predicting on the CPU",
                           self.name, self.train_config.device)
            device = torch.device("cpu")
        self.network.to(device).eval()


def gradient_x_input(network: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(b, d) |∂logit/∂x · x| summed over each patient's real visits.

    The inputs are z-scores, so the implicit baseline of gradient × input is the train mean: a feature at
    its population mean gets no credit, a deranged one gets credit in proportion to how far it is off
    and how steeply the logit responds to it.
    """
    values = batch["values"].detach().clone().requires_grad_(True)
    network.eval()
    with torch.enable_grad():
        logit = network({**batch, "values": values})["logit"]
        (grad,) = torch.autograd.grad(logit.sum(), values)
    attribution = (grad * values).abs() * batch["visit_mask"].unsqueeze(-1)
    return attribution.sum(dim=1).detach()


def with_train(config_class: type, model: dict[str, Any] | None, train: dict[str, Any] | None, where: str) -> Any:
    """Build a model config from its params section, with ``experts.train`` merged under its own ``train``.

    ``experts.<model>.train`` may override single keys of the shared ``experts.train`` block (e.g. a
    smaller learning rate for one model) without repeating the rest.
    """
    model = dict(model or {})
    merged = {**(train or {}), **(model.pop("train", None) or {})}
    config = from_mapping(config_class, model, where)
    return dataclasses.replace(config, train=from_mapping(TrainConfig, merged, f"{where}.train"))
