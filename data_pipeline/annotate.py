"""The 'annotate' stage: CoT annotation of gold trajectories (the paper's Mind2Web method).

For each task of an `annotate` source the environment's oracle plays the gold actions (DB gold SQL, OS example
solutions, TextWorld walkthroughs, ScienceWorld gold paths). The thought writer (the teacher, or templates
offline) then writes the thought before each gold action, seeing only the interaction up to that point; the
action text itself is kept byte for byte. The annotated replies are replayed in a fresh environment and the
trajectory is stored as a success only if the replay still succeeds with the very same actions; otherwise it is
stored with the replay's outcome (and dropped by the filter), so every task id is decided exactly once.
"""
from __future__ import annotations

import logging
from typing import Any

from agentlm.envs.agents import ReplayAgent
from agentlm.envs.base import Episode, Outcome, Task
from agentlm.envs.loop import LoopConfig, run_episode
from data_pipeline.agents import TeacherThoughts, TemplateThoughts
from data_pipeline.envs import OraclePool, action_format
from data_pipeline.pipeline import Run
from data_pipeline.rollout import EnvPool, StageResult, run_pool
from data_pipeline.store import RecordStore
from data_pipeline.teacher import ContentFailure, TeacherError

log = logging.getLogger(__name__)


def trajectory_actions(episode: Episode, env: str) -> list[str]:
    fmt = action_format(env)
    return [fmt.split(t["value"])[1] for t in episode.conversation if t["from"] == "gpt" and t.get("loss")]


def annotate_task(run: Run, task: Task, source: str, writer, oracles: OraclePool,
                  envs: EnvPool) -> dict[str, Any] | None:
    """The stored row for one task, or None when the teacher was unreachable (left for the next run)."""
    src = run.cfg.sources[source]
    loop_cfg = LoopConfig(max_rounds=src.get("max_rounds") or None)
    fmt = action_format(task.env)
    gold = run_episode(envs.get(source), oracles.get(source), task, loop_cfg)
    base = {"source": source, "method": "annotate", "teacher": writer.describe}

    def rejected(episode: Episode, why: str, outcome: Outcome | None = None) -> dict[str, Any]:
        row = episode.to_row()
        if outcome is not None:
            row["outcome"] = outcome.value
        row.update(base)
        row["info"] = {**row.get("info", {}), "annotation_rejected": why, "gold_outcome": gold.outcome.value}
        return row

    if gold.outcome != Outcome.SUCCESS:
        return rejected(gold, "the gold trajectory does not succeed")
    replies: list[str] = []
    conversation: list[dict] = []
    for turn in gold.conversation:
        if turn["from"] == "gpt" and turn.get("loss"):
            _, action = fmt.split(turn["value"])
            if not action:
                return rejected(gold, "a gold reply has no recognisable action", Outcome.INVALID_ACTION)
            try:
                thought = writer.write(task.env, task, conversation, action)
            except ContentFailure as e:
                return rejected(gold, f"teacher thought rejected: {e.reason}", Outcome.ERROR)
            except TeacherError as e:
                run.record_failure("annotate", task.id, str(e))
                return None
            reply = fmt.join(thought, action)
            replies.append(reply)
            conversation.append({**turn, "value": reply})
        else:
            conversation.append(turn)
    replay = run_episode(envs.get(source), ReplayAgent(replies), task, loop_cfg)  # reset starts it afresh
    if replay.outcome != Outcome.SUCCESS:
        return rejected(replay, f"the annotated replay ended as {replay.outcome.value}")
    if trajectory_actions(replay, task.env) != trajectory_actions(gold, task.env):
        return rejected(replay, "the replay's actions differ from the gold actions", Outcome.WRONG_ANSWER)
    row = replay.to_row()
    row.update(base)
    row["info"] = {**row.get("info", {}), "gold_reward": gold.reward, "replayed": True}
    return row


def annotate(run: Run) -> StageResult:
    items = run.tasks(method="annotate")
    writer = (TemplateThoughts() if run.offline
              else TeacherThoughts(run.teacher, max_history_chars=run.cfg.annotate.max_history_chars))
    oracles, envs = OraclePool(run.cfg), EnvPool(run)
    with RecordStore(run.path("annotated.jsonl"), fsync=run.cfg.get("fsync", True)) as store:

        def work(task: Task, source: str) -> dict[str, Any] | None:
            row = annotate_task(run, task, source, writer, oracles, envs)
            if row is not None:
                store.add(row)
            return row

        workers = run.cfg.teacher.concurrency if not run.offline else run.cfg.get("offline_workers", 2)
        try:
            return run_pool(run, "annotate", items, store, work, workers)
        finally:
            oracles.close()
            envs.close()
