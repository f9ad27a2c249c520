"""The EAG-RL reproducibility harness: cohorts, serialization, metrics, evaluation and reports.

Everything that is not a method lives here; the methods (experts, LLM layer, EAG-RL, baselines) live in
the sibling package :mod:`methods`.
"""

__version__ = "0.1.0"
