"""Task Derivation for ALFWorld: games of ALFWorld's train split, played by the expert plan (offline teacher) or
a teacher model, then filtered on success and exported as AgentInstruct rows.

AgentTuning built its ALFWorld data from the train split's instructions (954 -> 336 kept); AgentBench evaluates on
valid_unseen games (std, dev), so this source refuses that split: no evaluation game can leak into training data.
Games are sampled with a seed, the six task types in turn, so a small run covers every type.
"""
from __future__ import annotations

import random
import re
from typing import Any

from agentlm.envs.base import Task

EVAL_SPLIT = "valid_unseen"


def game_tasks(source: str, src: Any) -> list[Task]:
    """`src.n` games (0 = all) from `src.data` (an ALFWorld data root or json_2.1.1.tar.xz), split `src.split`
    (default train), task types in turn, each type's games shuffled with `src.seed`; `src.offset` skips that many
    of this order first, so two sources with one seed (rollout and annotate) get disjoint games."""
    from agentlm.envs.alfworld_files import TASK_TYPES, load_tasks

    split = src.get("split", "train") or "train"
    if split == EVAL_SPLIT:
        raise ValueError(f"sources.{source}.split={EVAL_SPLIT!r}: that split holds AgentBench's evaluation games "
                         f"(std, dev); training instructions come from train")
    if not src.get("data"):
        raise ValueError(f"sources.{source}.data: give the ALFWorld data root (json_2.1.1/ or json_2.1.1.tar.xz), "
                         f"e.g. --config.sources.{source}.data=$ALFWORLD_DATA")
    by_type: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    for task in load_tasks(src.data, split):
        by_type[task.data["task_type"]].append(task)
    rng = random.Random(src.get("seed", 0))
    for games in by_type.values():
        rng.shuffle(games)
    order: list[Task] = []
    while any(by_type.values()):
        for games in by_type.values():
            if games:
                order.append(games.pop())
    offset = src.get("offset", 0)
    picked = order[offset:offset + src.n] if src.get("n", 0) else order[offset:]
    return [Task(f"{source}_{i:05d}", "alfworld", t.data, "train") for i, t in enumerate(picked)]


# Thoughts the offline teacher writes before an expert-plan command (the action itself is never changed).
_THOUGHTS = [
    (r"^go to (.+)", "Next I go to the {1} to look for what I need or to use it."),
    (r"^open (.+)", "The {1} is closed, so I open it to see what is inside."),
    (r"^close (.+)", "I close the {1} again."),
    (r"^take (.+) from (.+)", "Here is the {1} I need; I take it from the {2}."),
    (r"^put (.+) in/on (.+)", "I have the {1}, and the task wants it in/on the {2}, so I put it there."),
    (r"^clean (.+) with (.+)", "The task needs a clean {1}; the {2} can clean it."),
    (r"^heat (.+) with (.+)", "The task needs a hot {1}; I heat it with the {2}."),
    (r"^cool (.+) with (.+)", "The task needs a cool {1}; the {2} cools it."),
    (r"^use (.+)", "I turn on the {1} so I can look at the object under its light."),
    (r"^examine (.+)", "I examine the {1}."),
]


def plan_thought(command: str, first: bool, goal: str = "") -> str:
    """A short thought for one expert-plan command."""
    for pattern, text in _THOUGHTS:
        m = re.match(pattern, command.strip(), re.IGNORECASE)
        if m:
            thought = text.format(m.group(0), *m.groups())
            break
    else:
        thought = f"Next: {command}."
    if first:
        return (f"The task is to {goal}. I plan the steps and start. " if goal else "I plan the steps and start. ") \
            + thought
    return thought
