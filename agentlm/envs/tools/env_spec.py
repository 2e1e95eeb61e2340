"""A tool-use domain as an ordinary entry of the environment registry.

`domain_spec(DOMAIN)` is the whole registration of a worked domain (`SPEC = domain_spec(DOMAIN)` at the end of
its module, plus its line in `registry.BUILTIN` or an entry point). `register_domain(ref)` registers a domain that
lives anywhere importable ("package.module[:ATTR]") when it is first used, so a config can name one without a
module of its own declaring a SPEC.
"""
from __future__ import annotations

from typing import Sequence

from agentlm.envs.base import Task
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, resolve
from agentlm.envs.tools.domain import TEST, Domain, load_domain, load_tasks
from agentlm.envs.tools.env import ToolEnv
from agentlm.envs.tools.evaluation import score
from agentlm.envs.tools.oracle import TextOracle
from agentlm.envs.tools.text_protocol import ACTION_START


def domain_spec(domain: Domain | str, *, group: str = "new_domain", note: str = "",
                metric: Metric | None = None) -> EnvSpec:
    """The EnvSpec of a domain: a ToolEnv bound to it, its generated or file tasks (held-out templates by default),
    the text-format gold oracle, and the success rate over the checker's verdicts (or the domain's own `metric`,
    which should extend that score with the domain's details)."""
    d = load_domain(domain)
    env_cls = type(f"{d.name}_ToolEnv", (ToolEnv,), {"domain": domain, "__module__": __name__,
                                                      "__doc__": f"ToolEnv bound to the {d.name!r} domain."})
    oracle_cls = type(f"{d.name}_TextOracle", (TextOracle,), {"__module__": __name__,
                                                              "__init__": lambda self: TextOracle.__init__(self, d)})

    def tasks(source: str, split: str) -> Sequence[Task]:
        return load_tasks(d, source, split)

    return EnvSpec(
        name=d.name, env=env_cls, load_tasks=tasks, group=group, oracle=oracle_cls,
        metric=metric or Metric("success rate (held-out templates)", score), note=note,
        action_format=ActionFormat(ACTION_START, thought_prefix="Thought: "),
        options={"prompt_file": None, "max_format_errors": 3, "teacher_protocol": "text"},
        default_tasks=f"builtin:{TEST}:50", split=TEST,
        task_formats="builtin:SPLIT[:N[:SEED]] (generated from the domain's train/test templates), or a JSONL "
                     "file of task instances",
        description=f"tool-use domain {d.name!r} ({len(d.tools)} tools)")


def domain_of(spec: EnvSpec) -> Domain | None:
    """The Domain a registry entry plays, or None for an environment that is not a tool domain."""
    env = resolve(spec.env)
    if isinstance(env, type) and issubclass(env, ToolEnv) and env.domain is not None:
        return load_domain(env.domain)
    return None


def register_domain(domain: Domain | str) -> str:
    """Registers the domain (if its name is not yet taken by the same domain) and returns its environment name."""
    from agentlm.envs import registry

    d = load_domain(domain)
    if d.name in registry.names():
        if domain_of(registry.get(d.name)) is not d:
            raise ValueError(f"domain {d.name!r} from {domain!r}: the environment name is taken by another entry "
                             f"({registry.get(d.name).description or 'not this domain'})")
        return d.name
    registry.register(domain_spec(domain), origin=f"register_domain({domain!r})")
    return d.name
