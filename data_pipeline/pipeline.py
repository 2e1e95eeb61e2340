"""What every stage shares: the output directory layout, the spend ledger, the teacher, the task list.

Layout of `out_dir` (default data/generated/<name>/):
  tasks.jsonl                 every instruction (derived or self-instructed), one Task row per id
  self_instruct/<source>.jsonl  every Self-Instruct proposal with its verdict (kept / why rejected)
  rollouts.jsonl              teacher episodes (exactly once per task id)
  annotated.jsonl             CoT-annotated gold trajectories (exactly once per task id)
  failures.jsonl              tasks left undone because the endpoint stayed unreachable (retried next run)
  filtered.jsonl, filter_report.{json,md}
  export/                     AgentInstruct JSONL + parquet per task family, manifest.json
  spend.json, teacher_cache.sqlite
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import threading
import time
from typing import Any

import ml_collections

from agentlm.envs.base import Task
from data_pipeline.accounting import Budget, Ledger
from data_pipeline.cache import ResponseCache
from data_pipeline.store import RecordStore
from data_pipeline.teacher import TeacherClient

log = logging.getLogger(__name__)


def teacher_kind(cfg: ml_collections.ConfigDict) -> str:
    """'openai' when an endpoint is configured (config or OPENAI_BASE_URL / OPENAI_API_KEY), else 'oracle'."""
    kind = cfg.teacher.kind
    if kind not in ("auto", "oracle", "openai"):
        raise ValueError(f"teacher.kind must be auto, oracle or openai, not {kind!r}")
    if kind != "auto":
        return kind
    configured = cfg.teacher.base_url or os.environ.get("OPENAI_BASE_URL") or os.environ.get(
        cfg.teacher.get("api_key_env", "OPENAI_API_KEY"))
    return "openai" if configured else "oracle"


@dataclasses.dataclass
class Run:
    cfg: ml_collections.ConfigDict
    out: pathlib.Path
    ledger: Ledger
    teacher: TeacherClient | None  # None: the offline oracle teacher
    budget: Budget  # shared by every stage of this invocation (tasks and wall time count from the start)
    _failures_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def offline(self) -> bool:
        return self.teacher is None

    def path(self, *parts: str) -> pathlib.Path:
        return self.out.joinpath(*parts)

    def sources(self, method: str | None = None) -> dict[str, ml_collections.ConfigDict]:
        """Enabled sources (optionally only those whose trajectories come from `method`)."""
        out = {}
        for name, src in self.cfg.sources.items():
            if not src.get("enabled", True):
                continue
            if method is None or src.get("method", "rollout") == method:
                out[name] = src
        return out

    def tasks(self, method: str | None = None) -> list[tuple[Task, str]]:
        """(Task, source name) for the enabled sources, in id order."""
        path = self.path("tasks.jsonl")
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run the 'instructions' stage first")
        wanted = self.sources(method)
        with RecordStore(path) as store:
            rows = store.rows()
        out = []
        for row in rows:
            if row["source"] in wanted:
                out.append((Task(row["id"], row["env"], row["data"], row.get("split", "train")), row["source"]))
        return sorted(out, key=lambda p: p[0].id)

    def record_failure(self, stage: str, task_id: str, error: str) -> None:
        with self._failures_lock, open(self.path("failures.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"stage": stage, "id": task_id, "error": error, "time": time.time()}) + "\n")

    def close(self) -> None:
        self.ledger.save()
        if self.teacher is not None and self.teacher.cache is not None:
            self.teacher.cache.close()


def open_run(cfg: ml_collections.ConfigDict) -> Run:
    from data_pipeline.envs import register_env_modules

    register_env_modules(cfg)
    out = pathlib.Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = cfg.teacher
    ledger = Ledger(out / "spend.json", price_in_per_1k=t.price_in_per_1k, price_out_per_1k=t.price_out_per_1k)
    teacher = None
    if teacher_kind(cfg) == "openai":
        cache = ResponseCache(t.cache_path or out / "teacher_cache.sqlite") if t.use_cache else None
        teacher = TeacherClient.from_config(t, cache=cache, ledger=ledger)
    return Run(cfg=cfg, out=out, ledger=ledger, teacher=teacher, budget=Budget.from_config(cfg.budget))


def threshold_for(cfg: ml_collections.ConfigDict, env: str, source: str) -> float:
    """The reward a trajectory needs to be kept: per source, else per env, else the default (1.0)."""
    th = cfg.filter.thresholds
    for key in (source, env):
        if key in th:
            return float(th[key])
    return float(th.get("default", 1.0))


def jsonable(obj: Any) -> Any:
    if isinstance(obj, ml_collections.ConfigDict):
        return obj.to_dict()
    return obj
