"""Task Derivation for the Knowledge Graph task: AgentBench's training questions (`kg_rl_all.json`, 1,214 items
with gold action sequences), never its evaluation questions.

kg_rl_all.json shares 13 qids with dev.json (and none with std.json), so a source lists the evaluation files in
`exclude` and every item whose qid or question text appears there is dropped. The environment replays each
question against the embedded graph built from the training file (or the source's `sparql_url`); the oracle
teacher plays the gold actions, and filtering keeps answer F1 = 1.
"""
from __future__ import annotations

import random
from typing import Any

from agentlm.envs.base import Task


def question_tasks(source: str, src: Any) -> list[Task]:
    """Items of `src.path` minus those in `src.exclude` files; `src.n` of them (0 = all), shuffled by `src.seed`
    when a subset is taken."""
    from agentlm.envs.kg.env import load_tasks, read_items

    tasks = load_tasks(src.path, "train")
    held = [item for path in (src.get("exclude") or ()) for item in read_items(path)]
    qids = {str(item.get("qid")) for item in held}
    questions = {item["question"].strip().lower() for item in held}
    kept = [t for t in tasks if str(t.data.get("qid")) not in qids
            and t.data["question"].strip().lower() not in questions]
    n = int(src.get("n", 0) or 0)
    if n and n < len(kept):
        kept = sorted(random.Random(src.get("seed", 0)).sample(kept, n), key=lambda t: tasks.index(t))
    return [Task(f"{source}_{i:05d}", "kg", t.data, "train") for i, t in enumerate(kept)]
