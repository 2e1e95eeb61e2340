"""What an environment declares once, next to its code, for every consumer (`envs.run`, `eval.agent`,
`data_pipeline`) to read: how to build it, load its items, play its oracle, split a reply into thought and
action, and score a run the way the paper does.

A spec names its parts either directly (a class or function) or as "module:attr" strings, so declaring a spec
costs no import of the environment's heavy dependencies (Java, a browser, TextWorld); `requires` and
`executables` name those dependencies so a missing one is one clear message before a run, not an ImportError deep
inside it.

Options: `options` maps each constructor keyword the environment exposes to its default. The same names form the
environment's section of the evaluation config (`config.<name>.<option>`, next to the `SECTION_FIELDS` every
environment has), `envs.run --option key=value`, and a pipeline source's `env_kwargs`. `oracle_options` are the
oracle's; an option named in both gets one value. `max_rounds` is not an option: every environment has the
attribute, so `make_env(max_rounds=N)` passes it to a constructor that takes it and sets it otherwise.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import re
import shutil
import threading
from typing import Any, Callable, Mapping, Sequence

from agentlm.envs.base import Environment, Episode, Outcome, Task

GROUPS = ("held_in", "held_out", "new_domain", "generator")
# Fields of an environment's config section that are not constructor options: the item source, its split, how
# many items (0 = all), and the round limit (0 = the environment's own).
SECTION_FIELDS = ("data_file", "split", "limit", "max_rounds")


class MissingDependency(RuntimeError):
    """An environment's optional dependency is absent here; the message names it and how to get it."""


