"""The agents and thought writers the pipeline drives environments with.

- `TeacherAgent`: the teacher model plays a task; replies that do not parse as an action are re-asked (content
  retries) and, if still bad, played as-is so the episode records the invalid action. A transport failure that
  survives every retry is remembered so the caller leaves the task undone (a later run retries it).
- `OracleTeacher`: the offline teacher: the environment's gold action with a templated thought before it.
- Thought writers for CoT annotation: `TemplateThoughts` (offline) and `TeacherThoughts` (the teacher explains each
  gold action; the action text is kept byte for byte).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from agentlm.envs.base import Environment, Message, Task
from agentlm.envs.spec import ActionFormat
from data_pipeline.domains import function_calling_teacher_reply
from data_pipeline.envs import action_format, make_oracle
from data_pipeline.teacher import ContentFailure, TeacherClient, TeacherError


class TeacherAgent:
    def __init__(self, teacher: TeacherClient, env: Environment, stage: str = "rollout"):
        self.teacher, self.env, self.stage = teacher, env, stage
        self.transport_error: str | None = None
        self.content_failures = 0

    def _validate(self, text: str) -> str | None:
        return None if self.env.parse_ok(text) else "not a valid action of this environment"

    def act(self, conversation: list[Message], task: Task) -> str:
        try:
            if getattr(self.env, "teacher_protocol", "text") == "function_calling":  # a tool domain's source
                return function_calling_teacher_reply(self.teacher, self.env.domain, conversation, stage=self.stage,
                                                      validate=self._validate)
            return self.teacher.chat(conversation, stage=self.stage, validate=self._validate)
        except ContentFailure as e:
            self.content_failures += 1
            return e.last_text
        except TeacherError as e:
            self.transport_error = str(e)
            raise


def _pick(task: Task, options: list[str], salt: str = "") -> str:
    """A deterministic choice among phrasings, so templated data is not one sentence repeated."""
    h = int(hashlib.sha256((task.id + salt).encode()).hexdigest(), 16)
    return options[h % len(options)]


def _last_observation(conversation: list[Message], limit: int = 120) -> str:
    obs = conversation[-1]["value"].strip() if conversation and conversation[-1]["from"] == "human" else ""
    obs = " ".join(obs.split()).removeprefix("Observation:").strip()  # the label, never quoted (KG cuts replies there)
    return obs if len(obs) <= limit else obs[:limit] + "..."


_DB_OPERATION = {
    "counting": "The question asks how many rows qualify, so I count the rows of {table} that meet the condition.",
    "aggregation": "This needs an aggregate over the matching rows of {table}; the numeric column is stored as "
                   "text, so I cast it before aggregating.",
    "ranking": "I order the rows of {table} by the column in question and take the top one.",
    "other": "I look up the requested value in {table} with a filtered SELECT.",
    "comparison": "I select the rows of {table} that satisfy every condition in the question.",
    "INSERT": "The task asks me to add a row to {table}, so I insert it with exactly the given values.",
    "UPDATE": "The task asks me to change one value in {table}, so I update just the matching row.",
}


def template_thought(env: str, task: Task, conversation: list[Message], action: str) -> str:
    """A short, task-aware thought for a gold action (offline teacher; no model involved)."""
    obs = _last_observation(conversation)
    first = not any(m["from"] == "gpt" and m.get("loss") for m in conversation)
    if env == "db":
        item = task.data
        kind = item["type"][0]
        table = item["table"]["table_name"]
        if "Operation" in action.split("\n", 1)[0]:
            key = "aggregation" if kind.startswith("aggregation") else kind
            return _DB_OPERATION.get(key, _DB_OPERATION["other"]).format(table=table)
        if kind in ("INSERT", "UPDATE", "DELETE"):
            return "The statement ran without an error, so the table now holds the change."
        return _pick(task, [f"The query returned {obs}, which answers the question.",
                            f"The result is {obs}; that is what was asked."], "ans")
    if env == "os":
        obs = re.sub(r"^Output:\s*", "", obs)
        if "bash" in action.split("\n", 1)[0]:
            if first:
                return _pick(task, ["I can find this out directly with a shell command.",
                                    "A short shell pipeline over the files will give the answer."])
            return "I need one more command to get the information."
        if "answer" in action:
            return f"The output was {obs}, so I can answer now."
        return "The task is complete."
    if env == "household":
        return _household_thought(action.split(":", 1)[-1].strip().split("\n", 1)[0], first)
    if env == "toy":
        return "I should look first." if first else "Now I add the numbers I saw."
    verb = action.split(":", 1)[-1].strip().split("\n", 1)[0]
    if first:
        return f"To reach the goal I start with: {verb}."
    return _pick(task, [f"Given what I see ({obs[:60]}), next I {verb}.", f"The next step is to {verb}."],
                 str(len(conversation)))


_HOUSEHOLD_VERBS = [
    (r"^inventory$", "First I check what I am carrying."),
    (r"^look$", "I look around to see what this place holds."),
    (r"^examine (cookbook|recipe)", "The cookbook tells me which ingredients and steps the recipe needs."),
    (r"^examine (.+)", "I take a closer look at the {1}."),
    (r"^go (\w+)", "What I need is not here, so I head {1}."),
    (r"^open (.+)", "The {1} is closed; I open it to get through or see inside."),
    (r"^unlock (.+) with (.+)", "The {1} is locked and the {2} should fit it."),
    (r"^take (.+) from (.+)", "The {1} I need is in the {2}, so I take it."),
    (r"^take (.+)", "I need the {1}, so I pick it up."),
    (r"^(slice|dice|chop) (.+) with (.+)", "The recipe wants the {2} {1}, so I use the {3}."),
    (r"^(cook|roast|fry|grill) (.+) with (.+)", "The {2} has to be cooked, and the {3} does that."),
    (r"^prepare meal$", "I have everything the recipe asks for, so I prepare the meal."),
    (r"^eat (.+)", "The {1} is ready; eating it completes the task."),
    (r"^(put|insert) (.+) (on|into|in) (.+)", "The goal wants the {2} {3} the {4}."),
    (r"^drop (.+)", "I no longer need the {1}, so I drop it."),
]


_PARTICIPLE = {"slice": "sliced", "dice": "diced", "chop": "chopped"}


def _household_thought(command: str, first: bool) -> str:
    for pattern, text in _HOUSEHOLD_VERBS:
        m = re.match(pattern, command.strip(), re.IGNORECASE)
        if m:
            groups = [_PARTICIPLE.get(g.lower(), g) for g in m.groups()]
            thought = text.format(m.group(0), *groups)
            break
    else:
        thought = f"Next I {command}."
    return ("Let me work toward the goal step by step. " + thought) if first else thought


class OracleTeacher:
    """Gold actions from the environment's oracle, each preceded by a templated thought."""

    def __init__(self, env: str, oracle_spec: str = "", oracle=None, **oracle_kwargs):
        self.env = env
        self.oracle = oracle if oracle is not None else make_oracle(env, oracle_spec, **oracle_kwargs)
        self.format: ActionFormat = action_format(env)
        self.transport_error = None
        self.content_failures = 0

    def act(self, conversation: list[Message], task: Task) -> str:
        gold = self.oracle.act(conversation, task)
        _, action = self.format.split(gold)
        if not action:  # the oracle's reply has no recognisable action line: keep it untouched
            return gold
        return self.format.join(template_thought(self.env, task, conversation, action), action)


