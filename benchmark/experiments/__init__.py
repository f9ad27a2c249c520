"""The experiments: methods run on shifted test data, each a pipeline stage.

* :mod:`benchmark.experiments.robustness` — every method on perturbed test sets (``robustness-dl``,
  ``robustness-llm``; the perturbations are the contract :mod:`benchmark.perturb`);
* :mod:`benchmark.experiments.cross_domain` — trained on one domain, tested zero-shot on another
  (``cross-domain``).

They drive methods they do not import, through :class:`benchmark.protocol.Methods`; their tables are written by
:mod:`benchmark.reports.shift`.
"""
