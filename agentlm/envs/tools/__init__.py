"""A kit for tool-use environments: declare a domain (tools as typed Python functions, a fresh world per episode,
task templates, a success checker) and get an agentlm Environment, a text-format and a function-calling agent
protocol, oracles and a registry entry (`domain_spec`), which evaluation and the data pipeline read like any
other environment's. Guide: docs/new_domains.md.
"""
from __future__ import annotations

from agentlm.envs.tools.domain import TEST, TRAIN, Domain, TaskTemplate, Verdict, load_domain, load_tasks
from agentlm.envs.tools.env import ToolEnv
from agentlm.envs.tools.env_spec import domain_spec, register_domain
from agentlm.envs.tools.function_calling import FunctionCallingAgent, openai_tools
from agentlm.envs.tools.oracle import FunctionCallingOracle, TextOracle
from agentlm.envs.tools.schema import ArgumentError, tool_schema


__all__ = ["TEST", "TRAIN", "ArgumentError", "Domain", "FunctionCallingAgent", "FunctionCallingOracle", "TaskTemplate",
           "TextOracle", "ToolEnv", "Verdict", "domain_spec", "load_domain", "load_tasks", "openai_tools",
           "register_domain", "tool_schema"]