class TemplateThoughts:
    describe = {"kind": "template"}

    def write(self, env: str, task: Task, conversation: list[Message], action: str) -> str:
        return template_thought(env, task, conversation, action)


ANNOTATE_PROMPT = """You annotate an agent's trajectory with its reasoning.
Below is the interaction so far (the task, the agent's earlier replies, what the environment returned) and the
agent's next action. Write the thought the agent has right before taking this action: one to three sentences
that justify it from what is known at this point. Do not write the action itself or any "Action:" line, and do
not mention that you were shown the action. Reply with the thought only.

=== Interaction so far ===
{history}

=== Next action ===
{action}"""


class TeacherThoughts:
    """The teacher writes the thought before each gold action (the paper's Mind2Web CoT annotation)."""

    def __init__(self, teacher: TeacherClient, stage: str = "annotate", max_history_chars: int = 6000):
        self.teacher, self.stage, self.max_history_chars = teacher, stage, max_history_chars
        self.describe = {"kind": "teacher", **teacher.describe}

    def write(self, env: str, task: Task, conversation: list[Message], action: str) -> str:
        fmt = action_format(env)
        lines = []
        for m in conversation:
            who = "Agent" if m["from"] == "gpt" else "User/Environment"
            lines.append(f"[{who}]\n{m['value'].strip()}")
        history = "\n\n".join(lines)
        if len(history) > self.max_history_chars:
            history = "...\n" + history[-self.max_history_chars:]

        def validate(text: str) -> str | None:
            if re.search(fmt.action_start, text, re.MULTILINE):
                return "the thought contains an action line"
            if len(text) > 1500:
                return "the thought is too long"
            return None

        prompt = ANNOTATE_PROMPT.format(history=history, action=action)
        text = self.teacher.chat([{"from": "human", "value": prompt}], stage=self.stage, validate=validate)
        return " ".join(text.strip().removeprefix("Thought:").removeprefix("Think:").split())


def describe_teacher(teacher: Any) -> dict[str, Any]:
    if isinstance(teacher, TeacherClient):
        return teacher.describe
    return {"kind": "oracle", "thoughts": "templated"}
