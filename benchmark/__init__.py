"""The EAG-RL reproducibility harness: cohorts, serialization, metrics, evaluation and reports.

Everything that is not a method lives here; the methods (experts, LLM layer, EAG-RL, baselines) live in
the sibling package :mod:`methods`, and the app that joins the two in :mod:`eagrl`. This package imports
neither (tests/test_layers.py): what an experiment needs from a method comes in through :mod:`benchmark.protocol`.
"""

__version__ = "0.1.0"
