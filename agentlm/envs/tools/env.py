"""`ToolEnv`: any Domain as an agentlm Environment speaking the text action format.

Each `reset` builds the domain's world afresh (and closes the previous one), so episodes never see each other's
state; one instance runs one episode at a time, as the protocol says. Nothing the agent sends can crash a run:
an unknown tool, arguments that are not JSON or do not fit the signature, and a tool that raises all become an
`Error: ...` observation the agent can react to (and are counted in `info`); a reply in no format gets a
reminder, and after `max_format_errors` such replies in a row the episode ends as an invalid action. Runaway
episodes end at the round limit or on repeated identical actions (decided by agentlm.envs.loop).
"""
from __future__ import annotations

import traceback
from typing import Any

from agentlm.envs.base import Environment, Message, StepResult, Task
from agentlm.envs.prompts import PromptScaffold, default_scaffold, load_scaffold
from agentlm.envs.tools.domain import Domain, Verdict, load_domain
from agentlm.envs.tools.schema import ArgumentError, bind_arguments, takes_world
from agentlm.envs.tools.text_protocol import (OBSERVATION_TEMPLATE, FinalAnswer, FormatError, ToolCall,
                                              format_result, parse_reply, text_instruction)

COUNTERS = ("tool_calls", "tool_errors", "unknown_tool", "malformed_args", "format_errors")


class ToolEnv(Environment):
    """`domain`: a Domain or a reference load_domain understands. Subclasses may set the class attribute
    `domain` instead (so a registry can name a zero-argument class)."""

    domain: Domain | str | None = None
    allow_repeats = False

    def __init__(self, domain: Domain | str | None = None, max_rounds: int | None = None,
                 prompt_file: str | None = None, max_format_errors: int = 3, teacher_protocol: str = "text"):
        ref = domain if domain is not None else type(self).domain
        if ref is None:
            raise ValueError("ToolEnv needs a domain (a Domain, a registered name or 'package.module[:ATTR]')")
        self.domain_ref = ref
        self.domain = load_domain(ref)
        self.name = self.domain.name
        self.max_rounds = max_rounds or self.domain.max_rounds
        self.max_format_errors = max_format_errors
        if teacher_protocol not in ("text", "function_calling"):
            raise ValueError(f"teacher_protocol must be 'text' or 'function_calling', not {teacher_protocol!r}")
        self.teacher_protocol = teacher_protocol
        self.instruction = text_instruction(self.domain.instruction, self.domain.schemas)
        if prompt_file:
            self.scaffold: PromptScaffold = load_scaffold(prompt_file)
        else:
            self.scaffold = default_scaffold(self.instruction)
            self.scaffold.observation_template = OBSERVATION_TEMPLATE
        self.world: Any = None
        self.task: Task | None = None
        self.counts: dict[str, int] = {}
        self.format_streak = 0

    # -- episode -------------------------------------------------------------------------------------------
    def reset(self, task: Task) -> list[Message]:
        self.close()
        self.task = task
        self.counts = {k: 0 for k in COUNTERS}
        self.format_streak = 0
        self.world = self.domain.new_world(task.data)
        return self.scaffold.build(task.data["goal"])

    def _info(self, **extra) -> dict[str, Any]:
        return {**self.counts, "template": self.task.data.get("template") if self.task else None, **extra}

    def step(self, action: str) -> StepResult:
        parsed = parse_reply(action)
        if isinstance(parsed, FormatError):
            self.counts["format_errors"] += 1
            self.format_streak += 1
            if self.format_streak >= self.max_format_errors:
                return StepResult("", 0.0, True, self._info(invalid=parsed.message), invalid=True)
            return self._observe(f"Error: {parsed.message}. Reply with one action in the format described.")
        self.format_streak = 0
        if isinstance(parsed, FinalAnswer):
            return self._finish(parsed.answer)
        return self._observe(self.call(parsed))

    def call(self, call: ToolCall) -> str:
        """The observation text for one tool call (errors included); counts what happened."""
        self.counts["tool_calls"] += 1
        fn = self.domain.by_name.get(call.name)
        if fn is None:
            self.counts["unknown_tool"] += 1
            return f"Error: there is no tool named {call.name!r}. Tools: {', '.join(self.domain.by_name)}."
        if call.error is not None:
            self.counts["malformed_args"] += 1
            return f"Error: {call.error}. Write Action: {call.name}({{\"argument\": value, ...}})."
        try:
            kwargs = bind_arguments(fn, call.args)
        except ArgumentError as e:
            self.counts["malformed_args"] += 1
            return f"Error: {call.name}: {e}."
        try:
            result = fn(self.world, **kwargs) if takes_world(fn) else fn(**kwargs)
        except Exception as e:  # noqa: BLE001 -- a failing tool is an observation, not a crash
            self.counts["tool_errors"] += 1
            self.last_tool_traceback = traceback.format_exc(limit=3)  # for debugging a domain's tools
            return f"Error: {call.name} failed: {type(e).__name__}: {e}"
        text = format_result(result)
        limit = self.domain.observation_limit
        return text if len(text) <= limit else text[:limit] + f"... [truncated, {len(text)} characters in all]"

    def _observe(self, text: str) -> StepResult:
        return StepResult(self.scaffold.observe(text), 0.0, False, self._info())

    def _finish(self, answer: str | None) -> StepResult:
        try:
            verdict = Verdict.of(self.domain.check(self.world, answer, self.task.data))
        except Exception as e:  # noqa: BLE001 -- a broken checker is the harness's error, recorded as such
            raise RuntimeError(f"domain {self.domain.name}: checker failed on {self.task.id}: {e!r}") from e
        return StepResult("", verdict.score, True, self._info(success=verdict.success, answer=answer,
                                                              check=verdict.detail))

    def parse_ok(self, action: str) -> bool:
        """A reply is a valid action when it parses and names a known tool (used by the pipeline's filter)."""
        parsed = parse_reply(action)
        if isinstance(parsed, ToolCall):
            return parsed.error is None and parsed.name in self.domain.by_name
        return isinstance(parsed, FinalAnswer)

    def close(self) -> None:
        if self.world is not None and self.domain.close_world is not None:
            self.domain.close_world(self.world)
        self.world = None
