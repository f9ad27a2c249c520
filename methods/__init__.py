"""Methods compared by the suite: DL experts, the LLM layer, EAG-RL and the baselines.

Each family imports the harness's contracts (:mod:`benchmark`) only, never the app (:mod:`eagrl`); the experts
import no other family (tests/test_layers.py).
"""
