"""Small, real metrics files for the report/claims/regress tests: predictions of chosen quality, scored by
the real evaluator with a few bootstrap resamples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmark.descriptor import MethodDescriptor
from benchmark.evaluate import evaluate, read_predictions, write_predictions
from benchmark.metrics import MetricsConfig
from benchmark.reports.collect import Record
from benchmark.runtime import atomic_write_json

FAST = MetricsConfig(bootstrap_resamples=40, seed=3)


def labels(n: int = 120, seed: int = 0) -> np.ndarray:
    """Fixed labels (about 30 % positive) shared by every fake method, so paired tests apply."""
    return (np.random.default_rng(seed).random(n) < 0.3).astype(int)


def probabilities(quality: float, n: int = 120, seed: int = 1) -> np.ndarray:
    """Predictions whose AUROC grows with ``quality`` (0 = chance)."""
    y = labels(n)
    noise = np.random.default_rng(seed).normal(0, 1, n)
    return 1 / (1 + np.exp(-(quality * (2 * y - 1) + noise)))


def metrics_file(folder: Path, quality: float, descriptor: dict[str, Any] | None = None, seed: int = 1,
                 name: str = "metrics.json", unparsable: int | None = None) -> Path:
    """Write predictions + a metrics JSON (with ``descriptor`` inside when given) into ``folder``.

    ``unparsable`` makes them an LLM's: completions are written and that many first answers are unparsable.
    """
    folder.mkdir(parents=True, exist_ok=True)
    y = labels()
    p = probabilities(quality, y.size, seed)
    completions = None
    if unparsable is not None:
        p[:unparsable] = np.nan
        completions = [f'{{"answer": {value}}}' for value in p]
    predictions = write_predictions(folder / "predictions.csv", [f"P{i}" for i in range(y.size)], y, p,
                                    completions=completions)
    result = evaluate(read_predictions(predictions), FAST)
    result["predictions"] = str(predictions)
    if descriptor is not None:
        result["descriptor"] = descriptor
    return atomic_write_json(folder / name, result)


def record(folder: Path, quality: float, seed: int = 1, unparsable: int | None = None, **fields: Any) -> Record:
    """A collected record (descriptor + real metrics) without going through the collector; ``unparsable``: an
    LLM's, with that many unparsable answers (:func:`metrics_file`)."""
    import json

    path = metrics_file(folder, quality, seed=seed, unparsable=unparsable)
    return Record(MethodDescriptor(**fields), json.loads(path.read_text()), path)
