"""The agent evaluation's default config, built in code from the environment registry (an installed package needs
no checkout to evaluate); configs/eval/agent.py starts from it and is the file users edit.

Each registered environment gets a section `config.<name>` holding `data_file`, `split`, `limit` (0 = every
item) and `max_rounds` (0 = the environment's own limit) plus the environment's and its oracle's options
(`EnvSpec.section_defaults`; "" keeps an option's declared default). `env_modules` lists modules (or
"module:attr") whose SPECs are registered first; `default_config(env_modules=[...])` gives their sections too.
"""
from __future__ import annotations

from typing import Sequence

from ml_collections import ConfigDict

from agentlm.envs import registry

DEFAULT_TASKS = "db,os,household,sciworld,miniwob"


def add_env_sections(c: ConfigDict) -> ConfigDict:
    """Adds a default section for every registered environment the config has none for."""
    for name, spec in sorted(registry.specs().items()):
        if name not in c:
            c[name] = ConfigDict(spec.section_defaults())
    return c


def default_config(env_modules: Sequence[str] = ()) -> ConfigDict:
    registry.register_modules(env_modules)
    c = ConfigDict()
    c.model = ""  # endpoint base URL (http://host:port/v1), checkpoint directory, or "oracle"
    c.model_name = ""  # served model name; empty = the first one /v1/models lists
    c.label = ""  # name used in reports; empty = model_name or model
    c.api_key = ""
    c.tokenizer = ""  # checkpoint evaluation only
    c.template = "llama2"
    c.system = ""  # extra system message for endpoint agents; empty = the server template's default
    c.max_tokens = 512  # per reply
    # How an endpoint (or the oracle) is spoken to: "text" (the action format as chat text, what AgentLM was
    # trained on) or "function_calling" (OpenAI `tools=` / `tool_calls`; tool-use domains only).
    c.protocol = "text"
    c.context_tokens = 0  # conversation budget checked before each reply (0 = leave it to the model/server)
    c.workers = 4  # episodes in parallel (an endpoint batches their requests; a local model batches them too)
    c.tasks = DEFAULT_TASKS
    c.out = "eval_runs/model"
    c.env_modules = list(env_modules)
    return add_env_sections(c)


def get_config():
    return default_config()
