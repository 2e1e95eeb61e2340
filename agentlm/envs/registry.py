"""The one table of environments: every consumer (`agentlm.envs.run`, `agentlm.eval.agent`, `data_pipeline`)
looks environments up here, and nowhere else.

An environment declares its `EnvSpec` once, as the module-level `SPEC` (or a list `SPECS`) of the module that
defines it. The table is filled, on first use, from
- the modules in `BUILTIN` (this package's environments),
- the Python entry-point group `agentlm.envs` (an installed package adds environments with no edit here:
  `[project.entry-points."agentlm.envs"] my_env = "my_pkg.my_env:SPEC"`),
- the "module:attr" or "module" references in the `AGENTLM_ENVS` environment variable (comma-separated),
and by `register(spec)` / `register_from("module:attr")` calls (a config's `env_modules` list goes through
`register_modules`: configs/eval/agent.py and every data_pipeline config have one).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import threading
from typing import Any, Iterable

from agentlm.envs.spec import EnvSpec, resolve

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agentlm.envs"
ENV_VAR = "AGENTLM_ENVS"
BUILTIN: tuple[str, ...] = (
    # one module per line; each defines SPEC or SPECS
    "agentlm.envs.db",
    "agentlm.envs.os_env",
    "agentlm.envs.kg",
    "agentlm.envs.webshop",
    "agentlm.envs.household",
    "agentlm.envs.sciworld",
    "agentlm.envs.miniwob",
    "agentlm.envs.domains.back_office",
    "agentlm.envs.domains.triage",
    "agentlm.envs.domains.tutor",
    "agentlm.envs.hotpotqa",
    "agentlm.envs.card_game",
    "agentlm.envs.rewoo",
)

_SPECS: dict[str, EnvSpec] = {}
_ORIGIN: dict[str, str] = {}
_LOADED = False
_LOCK = threading.RLock()


def register(spec: EnvSpec, *, origin: str = "register()", replace: bool = False) -> EnvSpec:
    """Adds `spec` to the table. Registering the same spec twice is a no-op; a different spec under a taken
    name is an error unless `replace`."""
    if not isinstance(spec, EnvSpec):
        raise TypeError(f"{origin}: expected an agentlm.envs.spec.EnvSpec, got {type(spec).__name__}")
    with _LOCK:
        old = _SPECS.get(spec.name)
        if old is not None and old != spec and not replace:
            raise ValueError(f"environment {spec.name!r} from {origin} is already registered by {_ORIGIN[spec.name]}")
        _SPECS[spec.name], _ORIGIN[spec.name] = spec, origin
    return spec


def _specs_of(obj: Any, ref: str) -> list[EnvSpec]:
    if callable(obj) and not isinstance(obj, EnvSpec):
        obj = obj()
    if isinstance(obj, EnvSpec):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes, dict)):
        specs = list(obj)
        if all(isinstance(s, EnvSpec) for s in specs):
            return specs
    raise TypeError(f"{ref!r} is not an EnvSpec, a list of them, or a function returning either")


def register_from(ref: str) -> list[EnvSpec]:
    """Registers the spec(s) named by "module:attr", or a module's `SPEC` / `SPECS`."""
    _load()  # the built-in entries first, so a clash names both sides
    if ":" in ref:
        obj = resolve(ref)
    else:
        try:
            module = importlib.import_module(ref)
        except ImportError as e:
            raise ValueError(f"cannot import environment module {ref!r}: {e}") from e
        obj = getattr(module, "SPECS", None) or getattr(module, "SPEC", None)
        if obj is None:
            raise ValueError(f"environment module {ref!r} defines neither SPEC nor SPECS")
    return [register(s, origin=ref) for s in _specs_of(obj, ref)]


def register_modules(refs: Iterable[str]) -> list[str]:
    """Registers every "module" or "module:attr" of a config's `env_modules` list; returns the names they hold."""
    return [spec.name for ref in refs for spec in register_from(str(ref))]


def _load() -> None:
    global _LOADED
    with _LOCK:
        if _LOADED:
            return
        _LOADED = True
        for module in BUILTIN:
            register_from(module)
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                for spec in _specs_of(ep.load(), ep.value):
                    register(spec, origin=f"entry point {ep.name} = {ep.value}")
            except Exception as e:  # one broken plug-in must not hide the others; the message names it
                log.error("entry point %s = %s (group %s) failed to load: %s", ep.name, ep.value,
                          ENTRY_POINT_GROUP, e)
        for ref in filter(None, (r.strip() for r in os.environ.get(ENV_VAR, "").split(","))):
            register_from(ref)


def get(name: str) -> EnvSpec:
    _load()
    if name not in _SPECS:
        raise ValueError(f"unknown environment {name!r}; registered: {', '.join(sorted(_SPECS))} (add one with an "
                         f"'{ENTRY_POINT_GROUP}' entry point, {ENV_VAR}=module:attr, or registry.register)")
    return _SPECS[name]


def names(group: str | None = None) -> list[str]:
    _load()
    return sorted(n for n, s in _SPECS.items() if group is None or s.group == group)


def specs() -> dict[str, EnvSpec]:
    _load()
    return dict(_SPECS)
