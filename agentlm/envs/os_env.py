"""OS environment (held-in): AgentBench os_interaction items, their action syntax and checks, in a bwrap sandbox.

The agent replies with a thought and one action: `Act: bash` plus a ```bash block (run in the item's machine;
the output, cut at 800 characters, comes back), `Act: answer(<text>)`, or `Act: finish`. Anything else ends the
episode as an invalid action; 8 rounds at most.

An item is judged by `evaluation.match` (answer == match, both stripped) or by `evaluation.check`: a dict names
one item-specific script; a list runs in order, where `null` means "run the item's example script in the machine
and keep its output as the reference", and every other entry is a check script that gets (answer, outputs so
far...) and must exit 0. The standard checks (integer-match, string-match, size-match, containing, in) are
built in; item-specific scripts (and `file` init/example scripts) come from the item's AgentBench scripts folder or
a configured scripts directory. An item that needs a script neither has is unscorable (Outcome.UNSCORABLE),
counted apart from the score. Item formats and AgentBench's folder layout: agentlm.envs.os_items.

The machine: AgentBench's items assume root in a writable container, so each episode runs in the root sandbox
(agentlm.envs.os_sandbox_root) where one can be made (`sandbox="auto"`, the default, or "root"); where it cannot,
episodes run in the plain sandbox and the items that need root (os_items.needs_root) are unscorable, with the
reason naming what the machine lacks.
"""
from __future__ import annotations

import pathlib
import re
from typing import Any, Sequence

from agentlm.envs import os_items
from agentlm.envs.agents import n_agent_turns
from agentlm.envs.base import Environment, Message, Outcome, StepResult, Task, TaskUnscorable
from agentlm.envs import os_sandbox_root
from agentlm.envs.os_sandbox import Sandbox, SandboxLimits
from agentlm.envs.prompts import PromptScaffold, default_scaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, success_rate

OUTPUT_LIMIT = 800
# Our own versions of the item scripts AgentBench items name (package data, so an installed package has them).
DEFAULT_SCRIPTS = pathlib.Path(__file__).resolve().with_name("os_scripts")
DEFAULT_OBSERVATION = "Output:\n{observation}"
CUT_NOTE = "\n[output cut here: it was too long]"

INSTRUCTION = """You are operating a Linux (Ubuntu-like) machine for me through a bash shell, to carry out the task or answer the
question I give you. Every reply has a short thought and then exactly one action, in one of these forms:

Think: what you know and what to do next.

Act: bash

```bash
# the commands to run
```

Think: why the task is complete.

Act: finish

Think: how you found the answer.

Act: answer(the answer, and nothing else)

I run the bash block and show you its output. Long output is cut, so filter it yourself (grep, head, wc ...).
Commands cannot read input from a keyboard. Use "answer" for questions and "finish" for tasks that change the
machine."""

EXAMPLE_TURNS = [
    ("How many files (not directories) are directly inside /var/log?",
     "Think: I can list regular files at depth one and count them.\n\nAct: bash\n\n```bash\n"
     "find /var/log -maxdepth 1 -type f | wc -l\n```"),
    ("3", "Think: The command printed the count.\n\nAct: answer(3)"),
]


def _size_bytes(text: str) -> float:
    units = {"B": 1, "K": 1024, "KB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2, "G": 1024 ** 3, "GB": 1024 ** 3,
             "T": 1024 ** 4, "TB": 1024 ** 4, "P": 1024 ** 5, "PB": 1024 ** 5}
    s = text.strip()
    for unit in sorted(units, key=len, reverse=True):
        if s.upper().endswith(unit):
            return int(float(s[: -len(unit)].strip()) * units[unit])
    return int(float(s))


def _norm(s: str) -> str:
    return s.replace("\r\n", "\n").strip()


BUILTIN_CHECKS = {
    "integer-match": lambda a, r: int(a.strip()) == int(r.strip()),
    "string-match": lambda a, r: a.strip() == r.strip(),
    "size-match": lambda a, r: _size_bytes(a) == _size_bytes(r),
    "containing": lambda a, r: _norm(r) in _norm(a),
    "in": lambda a, r: _norm(a) in _norm(r),
}


