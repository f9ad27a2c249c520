"""EAG-RL: expert-guided MCTS (stage 1), the composite reward, attention-aligned RL (stage 2)."""
