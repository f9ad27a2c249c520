import json
import math

import numpy as np
import pytest

from methods.eag_rl.mcts import (
    MCTSConfig,
    Node,
    PatientTask,
    Step,
    backpropagate,
    local_usefulness,
    run_search,
    select_leaf,
    uct_score,
)
from methods.eag_rl.rewards import RewardConfig

VOCAB = ["Heart Rate", "Oxygen saturation", "pH", "Glucose", "Temperature"]


class RandomProposer:
    """A seeded stand-in for the LLM: random subquestions about random features, random finals."""

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.calls = 0
        self.prompts = set()

    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def propose(self, requests):
        self.calls += 1
        out = []
        for request in requests:
            self.prompts.add(request.prompt)
            steps = []
            for _ in range(request.n):
                feature = VOCAB[self.rng.integers(len(VOCAB))]
                if request.final_only or self.rng.random() < 0.3:
                    chosen = tuple(self.rng.choice(VOCAB, size=2, replace=False))
                    steps.append(Step("Final?", final=True, features=chosen,
                                      probability=round(float(self.rng.random()), 2)))
                else:
                    steps.append(Step(f"Is {feature} abnormal?", f"{feature} is high."))
            out.append(steps)
        return out


def tasks(n=10):
    return [PatientTask(id=f"p{i}", prompt=f"record {i}", label=i % 2, expert_top_k=["Heart Rate", "pH"],
                        vocabulary=VOCAB) for i in range(n)]


def test_uct_picks_the_right_child():
    root = Node(visits=10)
    a = Node(parent=root, visits=5, value_sum=4.0)  # mean 0.8
    b = Node(parent=root, visits=5, value_sum=2.0)  # mean 0.4
    root.children = [b, a]
    assert select_leaf(root, c=0.1) is a
    # With a large exploration constant the rarely visited child wins.
    c = Node(parent=root, visits=1, value_sum=0.0)
    root.children = [a, b, c]
    assert select_leaf(root, c=5.0) is c
    assert uct_score(Node(), 10, 1.0) == math.inf
    assert uct_score(a, 10, 1.0) == pytest.approx(0.8 + math.sqrt(math.log(10) / 5))


def test_backpropagation_sums_along_the_path():
    root = Node()
    child = Node(parent=root, depth=1)
    grandchild = Node(parent=child, depth=2)
    backpropagate(grandchild, 0.5)
    backpropagate(child, -1.0)
    assert (root.visits, root.value_sum) == (2, -0.5)
    assert (child.visits, child.value_sum) == (2, -0.5)
    assert (grandchild.visits, grandchild.value_sum) == (1, 0.5)


def test_local_usefulness_follows_the_expert():
    task = tasks(1)[0]
    config = MCTSConfig(local_weight=1.0)
    assert local_usefulness(Step("Is the heart rate high?", "Heart Rate 120"), task, config) == 1.0
    assert local_usefulness(Step("What about glucose and pH?", ""), task, config) == 0.5
    assert local_usefulness(Step("How is the patient?", "Unwell."), task, config) == 0.0
    assert local_usefulness(Step("Is the heart rate high?", ""), task, MCTSConfig(local_reward="none")) == 0.0


def test_search_keeps_best_complete_trajectories(tmp_path):
    config = MCTSConfig(iterations=6, branching=3, max_depth=3, keep_top_k=2, chunk_size=4)
    records = run_search(tasks(), RandomProposer(), config, RewardConfig(), tmp_path, progress=False)
    assert [r["id"] for r in records] == [f"p{i}" for i in range(10)]
    for record in records:
        rewards = [t["reward"] for t in record["trajectories"]]
        assert 1 <= len(rewards) <= 2 and rewards == sorted(rewards, reverse=True)
        for trajectory in record["trajectories"]:
            assert trajectory["steps"][-1]["final"] and len(trajectory["steps"]) <= 3


def test_search_beats_random_final_answers(tmp_path):
    config = MCTSConfig(iterations=8, branching=4, max_depth=2, keep_top_k=1, chunk_size=5)
    records = run_search(tasks(20), RandomProposer(), config, RewardConfig(), tmp_path, progress=False)
    kept = np.mean([r["trajectories"][0]["reward"] for r in records])
    # Random single samples of the same proposer, scored by the same reward:
    from methods.eag_rl.mcts import ExpansionRequest, step_reward
    proposer = RandomProposer()
    proposer.seed(123)
    samples = proposer.propose([ExpansionRequest(t.prompt, (), 1, True) for t in tasks(20)])
    random_reward = np.mean([step_reward(s[0], t, config, RewardConfig()) for s, t in zip(samples, tasks(20), strict=True)])
    assert kept > random_reward + 0.3


def test_resume_gives_the_same_trajectories(tmp_path):
    config = MCTSConfig(iterations=5, branching=2, max_depth=3, chunk_size=3)
    full = run_search(tasks(), RandomProposer(), config, RewardConfig(), tmp_path / "full", progress=False)
    # Interrupted run: only the first two chunks finished, the third was half written.
    partial_dir = tmp_path / "partial"
    run_search(tasks(6), RandomProposer(), config, RewardConfig(), partial_dir, progress=False)
    (partial_dir / "chunks" / "00002.jsonl").write_text('{"id": "p6"')  # torn write of a later chunk
    proposer = RandomProposer()
    resumed = run_search(tasks(), proposer, config, RewardConfig(), partial_dir, progress=False)
    assert json.dumps(resumed, sort_keys=True) == json.dumps(full, sort_keys=True)
    assert proposer.prompts == {f"record {i}" for i in range(6, 10)}  # only chunks 2 and 3 were searched again