def run_check(name: str, answer: str, reference: str) -> bool:
    """A built-in check; an answer it cannot read (e.g. not a number for integer-match) fails."""
    try:
        return bool(BUILTIN_CHECKS[name](answer, reference))
    except (ValueError, TypeError, OverflowError):
        return False


def load_tasks(source: str | pathlib.Path, split: str = "dev") -> list[Task]:
    """A data file, glob, folder, or AgentBench's os_interaction/data root (see agentlm.envs.os_items)."""
    return os_items.load_tasks(source, split)


class OSEnv(Environment):
    name = "os"

    def __init__(self, scripts_dir: str | None = str(DEFAULT_SCRIPTS), prompt_file: str | None = None,
                 limits: SandboxLimits | None = None, max_rounds: int = 8, sandbox_dir: str | None = None,
                 sandbox: str = "auto"):
        if sandbox not in ("auto", "root", "plain"):
            raise ValueError(f"sandbox={sandbox!r}: auto | root | plain")
        self.sandbox_kind = sandbox
        self.root_problem = None if sandbox == "plain" else os_sandbox_root.root_problem()
        self.scripts_dir = pathlib.Path(scripts_dir) if scripts_dir else None
        self.max_rounds, self.limits, self.sandbox_dir = max_rounds, limits or SandboxLimits(), sandbox_dir
        if prompt_file:
            self.scaffold = load_scaffold(prompt_file)
        else:
            turns = [{"from": "human", "value": INSTRUCTION + "\n\nFor example, my question is:\n\n" + EXAMPLE_TURNS[0][0],
                      "loss": None}]
            turns.append({"from": "gpt", "value": EXAMPLE_TURNS[0][1], "loss": False})
            turns.append({"from": "human", "value": DEFAULT_OBSERVATION.format(observation=EXAMPLE_TURNS[1][0]),
                          "loss": None})
            turns.append({"from": "gpt", "value": EXAMPLE_TURNS[1][1], "loss": False})
            self.scaffold = PromptScaffold(turns, "That was the example. Now a new machine, and my task is:\n\n{task}")
        self.observation_template = self.scaffold.observation_template if prompt_file else DEFAULT_OBSERVATION
        self.sandbox: Sandbox | None = None
        self.item: dict = {}

    # --- scripts ---
    def _plan(self, item: dict) -> dict:
        """Resolves every script the item needs up front; raises TaskUnscorable naming what is missing."""
        parsed = os_items.parse_item(item, "item")
        dirs = os_items.scripts_dirs(item, self.scripts_dir)
        missing: list[str] = []

        def code(s: os_items.Script | None):
            if s is None:
                return None
            text = os_items.resolve(s, dirs)
            if text is None:
                missing.append(s.file)
            return text, s.interpreter

        plan = {"init": [code(s) for s in parsed.init], "start": code(parsed.start), "match": parsed.match,
                "example": None, "checks": []}
        if parsed.example is not None:
            text = os_items.resolve(parsed.example, dirs)
            plan["example"] = (text, parsed.example.interpreter) if text is not None else None
        for entry in parsed.check or ():
            if entry is None:
                if plan["example"] is None:
                    missing.append(parsed.example.file)
                plan["checks"].append(("example", None))
            elif entry.builtin:
                plan["checks"].append(("builtin", entry.builtin))
            else:
                plan["checks"].append(("script", code(entry)))
        if missing:
            where = ", ".join(map(str, dirs)) or "no scripts directory"
            raise TaskUnscorable(f"needs {', '.join(map(str, missing))} (not in {where})")
        return plan

    def _machine(self, item: dict) -> Sandbox:
        """The root sandbox where it can be made; else the plain one, for items that do not need root."""
        if self.sandbox_kind != "plain" and self.root_problem is None:
            return os_sandbox_root.RootSandbox(self.limits, self.sandbox_dir)
        if self.sandbox_kind == "root":
            raise TaskUnscorable(f"root sandbox unavailable: {self.root_problem}")
        marker = os_items.needs_root(item, os_items.scripts_dirs(item, self.scripts_dir))
        if marker and self.sandbox_kind == "auto":
            raise TaskUnscorable(f"needs root (its scripts use {marker!r}); root sandbox unavailable: "
                                 f"{self.root_problem}")
        return Sandbox(self.limits, self.sandbox_dir)

    def reset(self, task: Task) -> list[Message]:
        self.close()
        self.item = task.data
        self.plan = self._plan(self.item)
        self.rounds = 0
        self.sandbox = self._machine(self.item)
        self.setup_log = []
        for code, interpreter in self.plan["init"]:
            r = self.sandbox.run(code, timeout=120, shell_state=False, interpreter=interpreter)
            self.setup_log.append({"init_exit": r["exit"], "init_output": r["output"][-300:]})
        if self.plan["start"]:
            self.sandbox.spawn(*self.plan["start"])
        return self.scaffold.build(self.item["description"])

    # --- judging ---
    def judge(self, answer: str | None) -> tuple[bool, dict]:
        match = self.plan["match"]
        if match is not None:
            if "regex" in match:
                ok = answer is not None and re.search(match["regex"], answer) is not None
            elif match["strip"]:
                ok = answer is not None and answer.strip() == match["answer"].strip()
            else:
                ok = answer == match["answer"]
            return ok, {"expected": str(self.item["evaluation"]["match"])}
        # As AgentBench runs a check list: every entry gets (answer, outputs of the entries before it) and must
        # exit 0; its output is passed on. The built-in checks compare the answer with the first output.
        params, reference = [answer if answer is not None else ""], None
        for kind, what in self.plan["checks"]:
            if kind == "builtin":
                ok, output = run_check(what, params[0], params[1] if len(params) > 1 else ""), ""
            else:
                code, interpreter = self.plan["example"] if kind == "example" else what
                r = self.sandbox.run(code, timeout=60, shell_state=False, interpreter=interpreter, args=params)
                ok, output = r["exit"] == 0, r["output"]
                if kind == "example":
                    reference = output[:200]
            if not ok:
                return False, {"reference": reference}
            params.append(output)
        return True, {"reference": reference}

    def _done(self, answer: str | None, invalid: bool = False) -> StepResult:
        if invalid:
            return StepResult("", 0.0, True, {"answer": None}, invalid=True)
        ok, info = self.judge(answer)
        return StepResult("", 1.0 if ok else 0.0, True, dict(info, answer=answer))

    def step(self, action: str) -> StepResult:
        self.rounds += 1
        parsed = parse_action(action)
        if parsed is None:
            return self._done(None, invalid=True)
        kind, body = parsed
        if kind == "answer":
            return self._done(body)
        if kind == "finish":
            return self._done(None)
        r = self.sandbox.run(body)
        out = r["output"]
        if r["timed_out"]:
            out += f"\n[command stopped after {self.limits.command_timeout:.0f} seconds]"
        if len(out) > OUTPUT_LIMIT:
            out = out[:OUTPUT_LIMIT] + CUT_NOTE
        return StepResult(self.observation_template.replace("{observation}", out), 0.0, False, {})

    def parse_ok(self, action: str) -> bool:
        return parse_action(action) is not None

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None


