"""The 'instructions' stage: builds the task list (tasks.jsonl) from every enabled source.

Task Derivation sources are deterministic functions of their config (seed, counts), so rerunning the stage adds
only ids that are missing. Self-Instruct sources call the teacher (data_pipeline.self_instruct); without a
teacher endpoint they are skipped with a warning, since an oracle cannot invent tasks.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import ml_collections

from agentlm.envs.base import Task
from agentlm.envs import registry
from agentlm.envs.spec import resolve
from data_pipeline.pipeline import Run
from data_pipeline.sources import db_derive, os_derive
from data_pipeline.store import RecordStore

log = logging.getLogger(__name__)

Deriver = Callable[[str, ml_collections.ConfigDict], list[Task]]


def _ids(source: str, items: list[dict[str, Any]], env: str) -> list[Task]:
    return [Task(f"{source}_{i:05d}", env, item, "train") for i, item in enumerate(items)]


def derive_db(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    return _ids(source, db_derive.derive_items(src.seed, src.n_tables,
                                               with_modifications=src.get("modifications", True)), "db")


def derive_os(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    return _ids(source, os_derive.derive_items(src.seed, src.n), "os")


def derive_household(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    """TextWorld games from generator seeds: the environment builds (and caches) each game from its seed."""
    from data_pipeline.sources.household_seeds import seed_tasks
    return seed_tasks(source, src)


def derive_sciworld(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    from data_pipeline.sources.sciworld_variations import variation_tasks
    return variation_tasks(source, src)


def derive_toy(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    from data_pipeline.testing.toy_env import make_tasks
    return make_tasks(src.n, src.seed, prefix=source)


def derive_file(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    """Tasks from an existing file through the environment's own loader (e.g. agentlm.envs.db:load_tasks)."""
    tasks = resolve(src.loader)(src.path)
    return [Task(f"{source}_{i:05d}", t.env, t.data, t.split) for i, t in enumerate(tasks)]


def derive_env_tasks(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    """Tasks from the registered environment's own item source (`path`: a file or builtin:..., "" = its default),
    e.g. generated instances of a tool domain's training templates."""
    tasks = registry.get(src.env).tasks(src.get("path", ""), src.get("split") or "train")
    return [Task(f"{source}_{i:05d}", t.env, t.data, t.split) for i, t in enumerate(tasks)]


def derive_kg(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    from data_pipeline.sources.kg_questions import question_tasks
    return question_tasks(source, src)


def derive_webshop(source: str, src: ml_collections.ConfigDict) -> list[Task]:
    from data_pipeline.sources.webshop_goals import goal_tasks
    return goal_tasks(source, src)


DERIVERS: dict[str, Deriver] = {
    "db_derive": derive_db, "os_derive": derive_os, "household_seeds": derive_household,
    "sciworld_variations": derive_sciworld, "toy": derive_toy, "file": derive_file, "env_tasks": derive_env_tasks,
}
DERIVERS.update(kg_questions=derive_kg, webshop_goals=derive_webshop)


def instructions(run: Run, sources: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Adds every missing task of the enabled sources to tasks.jsonl; returns {source: {new, total, ...}}."""
    from data_pipeline import self_instruct

    summary: dict[str, dict[str, int]] = {}
    with RecordStore(run.path("tasks.jsonl"), fsync=run.cfg.get("fsync", True)) as store:
        for name, src in run.sources().items():
            if sources and name not in sources:
                continue
            if src.kind == "self_instruct":
                if run.offline:
                    log.warning("source %s: Self-Instruct needs a teacher endpoint; skipped offline", name)
                    summary[name] = {"new": 0, "total": 0, "skipped_offline": 1}
                    continue
                summary[name] = self_instruct.generate(run, name, src, store)
                continue
            if src.kind not in DERIVERS:
                raise ValueError(f"sources.{name}.kind={src.kind!r} is unknown; known: "
                                 f"{sorted(DERIVERS) + ['self_instruct']}")
            tasks = DERIVERS[src.kind](name, src)
            new = 0
            for t in tasks:
                new += store.add({"id": t.id, "env": t.env, "data": t.data, "split": t.split, "source": name,
                                  "method": src.get("method", "rollout")})
            summary[name] = {"new": new, "total": len(tasks)}
            log.info("source %s: %d tasks (%d new)", name, len(tasks), new)
    return summary
