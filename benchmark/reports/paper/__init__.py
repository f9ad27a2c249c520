"""The paper's reported numbers and claims, as data, and their checks against this suite's results.

* ``tables.yaml`` — transcription template of the paper's Tables 1–3 (cells filled only where read);
* ``claims.yaml`` — the claims C1–C5 with the comparisons each one makes;
* :mod:`benchmark.reports.paper.compare` — paper vs reproduced per cell, with verdicts;
* ``external/`` — a peer benchmark's published numbers on the same test splits (ClinicRealm) and how they map
  to our methods; :mod:`benchmark.reports.paper.external` sets them beside ours with a z-score per row;
* :mod:`benchmark.reports.paper.claims` — a verdict per claim (holds / fails / not testable with this profile);
* :mod:`benchmark.reports.paper.verify` — the ``eagrl verify`` stage writing ``results/claims.md``,
  ``results/paper_comparison.*`` and ``results/external_reference.*``.
"""
