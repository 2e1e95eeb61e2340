"""What a tool-use domain declares: its tools, a fresh world per episode, its tasks, and how success is judged.

A domain is one module (or package) with a module-level `DOMAIN = Domain(...)`. Everything else in the kit (the
environment, both agent protocols, the oracle, the pipeline and evaluation adapters) is generic over it.

Task instances are plain JSON dicts (they go through tasks.jsonl and evaluation item files unchanged):
  {"template": str, "goal": str, "world": {...}, "expect": {...}, "solution": [step, ...]}
`goal` is what the agent is asked; `world` is whatever `new_world` needs to rebuild the episode's state (a seed,
rows); `expect` is whatever `check` needs; `solution` (optional) is the gold plan the oracle plays: steps
{"tool": name, "args": {...}, "thought": str} and a last {"answer": str, "thought": str}. Templates carry a split:
held-out evaluation uses templates the training data never saw.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import pathlib
import random
from typing import Any, Callable, Sequence

from agentlm.envs.base import Task
from agentlm.envs.tools.schema import tool_schema
from agentlm.jsonl import iter_jsonl

TRAIN, TEST = "train", "test"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A checker's judgement: success decides the outcome; reward (in [0, 1]) may give partial credit."""

    success: bool
    reward: float | None = None
    detail: str = ""

    @classmethod
    def of(cls, value: Any) -> "Verdict":
        """Accepts what a checker may return: a Verdict, a bool, a float reward, or (bool, detail)."""
        if isinstance(value, Verdict):
            return value
        if isinstance(value, bool):
            return cls(value)
        if isinstance(value, (int, float)):
            return cls(float(value) >= 1.0 - 1e-9, float(value))
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
            return cls(value[0], None, str(value[1]))
        raise TypeError(f"a checker must return Verdict, bool, float or (bool, detail); got {value!r}")

    @property
    def score(self) -> float:
        return float(self.reward) if self.reward is not None else (1.0 if self.success else 0.0)


@dataclasses.dataclass(frozen=True)
class TaskTemplate:
    """A family of tasks: `make(rng)` returns one task instance dict (see the module docstring)."""

    name: str
    split: str  # TRAIN or TEST: held-out templates are never used for training data
    make: Callable[[random.Random], dict[str, Any]]


@dataclasses.dataclass
class Domain:
    name: str
    instruction: str  # the role, the rules and any written policy the agent must follow
    tools: Sequence[Callable]
    check: Callable[[Any, str | None, dict], Any]  # (world, final answer or None, task data) -> Verdict-like
    new_world: Callable[[dict], Any] = lambda data: {}  # task data -> this episode's fresh state
    close_world: Callable[[Any], None] | None = None  # e.g. close a database connection
    templates: Sequence[TaskTemplate] = ()
    max_rounds: int = 20
    observation_limit: int = 3000  # characters of one tool result shown to the agent

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"domain name {self.name!r} must be an identifier (it names files and splits)")
        self.schemas = [tool_schema(fn) for fn in self.tools]  # fails early on an undescribable tool
        self.by_name = {fn.__name__: fn for fn in self.tools}
        if len(self.by_name) != len(self.tools):
            raise ValueError(f"domain {self.name}: two tools share a name")
        names = [t.name for t in self.templates]
        if len(set(names)) != len(names):
            raise ValueError(f"domain {self.name}: two templates share a name")
        for t in self.templates:
            if t.split not in (TRAIN, TEST):
                raise ValueError(f"domain {self.name}, template {t.name}: split must be {TRAIN!r} or {TEST!r}")

    def templates_of(self, split: str) -> list[TaskTemplate]:
        if split in ("all", "any"):
            return list(self.templates)
        out = [t for t in self.templates if t.split == split]
        if not out:
            raise ValueError(f"domain {self.name} has no {split!r} templates "
                             f"(templates: {[(t.name, t.split) for t in self.templates]})")
        return out

    def generate(self, split: str = TRAIN, n: int = 60, seed: int = 0) -> list[Task]:
        """n task instances from the split's templates, round-robin; a pure function of (split, n, seed)."""
        templates = self.templates_of(split)
        tasks, goals = [], set()
        for i in range(n):
            tpl = templates[i % len(templates)]
            for attempt in range(50):  # goals must tell tasks apart (oracles and test teachers key on them)
                digest = hashlib.sha256(f"{self.name}:{tpl.name}:{seed}:{i}:{attempt}".encode()).hexdigest()
                data = tpl.make(random.Random(int(digest[:16], 16)))
                validate_instance(data, f"domain {self.name}, template {tpl.name}, instance {i}")
                if data["goal"] not in goals:
                    break
            else:
                raise ValueError(f"domain {self.name}, template {tpl.name}: 50 draws gave no new goal text; make "
                                 f"goals more varied (e.g. a ticket number)")
            goals.add(data["goal"])
            data["template"] = tpl.name
            tasks.append(Task(f"{self.name}_{split}_{i:04d}", self.name, data, split))
        return tasks


