"""ScienceWorld (held-out): 30 elementary-science task types in a text simulator (the scienceworld package, Java).

A task is (task name, variation). The agent sees the task description and the first observation, and replies
with an optional thought and one action ("Act: open door to kitchen"; "ACTION: ..." also parses). Scoring as in
the paper: the simulator's score / 100 at the end of the episode (negative failure scores count 0), averaged
over tasks; success means 100. The oracle plays the simulator's gold action sequence (generateGoldPath=True).

    tasks: a JSONL of {"task": name, "variation": int[, "gold": [actions]]}, or "builtin:dev:K" for the first
    K dev-split variations of every task type.
"""
from __future__ import annotations

import json
import pathlib
import threading
from typing import Any, Sequence

from agentlm.envs.agents import n_agent_turns
from agentlm.envs.base import Environment, Episode, Message, StepResult, Task
from agentlm.envs.household import parse_action
from agentlm.envs.prompts import PromptScaffold, default_scaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, mean_reward, scored_episodes

INSTRUCTION = """You are doing a science experiment in a simulated world of rooms, objects, substances, plants and animals.
I give you the task and describe what you see; you act one step at a time and I tell you what happens. Each
reply holds an optional short thought and exactly one action, like this:

Think: the thermometer should be in the kitchen.
Act: go to kitchen

Actions include: look around, look at X, open X, close X, go to LOCATION, pick up X, put down X, move X to Y,
pour X into Y, mix X, activate X, deactivate X, use X on Y, read X, focus on X, connect X to Y, wait, wait1,
inventory, and eat X. "focus on X" tells me which object the task is about: use it only on the object the task
asks for, since focusing on a wrong one can end the task. Invalid actions change nothing."""

_env_lock = threading.Lock()


def _new_simulator(step_limit: int):
    from scienceworld import ScienceWorldEnv
    with _env_lock:  # the package starts its Java server on a free port; starting several at once can collide
        return ScienceWorldEnv("", envStepLimit=step_limit)


def default_tasks(per_task: int = 1, split: str = "dev") -> list[Task]:
    sim = _new_simulator(100)
    try:
        tasks = []
        for name in sim.get_task_names():
            sim.load(name, 0, "")
            variations = {"dev": sim.get_variations_dev, "test": sim.get_variations_test,
                          "train": sim.get_variations_train}[split]()
            for v in sorted(variations)[:per_task]:
                tasks.append(make_task(name, v, split))
        return tasks
    finally:
        sim.close()


def make_task(name: str, variation: int, split: str = "dev", gold: list[str] | None = None) -> Task:
    data: dict[str, Any] = {"task": name, "variation": int(variation)}
    if gold is not None:
        data["gold"] = list(gold)
    return Task(id=f"sciworld_{name}_{variation}", env="sciworld", data=data, split=split)


def load_tasks(path: str, split: str = "dev") -> list[Task]:
    spec = str(path)
    if spec.startswith("builtin"):
        parts = spec.split(":")
        return default_tasks(int(parts[2]) if len(parts) > 2 else 1, parts[1] if len(parts) > 1 else "dev")
    p = pathlib.Path(spec)
    text = p.read_text(encoding="utf-8")
    rows = json.loads(text) if p.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
    tasks = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("task"), str) or not isinstance(r.get("variation"), int):
            raise ValueError(f"{p} item {i}: needs 'task' (str) and 'variation' (int)")
        tasks.append(make_task(r["task"], r["variation"], split, r.get("gold")))
    return tasks


class SciWorldEnv(Environment):
    name = "sciworld"
    allow_repeats = True  # gold paths legitimately repeat actions such as "wait1"

    def __init__(self, max_rounds: int = 100, prompt_file: str | None = None, simplification: str = ""):
        self.max_rounds, self.simplification = max_rounds, simplification
        self.scaffold: PromptScaffold = load_scaffold(prompt_file) if prompt_file else default_scaffold(INSTRUCTION)
        self.sim = None
        self.score = 0

    def reset(self, task: Task) -> list[Message]:
        if self.sim is None:
            self.sim = _new_simulator(self.max_rounds + 10)
        name, variation = task.data["task"], int(task.data["variation"])
        if name not in self.sim.get_task_names():
            raise ValueError(f"{task.id}: unknown ScienceWorld task {name!r}")
        if not 0 <= variation < self.sim.get_max_variations(name):
            raise ValueError(f"{task.id}: variation {variation} out of range for {name}")
        try:
            self.sim.load(name, variation, self.simplification)
            obs, _ = self.sim.reset()
        except Exception:
            self.close()  # the simulator may be broken: the next episode starts a fresh one
            raise
        self.score = 0
        return self.scaffold.build(f"{self.sim.get_task_description().strip()}\n\n{obs.strip()}")

    def step(self, action: str) -> StepResult:
        command = parse_action(action)
        if command is None:
            return StepResult("", max(self.score, 0) / 100.0, True, {"invalid": True, "score": self.score},
                              invalid=True)
        obs, _, done, info = self.sim.step(command)
        self.score = int(info.get("score", 0))
        reward = max(self.score, 0) / 100.0
        if done or self.score >= 100:
            return StepResult("", reward, True, {"score": self.score, "success": self.score >= 100})
        return StepResult(self.scaffold.observe(obs.strip()), reward, False, {"score": self.score})

    def parse_ok(self, action: str) -> bool:
        return parse_action(action) is not None

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()
            self.sim = None


class GoldPathOracle:
    """Plays ScienceWorld's gold action sequence (from the task file, or asked of its own simulator)."""

    def __init__(self):
        self.sim = None
        self.paths: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def gold(self, task: Task) -> list[str]:
        if task.data.get("gold"):
            return list(task.data["gold"])
        with self.lock:
            if task.id not in self.paths:
                if self.sim is None:
                    self.sim = _new_simulator(200)
                self.sim.load(task.data["task"], int(task.data["variation"]), "", generateGoldPath=True)
                self.paths[task.id] = list(self.sim.get_gold_action_sequence())
            return self.paths[task.id]

    def act(self, conversation: list[Message], task: Task) -> str:
        steps, turn = self.gold(task), n_agent_turns(conversation)
        return f"Think: step {turn + 1} of the procedure.\nAct: {steps[turn] if turn < len(steps) else 'look around'}"

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()
            self.sim = None


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """The paper's SciWorld score: the mean of ScienceWorld's 0-100 score (the reward in [0, 1] times 100),
    plus the share of tasks completed."""
    scored = scored_episodes(episodes)
    n = len(scored) or 1
    return {**mean_reward(episodes, tasks), "completed": sum(e.reward >= 1.0 for e in scored) / n}


def _java_problem() -> str | None:
    import shutil
    return None if shutil.which("java") else "ScienceWorld needs a Java runtime (apt-get install default-jre-headless)"


SPEC = EnvSpec(
    name="sciworld", env=SciWorldEnv, load_tasks=load_tasks, group="held_out", paper_task="SciWorld",
    metric=Metric("mean score (0-100)", aggregate), oracle=GoldPathOracle,
    action_format=ActionFormat(r"^\s*(Act|ACTION|Action)\s*:", thought_prefix="Think: "),
    options={"prompt_file": None, "simplification": ""}, requires=("scienceworld",), check=_java_problem,
    default_tasks="builtin:dev:1",
    task_formats="builtin:SPLIT:K (the first K variations of each of the 30 task types), or JSONL/JSON of "
                 "{task, variation[, gold]}",
    description="ScienceWorld (held out): 30 science task types in a Java simulator")
