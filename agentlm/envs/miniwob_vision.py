"""MiniWoB++ seen as pixels: observation = screenshot + instruction, actions = click x,y / type text / press key.

The same tasks and browser as `agentlm.envs.miniwob`, but the agent gets no element tree. Each human turn is a list
of content parts (agentlm.data.images): the instruction text and one screenshot of the task area. The screenshot is
MiniWoB's 160 x 210 task area cropped to the rows a patch grid covers (`crop_height`, default 208) and shrunk by
`downscale` (default 2: 80 x 104 pixels, 10 x 13 patches of 8); coordinates in actions are in that image's pixels:

    Act: click 40,52           (x right, y down, in screenshot pixels)
    Act: type "some text"      (types into the focused element: click it first)
    Act: press "Enter"

Screenshots are written once, content-addressed (`<sha256>.png`, atomic) under `image_dir` (default the agentlm
cache), and referenced by path + sha256, so episode records and exported rows stay plain JSON.

Scripted solving: the observation message also carries `oracle` (the text page of `agentlm.envs.miniwob` and each
element's box in screenshot pixels), a privileged view for `VisionSolver` only. It is not part of the value a model
reads; exporters keep only from/value/loss. Reward: success rate, as for the text MiniWoB.
"""
from __future__ import annotations

import pathlib
import re
from typing import Any

import numpy as np

from agentlm.cache import cache_root, write_atomic
from agentlm.envs.base import Message, StepResult, Task
from agentlm.envs.household import parse_action as parse_act_line
from agentlm.envs.miniwob import MiniWoBEnv, aggregate, browser_problem
from agentlm.envs.prompts import default_scaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric

INSTRUCTION = """You are using a web page to complete a task. I show you the task and a screenshot of the page. Each
reply holds an optional short thought and exactly one action:

Think: the button is at the top left.
Act: click 20,40

Actions: click X,Y (screenshot pixels, x to the right, y down); type "text" (into the focused element: click it
first); press "Enter" (or another key). After each action I show you the page again."""

# tasks the scripted solver plays without a <select> (no pixel-level action picks an option of a native select)
VISION_TASKS = ("click-button", "click-checkboxes", "click-dialog", "click-link", "click-option", "enter-text",
                "focus-text", "login-user")
_ACTION = re.compile(r'^(?:(click)\s+(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)|(type|press)\s+"((?:[^"\\]|\\.)*)")\s*$',
                     re.I)


def parse_action(text: str) -> tuple[str, Any] | None:
    """("click", (x, y)) | ("type", text) | ("press", key), or None when the reply holds no valid action."""
    line = parse_act_line(text)
    m = _ACTION.match(line.strip()) if line is not None else None
    if not m:
        return None
    if m.group(1):
        return "click", (float(m.group(2)), float(m.group(3)))
    return m.group(4).lower(), m.group(5).replace('\\"', '"')


def load_tasks(path: str, split: str = "dev") -> list[Task]:
    """"builtin:N[:S]" (seeds S..S+N-1, default S=0, of each task in VISION_TASKS; training data takes seeds far
    from the evaluation's) or a JSONL/JSON of {task, seed} as for miniwob."""
    from agentlm.envs import miniwob

    if str(path).startswith("builtin"):
        n, _, start = str(path).partition(":")[2].partition(":")
        seeds = range(int(start or 0), int(start or 0) + int(n or 1))
        return [make_task(name, seed) for name in VISION_TASKS for seed in seeds]
    return [make_task(t.data["task"], t.data["seed"]) for t in miniwob.load_tasks(path, split)]


def make_task(name: str, seed: int = 0) -> Task:
    return Task(id=f"miniwob_vision_{name}_{seed}", env="miniwob_vision", data={"task": name, "seed": int(seed)})