def resolve(ref: Any) -> Any:
    """An object itself, or the attribute named by "package.module:attr"."""
    if not isinstance(ref, str):
        return ref
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{ref!r} is not of the form 'package.module:attribute'")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"cannot import {module!r} for {ref!r}: {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{ref!r}: {module} has no attribute {attr!r}") from None
    return obj


@dataclasses.dataclass(frozen=True)
class ActionFormat:
    """Where the action starts in a reply, and how a thought is written before it.

    CoT annotation rewrites only the thought, never the action, so every environment says where one ends and
    the other begins."""

    action_start: str = r"^(Action|ACTION|Act):"  # regex matching the start of the action line (multiline mode)
    thought_prefix: str = ""  # e.g. "Think: " for OS
    separator: str = "\n"

    def split(self, reply: str) -> tuple[str, str]:
        """(thought, action); the action is everything from the first action line on."""
        m = re.search(self.action_start, reply, re.MULTILINE)
        if not m:
            return reply.strip(), ""
        thought = reply[:m.start()].strip()
        if self.thought_prefix and thought.startswith(self.thought_prefix.strip()):
            thought = thought[len(self.thought_prefix.strip()):].strip()
        return thought, reply[m.start():].rstrip()

    def join(self, thought: str, action: str) -> str:
        thought = " ".join(thought.split())
        return f"{self.thought_prefix}{thought}{self.separator}{action}" if thought else action


# -- the paper's aggregations ------------------------------------------------------------------------------------

def scored_episodes(episodes: Sequence[Episode]) -> list[Episode]:
    """Episodes that count: an item the environment could not judge here is reported apart, never as a failure."""
    return [e for e in episodes if e.outcome != Outcome.UNSCORABLE]


def episode_counts(episodes: Sequence[Episode]) -> dict[str, int]:
    """How many episodes count, and how many were set apart as unscorable (every metric reports both)."""
    scored = scored_episodes(episodes)
    return {"scored": len(scored), "unscorable": len(episodes) - len(scored)}


def success_rate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    scored = scored_episodes(episodes)
    rate = sum(e.outcome == Outcome.SUCCESS for e in scored) / len(scored) if scored else 0.0
    return {"score": 100.0 * rate, "success_rate": rate, **episode_counts(episodes)}


def mean_reward(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    scored = scored_episodes(episodes)
    n = len(scored) or 1
    mean = sum(e.reward for e in scored) / n
    return {"score": 100.0 * mean, "mean_reward": mean,
            "success_rate": sum(e.outcome == Outcome.SUCCESS for e in scored) / n, **episode_counts(episodes)}


@dataclasses.dataclass(frozen=True)
class Metric:
    """The paper's metric for a task: `aggregate(episodes, tasks)` returns at least {"score": <percent scale>}
    (plus whatever details the report shows), `name` is how tables label it."""

    name: str
    aggregate: Any = success_rate  # callable or "module:attr"

    def __call__(self, episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
        out = resolve(self.aggregate)(episodes, tasks)
        if "score" not in out:
            raise ValueError(f"metric {self.name!r}: aggregate returned no 'score' ({sorted(out)})")
        return out


SUCCESS_RATE = Metric("success rate", success_rate)
MEAN_REWARD = Metric("mean reward x 100", mean_reward)


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """One environment, declared once. See the module docstring for options and lazy references."""

    name: str
    env: Any  # Environment subclass, or "module:Class"; called with **options
    load_tasks: Any  # (source: str, split: str) -> list[Task], or "module:function"
    group: str  # one of GROUPS
    metric: Metric = SUCCESS_RATE
    oracle: Any = None  # agent class (called with **oracle_options) or "module:Class"; None = no oracle
    action_format: ActionFormat = ActionFormat()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    oracle_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    task_formats: str = ""  # what `load_tasks` accepts, for --help and docs
    default_tasks: str = ""  # the item source used when none is given (e.g. "builtin:7"); "" = must be given
    split: str = "dev"  # the split evaluation reads by default
    paper_task: str | None = None  # the paper table's row this task is scored against (agentlm.eval.paper)
    note: str = ""  # shown beside the score in reports (stand-ins, substituted data, closed corpora)
    requires: tuple[str, ...] = ()  # importable Python modules the environment needs
    executables: tuple[str, ...] = ()  # programs it needs on PATH
    check: Any = None  # optional () -> str | None: a further problem message (e.g. no browser), or None
    install_hint: str = "run `make install`"
    serial_reset: bool = False  # its backend cannot load two episodes at once in one process (TextWorld)
    description: str = ""

    def __post_init__(self):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"environment name {self.name!r}: use lower-case letters, digits and _")
        if self.group not in GROUPS:
            raise ValueError(f"environment {self.name!r}: group {self.group!r} is not one of {GROUPS}")
        for field in ("options", "oracle_options"):
            for key in getattr(self, field):
                if key in SECTION_FIELDS:
                    raise ValueError(f"environment {self.name!r}: {field} may not use the reserved name {key!r}")

    # -- dependencies --------------------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why this environment cannot run here (naming what is missing), or None when it can."""
        missing = [m for m in self.requires if importlib.util.find_spec(m.split(".")[0]) is None]
        missing += [f"the program {x!r}" for x in self.executables if shutil.which(x) is None]
        if missing:
            return (f"environment {self.name!r} needs {', '.join(missing)}, which is not available here "
                    f"({self.install_hint})")
        return resolve(self.check)() if self.check is not None else None

    def require(self) -> None:
        problem = self.problem()
        if problem:
            raise MissingDependency(problem)

    # -- construction --------------------------------------------------------------------------------------------

    def _pick(self, declared: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.options) - set(self.oracle_options)
        if unknown:
            raise ValueError(f"environment {self.name!r}: unknown option(s) {sorted(unknown)}; it takes "
                             f"{sorted(set(self.options) | set(self.oracle_options)) or 'none'}")
        return {k: given.get(k, default) for k, default in declared.items()}

    def make_env(self, *, max_rounds: int | None = None, **options) -> Environment:
        return self.env_factory(max_rounds=max_rounds, **options)()

    def env_factory(self, *, max_rounds: int | None = None, **options) -> Callable[[], Environment]:
        """A zero-argument constructor (the loop builds one environment per worker thread)."""
        self.require()
        cls, kwargs = resolve(self.env), self._pick(self.options, options)
        takes_rounds = max_rounds and "max_rounds" in _parameters(cls)
        if takes_rounds:
            kwargs["max_rounds"] = max_rounds

        def build() -> Environment:
            env = cls(**kwargs)
            if max_rounds and not takes_rounds:
                env.max_rounds = max_rounds
            return env

        if self.serial_reset:
            lock = _RESET_LOCKS.setdefault(self.name, threading.Lock())
            return lambda: SerialReset(build(), lock)
        return build

    def make_oracle(self, **options):
        if self.oracle is None:
            raise ValueError(f"environment {self.name!r} has no oracle")
        self.require()
        return resolve(self.oracle)(**self._pick(self.oracle_options, options))

    # -- configuration -------------------------------------------------------------------------------------------

    def section_defaults(self) -> dict[str, Any]:
        """This environment's section of the evaluation config: `SECTION_FIELDS` plus every option, with None
        written as "" (a command-line override needs a typed default; "" means "the declared default")."""
        fields: dict[str, Any] = {"data_file": self.default_tasks, "split": self.split, "limit": 0, "max_rounds": 0}
        for key, value in {**self.oracle_options, **self.options}.items():
            fields[key] = "" if value is None else value
        return fields

    def options_from(self, section: Mapping[str, Any]) -> dict[str, Any]:
        """The options a config section sets (its "" entries keep the declared defaults); pass the result to
        `make_env` and `make_oracle` alike, each takes its own."""
        out = {}
        for key in {**self.oracle_options, **self.options}:
            value = section.get(key, "")
            if value != "":
                out[key] = value.to_dict() if hasattr(value, "to_dict") else value
        return out

    def parse_option(self, key: str, text: str) -> Any:
        """`text` (from `--option key=text`) as a value of the option's declared type."""
        declared = {**self.oracle_options, **self.options}
        if key not in declared:
            raise ValueError(f"environment {self.name!r}: unknown option {key!r}; it takes "
                             f"{sorted(declared) or 'none'}")
        default = declared[key]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                    raise ValueError("expected a boolean")
                return text.lower() in ("1", "true", "yes", "on")
            if isinstance(default, (int, float)):
                return type(default)(text)
            if isinstance(default, (dict, list, tuple)):
                value = ast.literal_eval(text)
                if not isinstance(value, type(default)):
                    raise ValueError(f"expected a {type(default).__name__}")
                return value
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"environment {self.name!r}: option {key}={text!r}: {e}") from None
        return text

    def tasks(self, source: str = "", split: str | None = None) -> list[Task]:
        source = source or self.default_tasks
        if not source:
            raise ValueError(f"environment {self.name!r}: give its items ({self.task_formats or 'a task file'})")
        return list(resolve(self.load_tasks)(source, split or self.split))

    def score(self, episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
        return self.metric(episodes, tasks)

    def split_reply(self, reply: str) -> tuple[str, str]:
        return self.action_format.split(reply)


_RESET_LOCKS: dict[str, threading.Lock] = {}


def _parameters(cls) -> set[str]:
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):  # a builtin or C-implemented callable: pass nothing it may not take
        return set()


class SerialReset:
    """Delegates to an environment, letting one thread of this process at a time into `reset` (TextWorld parses
    game files through module-level state and fails with "pop from empty list" when two threads do it at once).
    Episodes still run in parallel; only their starts are serialised."""

    def __init__(self, env: Environment, lock: threading.Lock):
        self.env, self._lock = env, lock

    def reset(self, task: Task):
        with self._lock:
            return self.env.reset(task)

    def __getattr__(self, name):  # step, close, parse_ok, max_rounds, name, ...
        return getattr(self.env, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.env.close()
