"""MiniWoB++ (held-out): web tasks in headless Chromium, seen as text and driven by a small action language.

The agent sees the task instruction and the page as an indented element tree, one element per line with its
ref number: `[5] button "okay"`, `[7] input_text value="" (focused)`, `[9] select options=["a", "b"]`. It replies
with an optional thought and one action:

    Act: click [5]
    Act: type [7] "some text"      (focuses the element, then types)
    Act: select [9] "b"            (picks an option of a <select>)
    Act: press "Enter"

Reward is the paper's success rate: 1 when MiniWoB's raw reward is positive (the task was done right), else 0;
MiniWoB's own time-discounted reward is kept in info. The in-page episode timer (10 s by default) is stretched to
`episode_seconds` so a slow model is judged on what it does, not on how fast it thinks.
Needs Debian's chromium + chromium-driver (found on PATH, or MINIWOB_CHROME_BINARY / MINIWOB_CHROMEDRIVER).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
from typing import Any, Sequence

from agentlm.envs.base import Environment, Episode, Message, StepResult, Task
from agentlm.envs.household import parse_action as parse_act_line
from agentlm.envs.prompts import PromptScaffold, default_scaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, episode_counts, scored_episodes

INSTRUCTION = """You are using a web page to complete a task. I show you the task and the page's elements, one per line
as `[ref] tag "text"` with their values and state, indented under their parents. Each reply holds an optional
short thought and exactly one action:

Think: the Submit button is [12].
Act: click [12]

