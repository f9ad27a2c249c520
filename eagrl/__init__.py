"""The app: the ``eagrl`` command and the only package that imports both the harness and the methods.

Three layers, imports in one direction (tests/test_layers.py):

* :mod:`benchmark` — the harness (contracts, experiments, reports); imports nothing from the other two;
* :mod:`methods` — the method families; import the harness's contracts only;
* :mod:`eagrl` — :mod:`eagrl.cli` (one subcommand per pipeline stage), :mod:`eagrl.registry` (what the
  experiments need from methods/, passed in through :mod:`benchmark.protocol`) and :mod:`eagrl.ops` (tools
  that drive ``dvc`` from outside: configure, regress, runtime-report, tjh-tables).
"""