def parse_action(text: str) -> tuple[str, str | None] | None:
    """('bash', code) | ('answer', text) | ('finish', None) | None."""
    m = re.search(r"Act:\s*(bash|finish|answer)", text)
    if not m:
        return None
    if m.group(1) == "bash":
        block = re.search(r"```(?:bash|sh)?\s*\n([\s\S]*?)```", text[m.end():])
        return ("bash", block.group(1).strip()) if block else None
    if m.group(1) == "finish":
        return ("finish", None)
    ans = re.match(r"answer\((.*)\)", text[m.start(1):], re.S)
    return ("answer", ans.group(1)) if ans else None


class OSOracle:
    """Answers match items with the match string; otherwise runs the example script and answers its output
    (or says finish when the task changes the machine and is checked by a script).

    `show_work=True` (what training data wants) runs the item's example script even where the answer is known,
    then answers with what it printed, so the trajectory shows the shell use rather than a one-turn answer.
    `prompt_file` is the environment's: the oracle strips the same observation wrapper from the output."""

    def __init__(self, prompt_file: str | None = None, scripts_dir: str | None = str(DEFAULT_SCRIPTS),
                 show_work: bool = False, observation_template: str | None = None):
        if observation_template is None:
            observation_template = load_scaffold(prompt_file).observation_template if prompt_file \
                else DEFAULT_OBSERVATION
        self.prefix, _, self.suffix = observation_template.partition("{observation}")
        self.scripts_dir = pathlib.Path(scripts_dir) if scripts_dir else None
        self.show_work = show_work

    def _example_code(self, task: Task) -> str | None:
        example = os_items.parse_item(task.data, task.id).example
        if example is None:
            return None
        return os_items.resolve(example, os_items.scripts_dirs(task.data, self.scripts_dir))

    def act(self, conversation: list[Message], task: Task) -> str:
        ev, turn = task.data["evaluation"], n_agent_turns(conversation)
        code = self._example_code(task)
        if "match" in ev and not (self.show_work and code is not None):
            match = ev["match"]
            return f"Think: I know this one.\n\nAct: answer({match.get('answer') if isinstance(match, dict) else match})"
        if turn == 0 and code is not None:
            return f"Think: This script solves it.\n\nAct: bash\n\n```bash\n{code.strip()}\n```"
        if not isinstance(ev.get("check"), list) and not self.show_work:
            return "Think: Done.\n\nAct: finish"
        out = conversation[-1]["value"]
        if out.startswith(self.prefix):
            out = out[len(self.prefix):]
        if self.suffix and out.endswith(self.suffix):
            out = out[: -len(self.suffix)]
        return f"Think: The output is the answer.\n\nAct: answer({out.strip()})"


