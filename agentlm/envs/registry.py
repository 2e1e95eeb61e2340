"""The one table of environments: every consumer (`agentlm.envs.run`, `agentlm.eval.agent`, `data_pipeline`)
looks environments up here, and nowhere else.

An environment declares its `EnvSpec` once, as the module-level `SPEC` (or a list `SPECS`) of the module that
defines it. The table is filled, on first use, from
- the modules in `BUILTIN` (this package's environments),
- the Python entry-point group `agentlm.envs` (an installed package adds environments with no edit here:
  `[project.entry-points."agentlm.envs"] my_env = "my_pkg.my_env:SPEC"`),
- the "module:attr" or "module" references in the `AGENTLM_ENVS` environment variable (comma-separated),
and by `register(spec)` / `register_from("module:attr")` calls (a config's `env_modules` list goes there).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import threading
from typing import Any, Iterable, Sequence

from agentlm.envs.base import Environment, Episode, Task
from agentlm.envs.spec import EnvSpec, resolve

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agentlm.envs"
ENV_VAR = "AGENTLM_ENVS"
BUILTIN: tuple[str, ...] = (
    # one module per line; each defines SPEC or SPECS
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


# -- legacy table, read by consumers not yet moved to specs (issue 14 removes it) -------------------------------

ENVS = {
    # name: (module, environment class, oracle class)
    "db": ("agentlm.envs.db", "DBEnv", "DBOracle"),
    "os": ("agentlm.envs.os_env", "OSEnv", "OSOracle"),
    "household": ("agentlm.envs.household", "HouseholdEnv", "WalkthroughOracle"),
    "sciworld": ("agentlm.envs.sciworld", "SciWorldEnv", "GoldPathOracle"),
    "miniwob": ("agentlm.envs.miniwob", "MiniWoBEnv", None),
    # tool-use domains (agentlm.envs.tools; more in agentlm.envs.domains.DOMAINS)
    "back_office": ("agentlm.envs.domains.back_office", "Env", "Oracle"),
    "triage": ("agentlm.envs.domains.triage", "Env", "Oracle"),
}


def _module(name: str):
    if name not in ENVS:
        raise ValueError(f"unknown environment {name!r}; choose from {sorted(ENVS)}")
    return importlib.import_module(ENVS[name][0])


def env_class(name: str) -> type[Environment]:
    return getattr(_module(name), ENVS[name][1])


def load_tasks(name: str, spec: str, split: str = "dev") -> list[Task]:
    return _module(name).load_tasks(spec, split=split)


def aggregate(name: str, episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    return _module(name).aggregate(episodes, tasks)


def oracle(name: str, **kwargs):
    if name == "miniwob":
        from agentlm.envs.miniwob_solvers import ScriptedSolver
        return ScriptedSolver()
    return getattr(_module(name), ENVS[name][2])(**kwargs)
