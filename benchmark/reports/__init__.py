"""The reports: stages that read what the other stages wrote and lay it out as tables and plots under ``results/``.

Nothing here computes a method's score (that is :mod:`benchmark.metrics` / :mod:`benchmark.evaluate`); the tables
are written through :mod:`benchmark.tables`.

* :mod:`benchmark.reports.cohorts` — ``report-cohorts``: counts per data set, task and split, the signal check;
* :mod:`benchmark.reports.collect` — the collector every table of evaluations shares (``report.sources``);
* :mod:`benchmark.reports.main` — ``report-main``: every evaluated method (``results/main.*``);
* :mod:`benchmark.reports.ablations` — ``report-ablations``: EAG-RL against its ablations and RL baselines;
* :mod:`benchmark.reports.shift` — ``report-robustness``, ``report-cross-domain``: the distribution-shift tables;
* :mod:`benchmark.reports.rl_training` — ``report-rl-training``: did the RL runs train;
* :mod:`benchmark.reports.rl_comparison` — ``report-rl-comparison``: EAG-RL against its RL baselines over seeds;
* :mod:`benchmark.reports.paper` — ``verify``: the paper's claims and numbers against these results;
* :mod:`benchmark.reports.summary` — ``report-summary``: one page and the headline metrics;
* :mod:`benchmark.reports.index` — ``report-index``: the index of ``results/`` with its provenance.
"""
