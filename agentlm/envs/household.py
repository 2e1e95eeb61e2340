"""Household environment (a generator of extra household data): TextWorld games generated locally, played
ALFWorld-style. The paper's ALFWorld task itself is `agentlm.envs.alfworld`.

TextWorld's own generators make household text
games: cooking (find, prepare and eat a recipe's ingredients), treasure hunter (find an object past doors and
distractors) and coin collector (navigate to a coin), each at several difficulty levels. A game is fixed by
(kind, level, seed), generated on first use and cached outside the repository (default ~/.cache/agentlm/textworld,
or $AGENTLM_CACHE/textworld; see household_games, which also explains the one lock every call into TextWorld
holds). TextWorld records each game's walkthrough, which the oracle plays.

The agent sees a room description and "Your task is to: ...", and replies with an optional thought and one
action, e.g. "Think: the coin must be east.\nAct: go east" (ALFWorld's "THOUGHT: ... ACTION: ..." also
parses). Success (reward 1) is winning the game; a reply with no action ends the episode as invalid.
"""
from __future__ import annotations

import json
import pathlib
import re
import warnings
from typing import Any, Sequence

from agentlm.envs.agents import n_agent_turns
from agentlm.envs.base import Environment, Episode, Message, Outcome, StepResult, Task
from agentlm.envs.household_games import KINDS, TEXTWORLD_LOCK, game_file, game_spec, walkthrough
from agentlm.envs.prompts import PromptScaffold, default_scaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, scored_episodes, success_rate

INSTRUCTION = """You are a helper acting in a text-based house: rooms, furniture, containers and objects. I describe
where you are and what you have to achieve; you act one step at a time and I tell you what happens.
Each reply holds an optional short thought and exactly one action, like this:

Think: the fridge is a good place to look for the milk.
Act: open fridge

Useful actions: look, inventory, go north/south/east/west, examine X, take X, take X from Y, put X on Y,
insert X into Y, open X, close X, unlock X with Y, drop X, eat X, and for cooking: cook X with Y, slice X with Y,
chop X with Y, dice X with Y, prepare meal. If an action does not work, I say so and you try something else."""

def default_tasks(per_kind: int = 7, seed0: int = 0) -> list[Task]:
    """A fixed mix: for each kind, `per_kind` games cycling through three difficulty levels."""
    levels = {"cooking": (1, 2, 3), "treasure": (1, 5, 10), "coin": (1, 5, 10)}
    tasks = []
    for kind in KINDS:
        for i in range(per_kind):
            level = levels[kind][i % 3]
            tasks.append(make_task(kind, level, seed0 + i))
    return tasks


def make_task(kind: str, level: int, seed: int) -> Task:
    game_spec({"kind": kind, "level": level, "seed": seed})
    return Task(id=f"household_{kind}_L{level}_S{seed}", env="household",
                data={"kind": kind, "level": level, "seed": seed})


def load_tasks(path: str | pathlib.Path, split: str = "dev") -> list[Task]:
    """JSONL/JSON of {"kind", "level", "seed"}; or "builtin:N" for `default_tasks(N)`."""
    spec = str(path)
    if spec.startswith("builtin"):
        return default_tasks(int(spec.partition(":")[2] or 7))
    p = pathlib.Path(spec)
    text = p.read_text(encoding="utf-8")
    rows = json.loads(text) if p.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
    return [make_task(*game_spec(r, f"{p} item {i}")) for i, r in enumerate(rows)]


def clean_feedback(text: str) -> str:
    """TextWorld's raw feedback without the prompt marker and status line it appends."""
    text = re.split(r"\n\s*>", text)[0] if "\n>" in text or "\n >" in text else text
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def parse_action(text: str) -> str | None:
    found = re.findall(r"^\s*(?:Act|ACTION|Action)\s*:\s*(.+?)\s*$", text, re.M)
    return found[-1].strip().rstrip(".").strip() if found else None