def validate_instance(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a task instance is a dict, got {type(data).__name__}")
    if not isinstance(data.get("goal"), str) or not data["goal"].strip():
        raise ValueError(f"{where}: field 'goal' must be a non-empty string")
    for n, step in enumerate(data.get("solution") or []):
        if not isinstance(step, dict) or not (("tool" in step and isinstance(step.get("args", {}), dict))
                                              or "answer" in step):
            raise ValueError(f"{where}: solution step {n} must be {{'tool', 'args'}} or {{'answer'}}, got {step!r}")
    try:
        json.dumps(data)
    except TypeError as e:
        raise ValueError(f"{where}: task instances must be JSON-serialisable ({e})") from None


def load_domain(ref: "str | Domain") -> Domain:
    """A Domain from itself, a registered environment name (agentlm.envs.registry), "package.module" (its DOMAIN)
    or "package.module:ATTR"."""
    if isinstance(ref, Domain):
        return ref
    from agentlm.envs import registry

    if ":" not in ref and ref in registry.names():
        return _registered_domain(ref)
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"domain {ref!r}: cannot import {module_name!r} ({e}); registered environments: "
                         f"{', '.join(registry.names())}") from e
    domain = getattr(module, attr or "DOMAIN", None)
    if not isinstance(domain, Domain):
        raise ValueError(f"domain {ref!r}: {module_name}.{attr or 'DOMAIN'} is not an agentlm.envs.tools.Domain")
    return domain


def _registered_domain(name: str) -> Domain:
    from agentlm.envs import registry
    from agentlm.envs.tools.env_spec import domain_of  # (env_spec imports this module)

    domain = domain_of(registry.get(name))
    if domain is None:
        raise ValueError(f"environment {name!r} is registered but is not a tool domain")
    return domain


def domain_ref(domain: "str | Domain") -> str:
    """A string that load_domain turns back into this domain (for configs and pipeline env kwargs)."""
    if isinstance(domain, str):
        return domain
    from agentlm.envs import registry

    if domain.name in registry.names() and load_domain(domain.name) is domain:
        return domain.name
    raise ValueError(f"domain {domain.name}: pass it by reference ('package.module' or 'package.module:ATTR') so "
                     f"worker processes and config files can import it")


def load_tasks(domain: "str | Domain", spec: str, split: str | None = None) -> list[Task]:
    """Tasks from `builtin:SPLIT[:N[:SEED]]` (generated; default 60 train / 50 test, seed 0) or a JSONL file of
    task instances (one per line, optional "id" and "split")."""
    d = load_domain(domain)
    if spec.startswith("builtin"):
        parts = spec.split(":")[1:]
        try:
            gen_split = parts[0] if parts and parts[0] else (split if split in (TRAIN, TEST) else TEST)
            n = int(parts[1]) if len(parts) > 1 else (60 if gen_split == TRAIN else 50)
            seed = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            raise ValueError(f"task spec {spec!r}: expected builtin:SPLIT[:N[:SEED]] with integers N, SEED") from None
        return d.generate(gen_split, n, seed)
    path = pathlib.Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"task file {path} does not exist (or use builtin:SPLIT[:N[:SEED]])")
    tasks = []
    for n, data in iter_jsonl(path):
        validate_instance(data, f"{path}:{n}")
        tid = str(data.pop("id", f"{d.name}_{path.stem}_{n - 1:04d}"))
        tasks.append(Task(tid, d.name, data, str(data.pop("split", split or "dev"))))
    return tasks
