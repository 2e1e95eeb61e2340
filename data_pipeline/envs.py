"""The pipeline's access to environments: everything comes from agentlm's environment registry
(`agentlm.envs.registry`), the one table evaluation and `envs.run` read too.

A run first registers what its config names (`env_modules`: modules or "module:attr" holding EnvSpecs; a source's
`domain`: a tool domain by reference) and the pipeline's own test environment. A source then builds its environment
from the registry with its `env_kwargs` (environment options) and its oracle with `oracle_kwargs` (the pipeline's
choices, e.g. the DB oracle answering with what the gold SQL returned; see data_pipeline.defaults.source).
`env_factory` / `oracle` ("module:Class") in a source replace the registered ones for that source only.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from agentlm.envs import registry
from agentlm.envs.base import Environment
from agentlm.envs.spec import ActionFormat, resolve

# Environments the pipeline itself declares (the machinery tests' two-step arithmetic world).
PIPELINE_ENV_MODULES = ("data_pipeline.testing.toy_env",)


def register_env_modules(cfg) -> list[str]:
    """Registers the pipeline's own environments, the config's `env_modules` and its sources' tool domains."""
    from agentlm.envs.tools import register_domain

    names = registry.register_modules([*PIPELINE_ENV_MODULES, *(cfg.get("env_modules") or ())])
    for src in cfg.sources.values():
        if src.get("domain"):
            names.append(register_domain(src.domain))
    return names


def _kwargs(options: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in dict(options or {}).items()}


def env_factory(env: str, factory: str = "", max_rounds: int | None = None,
                **kwargs) -> Callable[[], Environment]:
    """A zero-argument constructor for `env` (or for the class named by `factory`)."""
    if factory:
        cls = resolve(factory)
        return lambda: cls(**_kwargs(kwargs))
    return registry.get(env).env_factory(max_rounds=max_rounds, **_kwargs(kwargs))


def make_oracle(env: str, oracle: str = "", **kwargs):
    if oracle:
        return resolve(oracle)(**_kwargs(kwargs))
    return registry.get(env).make_oracle(**_kwargs(kwargs))


def source_oracle_kwargs(src) -> dict[str, Any]:
    """The options a source's oracle is built with: the environment options the oracle shares (e.g. the prompt
    file) and the source's `oracle_kwargs`."""
    if src.get("oracle"):
        return _kwargs(src.get("oracle_kwargs"))
    spec = registry.get(src.env)
    shared = {k: v for k, v in _kwargs(src.get("env_kwargs")).items() if k in spec.oracle_options}
    return {**shared, **_kwargs(src.get("oracle_kwargs"))}


class OraclePool:
    """One oracle per (thread, source), reused across tasks and closed at the end of a stage.

    Some oracles are expensive to build (ScienceWorld's starts a Java simulator), so a stage must not make one
    per task; they are not shared between threads because their simulators are not thread-safe."""

    def __init__(self, cfg):
        self.cfg = cfg
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def get(self, source: str):
        cache = self._local.__dict__.setdefault("oracles", {})
        if source not in cache:
            src = self.cfg.sources[source]
            cache[source] = make_oracle(src.env, src.get("oracle", ""), **source_oracle_kwargs(src))
            with self._lock:
                self._all.append(cache[source])
        return cache[source]

    def close(self) -> None:
        with self._lock:
            for o in self._all:
                if hasattr(o, "close"):
                    o.close()
            self._all.clear()


def action_format(env: str) -> ActionFormat:
    return registry.get(env).action_format
