"""Stage 1 of EAG-RL: expert-guided Monte Carlo Tree Search over Question-Decomposition trajectories.

A trajectory is an ordered list of (subquestion, answer) steps that ends with a *final* step holding the
final subquestion, the important features C and the final probability ŷ. The search, per patient:

* **node** — a partial trajectory (the root is the empty one); **action** — append one step.
* **selection** — from the root, follow the child with the highest UCT score
  ``Q/N + c·sqrt(ln N_parent / N_child)`` (unvisited children first) down to a leaf.
* **expansion** — the proposer samples ``branching`` candidate steps for the leaf in one batched call
  (for every patient of the batch at once: one generate for all children of all selected leaves). At
  depth ``max_depth − 1`` only final steps are asked for, so every path terminates.
* **simulation** — one step, scored at once: a final step gets the composite reward R of
  :mod:`methods.eag_rl.rewards`; an intermediate step gets the *local usefulness reward* (below).
* **back-propagation** — the child's value is added to every node on its path (N += 1, W += value).

After ``iterations`` rounds the complete trajectories (terminal nodes) are ranked by R and the top
``keep_top_k`` are kept. The quality filter and the class-balanced patient sampling that turn them into
the SFT set live in :mod:`methods.eag_rl.distill`.

Local usefulness reward (``local_reward``)
-----------------------------------------
``expert_alignment`` (default): the share of the features a step names that are among the expert's
top-k for this patient, times ``local_weight`` — a step that examines what the expert found salient is
useful; a step that names no feature scores 0. ``none``: intermediate steps score 0 and only final
answers carry value. (The RAP-style alternative — the LLM's own yes/no usefulness probability — needs a
scoring call per step and is not implemented yet.)

Batching and resumption
-----------------------
Patients are processed in fixed chunks of ``chunk_size`` in a fixed order; before a chunk starts the
proposer is re-seeded with ``seed + chunk index``. Each finished chunk is written atomically to
``<out>/chunks/<index>.jsonl``, so an interrupted run resumes at the first missing chunk and produces
exactly the trajectories an uninterrupted run would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from tqdm.auto import tqdm

from benchmark.config import option
from benchmark.runtime import atomic_write_text
from methods.eag_rl.rewards import RewardConfig, canonical_features, composite_reward, feature_key


@dataclass
class MCTSConfig:
    """Search settings (params.yaml section ``eag_rl.mcts``)."""

    iterations: int = option(6, minimum=1, help="Selection-expansion-backpropagation rounds per patient.")
    branching: int = option(5, minimum=1, help="Candidate steps sampled per expansion (children per node).")
    max_depth: int = option(2, minimum=1, help="Steps per trajectory at most, the final step included.")
    uct_c: float = option(1.0, help="Exploration constant c of UCT.")
    keep_top_k: int = option(2, help="Complete trajectories kept per patient, by reward.")
    local_reward: Literal["expert_alignment", "none"] = option(
        "expert_alignment", help="Reward of intermediate steps: overlap of the features they name with the expert top-k, or none.")
    local_weight: float = option(0.5, help="Scale of the local usefulness reward relative to the terminal reward.")
    chunk_size: int = option(32, help="Patients searched together (one batched generate per round); also the resume unit.")
    seed: int = option(42, help="Seed of the proposer's sampling (chunk i uses seed + i).")


@dataclass(frozen=True)
class Step:
    """One action: an intermediate (subquestion, answer) pair, or the final step."""

    subquestion: str
    answer: str = ""
    final: bool = False
    features: tuple[str, ...] = ()
    probability: float | None = None


@dataclass
class PatientTask:
    """What the search needs to know about one patient."""

    id: str
    prompt: str
    label: int
    expert_top_k: list[str]
    vocabulary: list[str]


@dataclass(frozen=True)
class ExpansionRequest:
    """Ask the proposer for ``n`` next steps after ``steps`` (final steps only when ``final_only``)."""

    prompt: str
    steps: tuple[Step, ...]
    n: int
    final_only: bool


class Proposer(Protocol):
    """Samples candidate steps: the backbone itself by default, or a named teacher model."""

    def seed(self, seed: int) -> None: ...

    def propose(self, requests: Sequence[ExpansionRequest]) -> list[list[Step]]: ...


@dataclass
class Node:
    """A partial trajectory in the tree with its visit count N and value sum W."""

    step: Step | None = None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0
    reward: float = 0.0  # immediate reward of this node's step (R for final steps)
    depth: int = 0

    @property
    def terminal(self) -> bool:
        return self.step is not None and self.step.final

    @property
    def mean_value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def path(self) -> tuple[Step, ...]:
        steps, node = [], self
        while node is not None and node.step is not None:
            steps.append(node.step)
            node = node.parent
        return tuple(reversed(steps))


def uct_score(child: Node, parent_visits: int, c: float) -> float:
    """UCT: mean value plus the exploration bonus; unvisited children come first (infinite score)."""
    if child.visits == 0:
        return math.inf
    return child.mean_value + c * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)


def select_leaf(root: Node, c: float) -> Node:
    """Follow the highest-UCT child (first on ties) from the root to a leaf or a terminal node."""
    node = root
    while node.children and not node.terminal:
        node = max(node.children, key=lambda child: uct_score(child, node.visits, c))
    return node


def backpropagate(node: Node, value: float) -> None:
    """Add ``value`` to W and 1 to N of ``node`` and of every ancestor."""
    while node is not None:
        node.visits += 1
        node.value_sum += value
        node = node.parent


def named_features(text: str, vocabulary: Sequence[str]) -> set[str]:
    """Cohort features whose (normalised) name occurs in ``text``."""
    haystack = feature_key(text)
    return {name for name in vocabulary if feature_key(name) and feature_key(name) in haystack}


def local_usefulness(step: Step, task: PatientTask, config: MCTSConfig) -> float:
    """Reward of an intermediate step (see the module docstring)."""
    if config.local_reward == "none":
        return 0.0
    named = named_features(f"{step.subquestion} {step.answer}", task.vocabulary)
    if not named:
        return 0.0
    expert = canonical_features(task.expert_top_k, task.vocabulary)
    return config.local_weight * len(named & expert) / len(named)


def step_reward(step: Step, task: PatientTask, config: MCTSConfig, reward: RewardConfig) -> float:
    """Composite R for a final step, local usefulness for an intermediate one."""
    if step.final:
        return composite_reward(step.probability, step.features, task.label, task.expert_top_k,
                                task.vocabulary, reward).total
    return local_usefulness(step, task, config)


def _terminals(root: Node) -> list[Node]:
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.terminal:
            out.append(node)
        stack.extend(node.children)
    return out


def _tree_size(root: Node) -> int:
    count, stack = 0, [root]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.children)
    return count


def search_chunk(tasks: Sequence[PatientTask], proposer: Proposer, config: MCTSConfig,
                 reward: RewardConfig) -> list[dict]:
    """Run the search for a chunk of patients in lockstep; one result record per patient."""
    roots = [Node() for _ in tasks]
    for _ in range(config.iterations):
        leaves = [select_leaf(root, config.uct_c) for root in roots]
        requests, expanding = [], []
        for i, leaf in enumerate(leaves):
            if leaf.terminal:  # re-visit a finished trajectory: back up its reward again
                backpropagate(leaf, leaf.reward)
                continue
            requests.append(ExpansionRequest(tasks[i].prompt, leaf.path(), config.branching,
                                             final_only=leaf.depth >= config.max_depth - 1))
            expanding.append(i)
        if not requests:
            continue
        proposals = proposer.propose(requests)
        for i, candidates in zip(expanding, proposals, strict=True):
            leaf = leaves[i]
            for step in candidates:
                child = Node(step=step, parent=leaf, depth=leaf.depth + 1)
                child.reward = step_reward(step, tasks[i], config, reward)
                leaf.children.append(child)
                backpropagate(child, child.reward)
    records = []
    for task, root in zip(tasks, roots, strict=True):
        finished = sorted(_terminals(root), key=lambda node: node.reward, reverse=True)
        kept, seen = [], set()
        for node in finished:
            key = node.path()
            if key in seen:
                continue
            seen.add(key)
            final = node.step
            parts = composite_reward(final.probability, final.features, task.label, task.expert_top_k,
                                     task.vocabulary, reward)
            kept.append({"steps": [asdict(step) for step in key], "reward": parts.total,
                         "loglik": parts.loglik, "margin": parts.margin, "attention": parts.attention,
                         "parsed": parts.parsed, "probability": final.probability,
                         "features": list(final.features)})
            if len(kept) == config.keep_top_k:
                break
        records.append({"id": task.id, "label": task.label, "expert_top_k": task.expert_top_k,
                        "trajectories": kept,
                        "tree": {"nodes": _tree_size(root), "terminals": len(finished),
                                 "root_visits": root.visits, "root_value": root.mean_value}})
    return records


def _read_chunk(path: Path) -> list[dict] | None:
    """A finished chunk's records, or None when the file is absent or unreadable (then it is redone)."""
    if not path.exists():
        return None
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError:
        return None


def run_search(tasks: Sequence[PatientTask], proposer: Proposer, config: MCTSConfig, reward: RewardConfig,
               out_dir: str | Path, progress: bool = True) -> list[dict]:
    """Search every patient, chunk by chunk, resuming from ``out_dir/chunks`` when it exists."""
    chunk_dir = Path(out_dir) / "chunks"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    n_chunks = math.ceil(len(tasks) / config.chunk_size)
    records: list[dict] = []
    bar = tqdm(total=len(tasks), desc="mcts", unit="patient", disable=not progress)
    for index in range(n_chunks):
        chunk = tasks[index * config.chunk_size:(index + 1) * config.chunk_size]
        path = chunk_dir / f"{index:05d}.jsonl"
        done = _read_chunk(path)
        if done is not None:
            if [r["id"] for r in done] == [t.id for t in chunk]:
                records += done
                bar.update(len(chunk))
                continue
        proposer.seed(config.seed + index)
        result = search_chunk(chunk, proposer, config, reward)
        atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in result))
        records += result
        bar.update(len(chunk))
    bar.close()
    return records