Actions: click [ref]; type [ref] "text" (focuses the element and types the text); select [ref] "option text"
(for a select element); press "Enter" (or another key). After each action I show you the page again."""

_ACTION = re.compile(r'^(click|type|select|press)\s*(?:\[?(\d+)\]?)?\s*(?:"((?:[^"\\]|\\.)*)")?\s*$', re.I)


def browser_problem() -> str | None:
    """None when headless Chromium can be driven here, else why not."""
    chrome = os.environ.get("MINIWOB_CHROME_BINARY") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("MINIWOB_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chrome or not driver:
        return "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    os.environ.setdefault("MINIWOB_CHROME_BINARY", chrome)
    os.environ.setdefault("MINIWOB_CHROMEDRIVER", driver)
    return None


def parse_action(text: str) -> tuple[str, int | None, str | None] | None:
    line = parse_act_line(text)
    if line is None:
        return None
    m = _ACTION.match(line.strip())
    if not m:
        return None
    verb, ref, arg = m.group(1).lower(), m.group(2), m.group(3)
    arg = arg.replace('\\"', '"') if arg is not None else None
    if verb == "click" and ref is None or verb in ("type", "select") and (ref is None or arg is None) \
            or verb == "press" and arg is None:
        return None
    return verb, int(ref) if ref else None, arg


def render_dom(elements: Sequence[dict], select_options: dict[int, list[str]] | None = None,
               checked: dict[int, bool] | None = None) -> str:
    """The page as text: an indented tree of elements with refs, text, values and focus. Text nodes (negative
    refs in MiniWoB, not clickable) are shown without a ref."""
    children: dict[int, list[dict]] = {}
    for el in elements:
        children.setdefault(int(el["parent"]), []).append(el)
    lines: list[str] = []
    select_options = select_options or {}

    def visit(el: dict, depth: int) -> None:
        tag = el["tag"]
        ref = int(el["ref"])
        parts = ([f"[{ref}]"] if ref > 0 else []) + ["text" if tag == "t" else tag]
        if el.get("text"):
            parts.append(json.dumps(el["text"], ensure_ascii=False))
        value = el.get("value")
        if tag in ("input_checkbox", "input_radio"):
            parts.append("checked" if (checked or {}).get(ref) else "unchecked")
        elif tag.startswith("input") or tag == "textarea":
            parts.append(f"value={json.dumps(str(value or ''), ensure_ascii=False)}")
        if el.get("id"):
            parts.append(f"id={el['id']}")
        if el.get("classes") and tag not in ("t",):
            parts.append(f"class={json.dumps(str(el['classes']))}")
        if int(el["ref"]) in select_options:
            parts.append(f"options={json.dumps(select_options[int(el['ref'])], ensure_ascii=False)}")
        flags = el.get("flags")
        if flags is not None and len(flags) and int(flags[0]):
            parts.append("(focused)")
        lines.append("  " * depth + " ".join(parts))
        for child in children.get(int(el["ref"]), []):
            visit(child, depth + 1)

    for root in children.get(0, []):
        visit(root, 0)
    return "\n".join(lines)


def load_tasks(path: str, split: str = "dev") -> list[Task]:
    """JSONL/JSON of {"task": "click-button", "seed": 0}; or "builtin:N" (N seeds of each scripted task)."""
    spec = str(path)
    if spec.startswith("builtin"):
        from agentlm.envs.miniwob_solvers import SOLVERS
        n = int(spec.partition(":")[2] or 1)
        return [make_task(name, seed) for name in sorted(SOLVERS) for seed in range(n)]
    p = pathlib.Path(spec)
    text = p.read_text(encoding="utf-8")
    rows = json.loads(text) if p.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("task"), str):
            raise ValueError(f"{p} item {i}: needs 'task' (a MiniWoB task name) and optionally 'seed'")
        out.append(make_task(r["task"], int(r.get("seed", 0))))
    return out


def make_task(name: str, seed: int = 0) -> Task:
    return Task(id=f"miniwob_{name}_{seed}", env="miniwob", data={"task": name, "seed": int(seed)})


class MiniWoBEnv(Environment):
    name = "miniwob"

    def __init__(self, max_rounds: int = 10, prompt_file: str | None = None, episode_seconds: float = 600.0):
        self.max_rounds, self.episode_seconds = max_rounds, episode_seconds
        self.scaffold: PromptScaffold = load_scaffold(prompt_file) if prompt_file else default_scaffold(INSTRUCTION)
        self.env = None
        self.subdomain: str | None = None
        self.obs: dict | None = None

    def _make(self, subdomain: str):
        import gymnasium
        import miniwob
        problem = browser_problem()
        if problem:
            raise RuntimeError(problem)
        gymnasium.register_envs(miniwob)
        env_id = f"miniwob/{subdomain}-v1"
        if env_id not in gymnasium.registry:
            raise ValueError(f"unknown MiniWoB task {subdomain!r}")
        if self.env is not None:
            self.env.close()
        self.env = gymnasium.make(env_id)
        self.subdomain = subdomain

    @property
    def driver(self):
        return self.env.unwrapped.instance.driver

    def _observe(self) -> str:
        elements = self.obs["dom_elements"]
        selects = [int(e["ref"]) for e in elements if e["tag"] == "select"]
        options = {}
        for ref in selects:
            options[ref] = self.driver.execute_script(
                "var el = core.previousDOMInfo[arguments[0]];"
                "return el ? Array.from(el.options).map(function (o) { return o.text.trim(); }) : [];", ref)
        boxes = [int(e["ref"]) for e in elements if e["tag"] in ("input_checkbox", "input_radio")]
        checked = {}
        if boxes:
            states = self.driver.execute_script(
                "return arguments[0].map(function (r) { var el = core.previousDOMInfo[r]; return !!(el && el.checked); });",
                boxes)
            checked = dict(zip(boxes, states))
        return f"Task: {self.obs['utterance']}\n\nPage:\n{render_dom(elements, options, checked)}"

    def reset(self, task: Task) -> list[Message]:
        try:
            return self._reset(task)
        except Exception:
            self.close()  # a browser that failed once is not reused: the next episode starts a fresh one
            raise

    def _reset(self, task: Task) -> list[Message]:
        if self.subdomain != task.data["task"]:
            self._make(task.data["task"])
        self.obs, _ = self.env.reset(seed=int(task.data.get("seed", 0)))
        if self.episode_seconds:
            ms = int(self.episode_seconds * 1000)
            self.driver.execute_script(
                "core.EPISODE_MAX_TIME = arguments[0]; clearTimeout(core.EP_TIMER);"
                "core.ept0 = new Date().getTime();"
                "core.EP_TIMER = setTimeout(function () { core.endEpisode(-1, false, 'timed out'); }, arguments[0]);",
                ms)
        self.refs = {int(e["ref"]) for e in self.obs["dom_elements"]}
        return self.scaffold.build(self._observe())

    def step(self, action: str) -> StepResult:
        from miniwob.action import ActionTypes
        parsed = parse_action(action)
        if parsed is None:
            return StepResult("", 0.0, True, {"invalid": True}, invalid=True)
        verb, ref, arg = parsed
        if ref is not None and ref not in self.refs:
            return StepResult(self.scaffold.observe(f"There is no element [{ref}] on the page.\n\n{self._observe()}"))
        make = self.env.unwrapped.create_action
        if verb == "click":
            act = make(ActionTypes.CLICK_ELEMENT, ref=ref)
        elif verb == "type":
            act = make(ActionTypes.FOCUS_ELEMENT_AND_TYPE_TEXT, ref=ref, text=arg)
        elif verb == "press":
            act = make(ActionTypes.PRESS_KEY, key=arg)
        else:
            result = self.driver.execute_script(
                "var el = core.previousDOMInfo[arguments[0]];"
                "if (!el || el.tagName !== 'SELECT') return 'not a select element';"
                "for (var i = 0; i < el.options.length; i++) { if (el.options[i].text.trim() === arguments[1]) {"
                "  el.selectedIndex = i; el.dispatchEvent(new Event('change', {bubbles: true})); return true; } }"
                "return 'no such option';", ref, arg)
            if result is not True:
                return StepResult(self.scaffold.observe(f"Cannot select: {result}.\n\n{self._observe()}"))
            act = make(ActionTypes.NONE)
        self.obs, _, terminated, truncated, info = self.env.step(act)
        self.refs = {int(e["ref"]) for e in self.obs["dom_elements"]}
        if terminated or truncated:
            raw = float(info.get("raw_reward", 0.0))
            return StepResult("", 1.0 if raw > 0 else 0.0, True,
                              {"raw_reward": raw, "env_reward": float(info.get("env_reward", 0.0)),
                               "reason": info.get("reason")})
        return StepResult(self.scaffold.observe(self._observe()))

    def parse_ok(self, action: str) -> bool:
        return parse_action(action) is not None

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
            self.subdomain = None


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """Success rate in percent (the paper's MiniWoB++ metric): an episode succeeds when MiniWoB's raw reward is
    positive; the time-discounted reward and each task's success rate ride along."""
    names = {t.id: t.data["task"] for t in tasks}
    scored = scored_episodes(episodes)
    ok = [bool(e.info.get("success", e.reward > 0)) for e in scored]
    rate = sum(ok) / len(ok) if ok else 0.0
    by_task: dict[str, list[bool]] = {}
    for e, good in zip(scored, ok):
        by_task.setdefault(names.get(e.task_id, "?"), []).append(good)
    discounted = [float(e.info.get("env_reward", 0.0)) for e in scored]
    return {"score": 100.0 * rate, "success_rate": rate,
            "mean_env_reward": sum(discounted) / len(discounted) if discounted else 0.0,
            **{f"{k}_success": sum(v) / len(v) for k, v in sorted(by_task.items())}, **episode_counts(episodes)}


SPEC = EnvSpec(
    name="miniwob", env=MiniWoBEnv, load_tasks=load_tasks, group="held_out", paper_task="MiniWoB++",
    metric=Metric("success rate", aggregate), oracle="agentlm.envs.miniwob_solvers:ScriptedSolver",
    action_format=ActionFormat(r"^\s*(Act|ACTION|Action)\s*:", thought_prefix="Think: "),
    options={"prompt_file": None, "episode_seconds": 600.0}, requires=("gymnasium", "miniwob", "selenium"),
    check=browser_problem, install_hint="pip install -r requirements.txt; apt-get install chromium chromium-driver",
    default_tasks="builtin:5",
    task_formats="builtin:N (N seeds of each task the scripted oracle solves), or JSONL/JSON of {task, seed}",
    description="MiniWoB++ (held out): web tasks in headless Chromium")