def aggregate(episodes: Sequence, tasks: Sequence[Task]) -> dict[str, Any]:
    """The paper's OS score: success rate in percent over the items that can be judged here; the others are
    counted apart by reason (a missing item script, a machine without the root sandbox)."""
    reasons: dict[str, int] = {}
    for ep in episodes:
        if ep.outcome == Outcome.UNSCORABLE:
            why = str(ep.info.get("unscorable", ""))
            key = "needs root" if why.startswith("needs root") or "root sandbox unavailable" in why else \
                "missing script" if why.startswith("needs ") else "other"
            reasons[key] = reasons.get(key, 0) + 1
    return {**success_rate(episodes, tasks), "unscorable_reasons": reasons}


def _sandbox_problem() -> str | None:
    from agentlm.envs.os_sandbox import bwrap_available
    return bwrap_available()


SPEC = EnvSpec(
    name="os", env=OSEnv, load_tasks=load_tasks, group="held_in", paper_task="OS",
    metric=Metric("success rate", aggregate),
    oracle=OSOracle, oracle_options={"prompt_file": None, "scripts_dir": str(DEFAULT_SCRIPTS), "show_work": False},
    action_format=ActionFormat(r"^Act:", thought_prefix="Think: ", separator="\n\n"),
    options={"prompt_file": None, "scripts_dir": str(DEFAULT_SCRIPTS), "sandbox_dir": None, "sandbox": "auto"},
    executables=("bwrap",), check=_sandbox_problem, install_hint="apt-get install bubblewrap (make install)",
    task_formats="AgentBench os_interaction items: a JSON list or object, JSONL, a folder of them, or AgentBench's "
                 "os_interaction/data root (each folder with its scripts/<n>)",
    description="AgentBench OS interaction: bash in a bubblewrap sandbox, checked by answer or check scripts")
