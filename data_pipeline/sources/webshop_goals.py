"""Task Derivation for WebShop: human goals of an official WebShop data directory, from its training range.

AgentBench evaluates goals 0-199 (std) and 200-279 (dev) of the shuffled human goals; training instructions come
from WebShop's own training goals (index 1500 on) by default, so evaluated goals never become training data.
`src.path` is the data directory (or its product file), optionally with `::START:END` for another range;
`src.n` caps the count (0 = all). The oracle teacher buys each goal's product with its options; filtering keeps
reward 1.
"""
from __future__ import annotations

from typing import Any

from agentlm.envs.base import Task

EVALUATED = range(0, 280)  # AgentBench's std and dev goals


def goal_tasks(source: str, src: Any) -> list[Task]:
    from agentlm.envs.webshop.env import load_tasks

    tasks = load_tasks(src.path, "train")
    evaluated = [t.data["goal_index"] for t in tasks if t.data["goal_index"] in EVALUATED]
    if evaluated and not src.get("allow_evaluated_goals", False):
        raise ValueError(f"sources.{source}.path {src.path!r} takes goals {evaluated[0]}..{evaluated[-1]}, which "
                         "AgentBench evaluates (0-279); use the training range (no ::START:END) or set "
                         "allow_evaluated_goals")
    n = int(src.get("n", 0) or 0)
    return [Task(f"{source}_{i:05d}", "webshop", t.data, "train") for i, t in enumerate(tasks[:n] if n else tasks)]
