"""A two-step arithmetic environment: the smallest thing that speaks the agentlm Environment protocol.

Pipeline tests that are about the machinery (exactly-once writing, resume after kill -9, fault handling) use it
so they do not depend on the speed or availability of the real environments. The agent first looks (`Action:
Look`), then answers the sum (`Action: Answer` / `Final Answer: N`).
"""
from __future__ import annotations

import random
import re

from agentlm.envs.base import Environment, Message, StepResult, Task
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, success_rate

INSTRUCTION = ("You solve small arithmetic tasks. Reply with a short thought, then either `Action: Look` to see the "
               "numbers or `Action: Answer` followed by a line `Final Answer: <number>`.")


def make_tasks(n: int, seed: int = 0, prefix: str = "toy") -> list[Task]:
    rng = random.Random(seed)
    return [Task(f"{prefix}_{i}", "toy", {"a": rng.randint(0, 99), "b": rng.randint(0, 99),
                                          "question": f"Task {i}: add the two hidden numbers."})
            for i in range(n)]


def _parse(text: str) -> tuple[str, str | None] | None:
    m = re.search(r"^Action:\s*(Look|Answer)\b", text, re.MULTILINE)
    if not m:
        return None
    if m.group(1) == "Look":
        return ("look", None)
    ans = re.search(r"Final Answer:\s*(-?\d+)", text[m.end():])
    return ("answer", ans.group(1)) if ans else None


class ToyEnv(Environment):
    name = "toy"
    max_rounds = 4

    def __init__(self, **_):
        self.task: Task | None = None

    def reset(self, task: Task) -> list[Message]:
        self.task = task
        return [{"from": "human", "value": INSTRUCTION, "loss": None}, {"from": "gpt", "value": "OK.", "loss": False},
                {"from": "human", "value": task.data["question"], "loss": None}]

    def step(self, action: str) -> StepResult:
        parsed = _parse(action)
        if parsed is None:
            return StepResult("", 0.0, True, {"invalid": True}, invalid=True)
        if parsed[0] == "look":
            return StepResult(f"The numbers are {self.task.data['a']} and {self.task.data['b']}.")
        ok = int(parsed[1]) == self.task.data["a"] + self.task.data["b"]
        return StepResult("", 1.0 if ok else 0.0, True, {"answer": parsed[1]})

    def parse_ok(self, action: str) -> bool:
        return _parse(action) is not None


class ToyOracle:
    def act(self, conversation: list[Message], task: Task) -> str:
        if not any(m["from"] == "gpt" and m.get("loss") for m in conversation):
            return "I cannot see the numbers yet.\nAction: Look"
        return f"Adding them up.\nAction: Answer\nFinal Answer: {task.data['a'] + task.data['b']}"


def load_tasks(source: str, split: str = "train") -> list[Task]:
    """"builtin:N[:SEED]" -> `make_tasks(N, SEED)`."""
    kind, _, rest = source.partition(":")
    n, _, seed = rest.partition(":")
    if kind != "builtin" or not n.isdigit() or (seed and not seed.isdigit()):
        raise ValueError(f"toy tasks {source!r}: expected builtin:N[:SEED]")
    return make_tasks(int(n), int(seed or 0))


SPEC = EnvSpec(name="toy", env=ToyEnv, load_tasks=load_tasks, group="generator", oracle=ToyOracle,
               metric=Metric("success rate", success_rate), action_format=ActionFormat(r"^Action:"),
               default_tasks="builtin:8", task_formats="builtin:N[:SEED]",
               description="the pipeline tests' two-step arithmetic world")