class HouseholdEnv(Environment):
    name = "household"

    def __init__(self, max_rounds: int = 50, prompt_file: str | None = None, game_dir: str | None = None):
        self.max_rounds = max_rounds
        self.game_dir = pathlib.Path(game_dir) if game_dir else None
        self.scaffold: PromptScaffold = load_scaffold(prompt_file) if prompt_file else default_scaffold(INSTRUCTION)
        self.env = None
        self.walkthrough: list[str] = []

    def reset(self, task: Task) -> list[Message]:
        import textworld
        self.close()
        kind, level, seed = game_spec(task.data, task.id)
        path = game_file(kind, level, seed, self.game_dir)  # before TEXTWORLD_LOCK: it may wait for a build
        infos = textworld.EnvInfos(objective=True, description=True, won=True, lost=True, score=True,
                                   max_score=True, extras=["walkthrough"])
        with TEXTWORLD_LOCK, warnings.catch_warnings():  # jericho warns that generated games lack score tables
            warnings.simplefilter("ignore")
            self.env = textworld.start(str(path), request_infos=infos)
            state = self.env.reset()
        self.walkthrough = list(state.get("extra.walkthrough") or [])
        text = clean_feedback(state["description"]) + "\nYour task is to: " + state["objective"].strip()
        return self.scaffold.build(text)

    def step(self, action: str) -> StepResult:
        command = parse_action(action)
        if command is None:
            return StepResult("", 0.0, True, {"invalid": True}, invalid=True)
        with TEXTWORLD_LOCK:
            state, _, done = self.env.step(command)
        won, lost = bool(state["won"]), bool(state["lost"])
        info = {"score": state["score"], "max_score": state["max_score"], "won": won}
        if won or lost or done:
            return StepResult("", 1.0 if won else 0.0, True, dict(info, lost=lost))
        return StepResult(self.scaffold.observe(clean_feedback(state.feedback) or "Nothing happened."), 0.0, False,
                          info)

    def parse_ok(self, action: str) -> bool:
        return parse_action(action) is not None

    def close(self) -> None:
        if self.env is not None:
            with TEXTWORLD_LOCK:
                self.env.close()
            self.env = None


class WalkthroughOracle:
    """Plays the game's recorded walkthrough."""

    def __init__(self, style: str = "act", game_dir: str | None = None):
        self.label = {"act": ("Think", "Act"), "alfworld": ("THOUGHT", "ACTION")}[style]
        self.game_dir = pathlib.Path(game_dir) if game_dir else None
        self._cache: dict[str, list[str]] = {}

    def act(self, conversation: list[Message], task: Task) -> str:
        if task.id not in self._cache:
            self._cache[task.id] = walkthrough(*game_spec(task.data, task.id), self.game_dir)
        steps = self._cache[task.id]
        turn = n_agent_turns(conversation)
        command = steps[turn] if turn < len(steps) else "look"
        return f"{self.label[0]}: step {turn + 1} of the plan.\n{self.label[1]}: {command}"


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """Success rate in percent (the paper's ALFWorld metric), with the success rate of each game kind."""
    by_kind: dict[str, list[bool]] = {}
    kinds = {t.id: t.data["kind"] for t in tasks}
    for e in scored_episodes(episodes):
        by_kind.setdefault(kinds.get(e.task_id, "?"), []).append(e.outcome == Outcome.SUCCESS)
    return {**success_rate(episodes, tasks), **{f"{k}_success": sum(v) / len(v) for k, v in sorted(by_kind.items())}}


SPEC = EnvSpec(
    name="household", env=HouseholdEnv, load_tasks=load_tasks, group="generator",
    metric=Metric("success rate", aggregate),
    oracle=WalkthroughOracle, oracle_options={"style": "act", "game_dir": None},
    action_format=ActionFormat(r"^\s*(Act|ACTION|Action)\s*:", thought_prefix="Think: "),
    options={"prompt_file": None, "game_dir": None}, requires=("textworld",), serial_reset=True,
    default_tasks="builtin:7",
    task_formats="builtin:N (N generated games of each kind at three levels), or JSONL/JSON of {kind, level, seed}",
    description="TextWorld household games generated locally: extra household-style data (not ALFWorld)")
