"""Methods compared by the suite: DL experts, the LLM layer, EAG-RL and the baselines."""
