"""Rollouts: the teacher plays every task through agentlm's environments and loop.

Exactly-once and resumable: episodes go to an append-only RecordStore keyed by task id, so a rerun (after a crash,
kill -9 or a budget stop) plays only what is missing. A task whose endpoint stayed unreachable after all retries
is logged to failures.jsonl and left undone for the next run rather than stored as a failed episode. The budget
(tasks, tokens, cost, wall time) is checked before each task starts; work in flight finishes, so the stop is clean.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
from typing import Any, Callable

from tqdm import tqdm

from agentlm.envs.base import Outcome, Task
from agentlm.envs.loop import LoopConfig, run_episode
from data_pipeline.agents import OracleTeacher, TeacherAgent, describe_teacher
from data_pipeline.envs import OraclePool, env_factory
from data_pipeline.pipeline import Run, threshold_for
from data_pipeline.store import RecordStore

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StageResult:
    total: int = 0  # tasks this stage covers
    already: int = 0  # done by earlier runs
    done: int = 0  # finished in this run
    kept: int = 0  # of those, good enough to keep (estimate; the filter stage decides)
    failed: int = 0  # episodes that ended below threshold, or tasks left undone
    undone: int = 0  # tasks skipped: endpoint unreachable (retried next run)
    stopped: str | None = None  # why the stage stopped early (budget), None if it ran everything

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def make_env(run: Run, source: str):
    src = run.cfg.sources[source]
    return env_factory(src.env, src.get("env_factory", ""), max_rounds=src.get("max_rounds") or None,
                       **dict(src.get("env_kwargs", {})))()


class EnvPool:
    """One environment per (worker thread, source), reused for all its episodes, closed at the end of a stage.

    The protocol lets an instance run one episode at a time, and `reset` starts each episode afresh; reusing it
    avoids paying a simulator start (ScienceWorld's Java server) per task."""

    def __init__(self, run: Run):
        self.run = run
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()

    def get(self, source: str):
        envs = self._local.__dict__.setdefault("envs", {})
        if source not in envs:
            envs[source] = make_env(self.run, source)
            with self._lock:
                self._all.append(envs[source])
        return envs[source]

    def close(self) -> None:
        with self._lock:
            for env in self._all:
                try:
                    env.close()
                except Exception:  # noqa: BLE001 -- closing must not hide the stage's own result
                    log.exception("closing %s failed", env)
            self._all.clear()


def run_pool(run: Run, stage: str, items: list[tuple[Task, str]], store: RecordStore,
             work: Callable[[Task, str], dict[str, Any] | None], workers: int) -> StageResult:
    """Runs `work` on every item not yet in `store` with bounded concurrency, budget checks and a progress bar.

    `work` returns the row to store, or None to leave the task undone (it is then retried by the next run).
    """
    res = StageResult(total=len(items))
    todo = [(t, s) for t, s in items if t.id not in store]
    res.already = len(items) - len(todo)
    budget = run.budget
    bar = tqdm(total=len(items), initial=res.already, desc=stage, dynamic_ncols=True,
               disable=not run.cfg.get("progress", True))

    def finish(fut: concurrent.futures.Future, task: Task, source: str) -> None:
        try:
            row = fut.result()
        except Exception as e:  # noqa: BLE001 -- one broken task must not end a long run
            log.exception("%s: task %s failed", stage, task.id)
            run.record_failure(stage, task.id, repr(e))
            row = None
        if row is None:
            res.undone += 1
            res.failed += 1
        else:
            res.done += 1
            if row["reward"] >= threshold_for(run.cfg, task.env, source) and row["outcome"] in (
                    Outcome.SUCCESS.value, Outcome.WRONG_ANSWER.value):
                res.kept += 1
            else:
                res.failed += 1
        total = run.ledger.total()
        bar.set_postfix(done=res.done, kept=res.kept, failed=res.failed, tok=total.tokens,
                        usd=f"{total.cost_usd:.3f}", refresh=False)
        bar.update(1)
        run.ledger.save()

    pending: dict[concurrent.futures.Future, tuple[Task, str]] = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for task, source in todo:
                while len(pending) >= max(1, workers):
                    finished, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for fut in finished:
                        finish(fut, *pending.pop(fut))
                res.stopped = budget.exhausted(run.ledger)
                if res.stopped:
                    log.warning("%s: %s; stopping cleanly (rerun to continue)", stage, res.stopped)
                    break
                budget.started += 1
                pending[pool.submit(work, task, source)] = (task, source)
            for fut in concurrent.futures.as_completed(list(pending)):
                finish(fut, *pending.pop(fut))
    finally:
        for fut in pending:
            fut.cancel()
        bar.close()
        run.ledger.save()
    return res


def rollouts(run: Run) -> StageResult:
    """Plays every rollout-method task not yet played; returns counts for this invocation."""
    items = run.tasks(method="rollout")
    teacher_info = describe_teacher(run.teacher)
    oracles, envs = OraclePool(run.cfg), EnvPool(run)
    with RecordStore(run.path("rollouts.jsonl"), fsync=run.cfg.get("fsync", True)) as store:

        def play(task: Task, source: str) -> dict[str, Any] | None:
            src = run.cfg.sources[source]
            env = envs.get(source)
            agent = (OracleTeacher(task.env, oracle=oracles.get(source)) if run.offline
                     else TeacherAgent(run.teacher, env, stage="rollout"))
            episode = run_episode(env, agent, task, LoopConfig(max_rounds=src.get("max_rounds") or None))
            if agent.transport_error:
                run.record_failure("rollout", task.id, agent.transport_error)
                return None
            row = episode.to_row()
            row.update(source=source, method="rollout", teacher=teacher_info,
                       content_failures=agent.content_failures)
            store.add(row)
            return row

        workers = run.cfg.teacher.concurrency if not run.offline else run.cfg.get("offline_workers", 2)
        try:
            return run_pool(run, "rollout", items, store, play, workers)
        finally:
            oracles.close()
            envs.close()
