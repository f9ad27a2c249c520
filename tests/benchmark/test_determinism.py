"""Same params + seed => the same numbers, bit for bit, on CPU: the premise of `make regress`.

Everything that produces a score is run twice from scratch in the same process — the cohort generator and
preprocessing, a small torch model trained with the stage prologue (`start_stage`: seeds, deterministic
algorithms, fixed threads), and the bootstrap evaluation — and the outputs are compared with exact
equality (not a tolerance).
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.data.synthetic import SyntheticConfig, generate
from benchmark.metrics import MetricsConfig, bootstrap
from benchmark.runtime import start_stage

CONFIG = SyntheticConfig(domain="icu", n_patients=160, n_test=40, seed=11,
                         features=["Heart Rate", "Respiratory rate", "Oxygen saturation", "Glucose"])


def _train(cohort, seed: int, log_dir) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """A tiny GRU classifier trained for a few epochs of shuffled mini-batches with dropout."""
    start_stage("determinism", seed, {"test": True}, threads=2, log_dir=log_dir)
    train, test = cohort.subset("train"), cohort.subset("test")
    x = torch.tensor(train.values, dtype=torch.float32)
    y = torch.tensor(train.label("mortality"), dtype=torch.float32)
    gru = torch.nn.GRU(x.shape[-1], 16, batch_first=True)
    head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
    parameters = [*gru.parameters(), *head.parameters()]
    optimiser = torch.optim.AdamW(parameters, lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(3):
        for batch in torch.randperm(len(x), generator=generator).split(32):
            _, h = gru(x[batch])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(h[-1]).squeeze(-1), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    gru.eval()
    head.eval()
    with torch.no_grad():
        _, h = gru(torch.tensor(test.values, dtype=torch.float32))
        probabilities = torch.sigmoid(head(h[-1]).squeeze(-1)).numpy()
    state = {f"gru.{k}": v.clone() for k, v in gru.state_dict().items()}
    state.update({f"head.{k}": v.clone() for k, v in head.state_dict().items()})
    return state, probabilities


def test_cohort_generation_is_bit_identical():
    a, b = generate(CONFIG, name="a"), generate(CONFIG, name="a")
    for name in ("ids", "split", "labels", "n_visits", "mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("times", "raw", "values", "true_risk"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


def test_training_and_scoring_are_bit_identical(tmp_path):
    cohort = generate(CONFIG, name="a")
    state_a, p_a = _train(cohort, 5, tmp_path)
    state_b, p_b = _train(generate(CONFIG, name="a"), 5, tmp_path)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert np.array_equal(p_a, p_b)
    labels = cohort.subset("test").label("mortality")
    config = MetricsConfig(bootstrap_resamples=50)
    assert bootstrap(labels, p_a, config) == bootstrap(labels, p_b, config)
    # The test can fail: another seed gives other weights.
    state_c, _ = _train(cohort, 6, tmp_path)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)