class MiniWoBVisionEnv(MiniWoBEnv):
    """Observations are content-part lists (StepResult.observation holds one, not a string)."""

    name = "miniwob_vision"

    def __init__(self, max_rounds: int = 10, prompt_file: str | None = None, episode_seconds: float = 600.0,
                 downscale: int = 2, crop_height: int = 208, image_dir: str | None = None):
        super().__init__(max_rounds=max_rounds, episode_seconds=episode_seconds)
        self.scaffold = load_scaffold(prompt_file) if prompt_file else default_scaffold(INSTRUCTION)
        if downscale < 1 or crop_height % downscale:
            raise ValueError(f"miniwob_vision: crop_height={crop_height} must be a multiple of downscale={downscale}")
        self.downscale, self.crop_height = int(downscale), int(crop_height)
        self.image_dir = pathlib.Path(image_dir) if image_dir else cache_root() / "miniwob_vision" / "screens"

    def screenshot(self) -> np.ndarray:
        """The task area as the agent sees it: uint8 [crop_height / downscale, 160 / downscale, 3]."""
        shot = np.asarray(self.obs["screenshot"], np.uint8)[: self.crop_height]
        d = self.downscale
        h, w = shot.shape[0] // d * d, shot.shape[1] // d * d
        return shot[:h, :w].reshape(h // d, d, w // d, d, 3).mean(axis=(1, 3)).round().astype(np.uint8)

    def _image_part(self) -> dict:
        from agentlm.data.images import encode_png, sha256

        pixels = self.screenshot()
        data = encode_png(pixels)
        digest = sha256(data)
        path = self.image_dir / f"{digest}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
        return {"type": "image", "path": str(path), "sha256": digest, "width": int(pixels.shape[1]),
                "height": int(pixels.shape[0])}

    def _boxes(self) -> dict[int, list[float]]:
        d = self.downscale
        return {int(e["ref"]): [float(np.ravel(e[k])[0]) / d for k in ("left", "top", "width", "height")]
                for e in self.obs["dom_elements"] if int(e["ref"]) > 0}

    def _parts(self, text: str) -> list[dict]:
        return [{"type": "text", "text": text}, self._image_part()]

    def _task_text(self) -> str:
        return f"Task: {self.obs['utterance']}"

    def reset(self, task: Task) -> list[Message]:
        messages = super().reset(task)     # the scaffold around the task text (`_observe` below gives no page)
        oracle = {"page": MiniWoBEnv._observe(self), "boxes": self._boxes()}
        return messages[:-1] + [{**messages[-1], "value": self._parts(messages[-1]["value"]), "oracle": oracle}]

    def _observe(self) -> str:          # the text env calls this for its observations; the page is in `oracle`
        return self._task_text()

    def step(self, action: str) -> StepResult:
        from miniwob.action import ActionTypes

        parsed = parse_action(action)
        if parsed is None:
            return StepResult("", 0.0, True, {"invalid": True}, invalid=True)
        verb, arg = parsed
        make = self.env.unwrapped.create_action
        if verb == "click":
            x, y = arg
            h, w = self.crop_height // self.downscale, 160 // self.downscale
            if not (0 <= x < w and 0 <= y < h):
                return StepResult(self._parts(f"({x:g}, {y:g}) is outside the {w}x{h} screenshot.\n\n"
                                              + self._task_text()))
            act = make(ActionTypes.CLICK_COORDS, coords=np.array([(x + 0.5) * self.downscale,
                                                                  (y + 0.5) * self.downscale], np.float32))
        elif verb == "type":
            act = make(ActionTypes.TYPE_TEXT, text=arg)
        else:
            act = make(ActionTypes.PRESS_KEY, key=arg)
        self.obs, _, terminated, truncated, info = self.env.step(act)
        if terminated or truncated:
            raw = float(info.get("raw_reward", 0.0))
            return StepResult("", 1.0 if raw > 0 else 0.0, True,
                              {"raw_reward": raw, "env_reward": float(info.get("env_reward", 0.0)),
                               "reason": info.get("reason")})
        return StepResult(self._parts(self.scaffold.observe(self._task_text())))

    def parse_ok(self, action: str) -> bool:
        return parse_action(action) is not None


class VisionSolver:
    """Scripted oracle: plans with the text MiniWoB solvers on the privileged page, then turns each element action
    into pixel actions at the element's box centre (type = click the field, then type)."""

    def __init__(self):
        self.plans: dict[str, list[str]] = {}

    def act(self, conversation: list[Message], task: Task) -> str:
        from agentlm.envs.agents import n_agent_turns
        from agentlm.envs.miniwob_solvers import SOLVERS, Page

        name, turn = task.data["task"], n_agent_turns(conversation)
        if turn == 0:
            oracle = conversation[-1].get("oracle")
            if oracle is None or name not in SOLVERS:
                raise ValueError(f"no scripted vision solver for MiniWoB task {name!r} (or no oracle view)")
            boxes = {int(k): v for k, v in oracle["boxes"].items()}
            self.plans[task.id] = [a for step in SOLVERS[name](Page(oracle["page"])) for a in _pixels(step, boxes)]
        plan = self.plans[task.id]
        return f"Think: step {turn + 1} of {len(plan)}.\nAct: {plan[min(turn, len(plan) - 1)]}"


def _pixels(step: str, boxes: dict[int, list[float]]) -> list[str]:
    m = re.match(r'^(click|type|select) \[(\d+)\](?: (".*"))?$', step)
    if not m or m.group(1) == "select":
        raise ValueError(f"the vision solver cannot play {step!r}")
    left, top, width, height = boxes[int(m.group(2))]
    click = f"click {int(left + width / 2)},{int(top + height / 2)}"
    return [click] if m.group(1) == "click" else [click, f"type {m.group(3)}"]


SPEC = EnvSpec(
    name="miniwob_vision", env=MiniWoBVisionEnv, load_tasks=load_tasks, group="held_out", paper_task=None,
    metric=Metric("success rate", aggregate), oracle="agentlm.envs.miniwob_vision:VisionSolver",
    action_format=ActionFormat(r"^\s*(Act|ACTION|Action)\s*:", thought_prefix="Think: "),
    options={"prompt_file": None, "episode_seconds": 600.0, "downscale": 2, "crop_height": 208, "image_dir": None},
    requires=("gymnasium", "miniwob", "selenium", "PIL"), check=browser_problem,
    install_hint="pip install -r requirements.txt; apt-get install chromium chromium-driver",
    default_tasks="builtin:5",
    task_formats="builtin:N[:first seed] (N seeds of each task the vision solver plays), or JSONL/JSON of {task, seed}",
    note="screenshots + pixel actions; not the paper's MiniWoB++ setting",
    description="MiniWoB++ from screenshots: click x,y / type / press in headless Chromium")
