"""The data pipeline on tool-use domains (agentlm.envs.tools): a source per domain, and the function-calling teacher.

`domain_source("back_office", split="train", n=60)` returns a source (configs/pipeline/domain_*.py) whose tasks are
the domain's generated instances of its training templates (kind "env_tasks": the registered environment's own
loader), played in its ToolEnv; rollouts, CoT annotation, filtering and export then run on it as on any other
environment. A domain outside agentlm is named by reference ("package.module[:ATTR]"): the source records it and
the run registers it. With `teacher_protocol="function_calling"` the teacher is asked over OpenAI function
calling (tools=...), and its replies are recorded in the text format.
"""
from __future__ import annotations

from typing import Any

from agentlm.envs.base import Message
from agentlm.envs.tools import Domain, register_domain
from agentlm.envs.tools.domain import domain_ref
from agentlm.envs.tools.function_calling import openai_tools, reply_from_message, to_function_messages
from data_pipeline.defaults import source
from data_pipeline.teacher import REFUSAL, ContentFailure


def domain_source(domain: Domain | str, split: str = "train", n: int = 60, seed: int = 0, method: str = "rollout",
                  teacher_protocol: str = "text", tasks: str = "", **kw):
    """A data_pipeline source for a tool domain (`tasks` = a JSONL file instead of generated instances)."""
    ref = domain_ref(domain)
    name = register_domain(ref)
    return source("env_tasks", name, method=method, path=tasks or f"builtin:{split}:{n}:{seed}", split=split,
                  domain=ref, env_kwargs={"teacher_protocol": teacher_protocol}, **kw)


def function_calling_teacher_reply(teacher, domain: Domain, conversation: list[Message], *, stage: str,
                                   validate=None) -> str:
    """One text-format reply from a data_pipeline TeacherClient asked over function calling.

    Same contract as TeacherClient.chat: transport failures raise TeacherError; a reply that is empty, a refusal
    or rejected by `validate` is asked again (`content_retries` times, each cached separately) and then raised
    as ContentFailure carrying the last reply, which the caller plays as it is."""
    messages = to_function_messages(conversation, domain, teacher.system)
    tools = openai_tools(domain)
    reason, text = "", ""
    for attempt in range(teacher.content_retries + 1):
        response: dict[str, Any] = teacher.chat_messages(messages, stage=stage, tools=tools, attempt=attempt)
        text = reply_from_message({"content": response.get("text"), "tool_calls": response.get("tool_calls")})
        if not text.strip():
            reason = "empty reply"
        elif REFUSAL.search(text):
            reason = "refusal"
        else:
            reason = validate(text) if validate is not None else None
        if reason is None:
            return text
        teacher.ledger.record_content_failure(stage, gave_up=attempt == teacher.content_retries)
    raise ContentFailure(reason, text)
