"""The agent-environment loop: runs any Agent over a task set and records each Episode.

One loop serves teacher rollouts (data_pipeline) and model evaluation (agentlm.eval), so the outcome kinds the
paper's error analysis counts (invalid action, repeated action, round limit, context limit) are decided here, in
one place, the same way for every environment. Nothing an agent or environment raises stops a run: it becomes an
Outcome.ERROR record. Results come back (and are written) in task order whatever the concurrency.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import pathlib
import threading
import traceback
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

from agentlm.envs.base import (Agent, ContextLimitExceeded, Environment, Episode, Message, Outcome, Task,
                               TaskUnscorable)

log = logging.getLogger(__name__)

TokenCounter = Callable[[list[Message]], int]


def char_token_estimate(conversation: list[Message]) -> int:
    """Rough token count (4 characters per token) for when no tokenizer is at hand."""
    return sum(len(m["value"]) for m in conversation) // 4 + 4 * len(conversation)


@dataclasses.dataclass
class LoopConfig:
    """Limits of one episode. `max_rounds=None` takes the environment's own limit (its `max_rounds`)."""

    max_rounds: int | None = None
    context_tokens: int | None = None  # budget for the whole conversation before each agent call; None = no limit
    repeat_limit: int | None = 3  # this many identical consecutive (reply, observation) pairs end the episode
    token_counter: TokenCounter = char_token_estimate


def _success(reward: float, info: dict[str, Any]) -> bool:
    if "success" in info:
        return bool(info["success"])
    return reward >= 1.0 - 1e-9


def run_episode(env: Environment, agent: Agent, task: Task, config: LoopConfig | None = None) -> Episode:
    """Plays one task to the end and classifies how it ended. Never raises."""
    config = config or LoopConfig()
    max_rounds = config.max_rounds or env.max_rounds
    # Environments whose correct play repeats itself (e.g. ScienceWorld's "wait") set allow_repeats = True.
    repeat_limit = None if getattr(env, "allow_repeats", False) else config.repeat_limit
    conversation: list[Message] = []
    info: dict[str, Any] = {}
    rounds = 0
    try:
        conversation = [dict(m) for m in env.reset(task)]
    except TaskUnscorable as e:
        return Episode(task.id, task.env, conversation, 0.0, Outcome.UNSCORABLE, 0, {"unscorable": str(e)})
    except Exception as e:  # noqa: BLE001 -- recorded, the run goes on
        return Episode(task.id, task.env, conversation, 0.0, Outcome.ERROR, 0,
                       {"error": f"reset: {e!r}", "traceback": traceback.format_exc(limit=5)})
    # An environment whose own client keeps the dialogue (the card game's) shows the agent that client's
    # message list for the turn instead of the whole episode.
    view = getattr(env, "agent_view", None)
    last_pair, repeats = None, 0
    reward = 0.0
    while True:
        if rounds >= max_rounds:
            return Episode(task.id, task.env, conversation, reward, Outcome.ROUND_LIMIT, rounds, info)
        if config.context_tokens is not None and config.token_counter(conversation) > config.context_tokens:
            info["context_tokens"] = config.token_counter(conversation)
            return Episode(task.id, task.env, conversation, reward, Outcome.CONTEXT_LIMIT, rounds, info)
        try:
            reply = agent.act(view(conversation) if view else conversation, task)
        except ContextLimitExceeded as e:
            info["context_error"] = str(e)
            return Episode(task.id, task.env, conversation, reward, Outcome.CONTEXT_LIMIT, rounds, info)
        except Exception as e:  # noqa: BLE001
            info.update(error=f"agent: {e!r}", traceback=traceback.format_exc(limit=5))
            return Episode(task.id, task.env, conversation, reward, Outcome.ERROR, rounds, info)
        if not isinstance(reply, str):
            info["error"] = f"agent returned {type(reply).__name__}, not str"
            return Episode(task.id, task.env, conversation, reward, Outcome.ERROR, rounds, info)
        conversation.append({"from": "gpt", "value": reply, "loss": True})
        rounds += 1
        try:
            result = env.step(reply)
        except Exception as e:  # noqa: BLE001
            info.update(error=f"step: {e!r}", traceback=traceback.format_exc(limit=5))
            return Episode(task.id, task.env, conversation, reward, Outcome.ERROR, rounds, info)
        info.update(result.info)
        reward = float(result.reward)
        if result.done:
            if result.invalid:
                outcome = Outcome.INVALID_ACTION
            elif info.get("unscorable"):
                outcome = Outcome.UNSCORABLE
            elif _success(reward, info):
                outcome = Outcome.SUCCESS
            else:  # an environment that enforces its own round limit says so in info
                outcome = Outcome.ROUND_LIMIT if info.get("round_limit") else Outcome.WRONG_ANSWER
            return Episode(task.id, task.env, conversation, reward, outcome, rounds, info)
        conversation.append({"from": "human", "value": result.observation, "loss": None})
        pair = (reply.strip(), result.observation)
        repeats = repeats + 1 if pair == last_pair else 1
        last_pair = pair
        if repeat_limit is not None and repeats >= repeat_limit:
            info["repeated"] = reply.strip()[:200]
            return Episode(task.id, task.env, conversation, reward, Outcome.REPEATED_ACTION, rounds, info)


class _OrderedWriter:
    """Writes finished episodes to JSONL in task order, holding back ones that finish early."""

    def __init__(self, path: pathlib.Path | None, start: int = 0):
        self.path, self.next, self.pending = path, start, {}
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8") if path else None

    def put(self, index: int, episode: Episode) -> None:
        with self.lock:
            self.pending[index] = episode
            while self.next in self.pending:
                ep = self.pending.pop(self.next)
                if self.file:
                    self.file.write(json.dumps(ep.to_row(), ensure_ascii=False) + "\n")
                    self.file.flush()
                self.next += 1

    def close(self) -> None:
        if self.file:
            self.file.close()


def read_episodes(path: str | pathlib.Path) -> list[Episode]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(Episode.from_row(json.loads(line)))
                except (json.JSONDecodeError, KeyError, ValueError) as e:
                    raise ValueError(f"{path}:{n}: not an episode row ({e})") from e
    return rows


def run_tasks(env_factory: Callable[[], Environment], agent: Agent | Callable[[], Agent], tasks: Sequence[Task],
              config: LoopConfig | None = None, workers: int = 1, out: str | pathlib.Path | None = None,
              resume: bool = False, progress: bool = True) -> list[Episode]:
    """Runs every task; returns episodes in task order (and appends them to `out` as JSONL, in order).

    Each worker thread owns one environment from `env_factory` for all its episodes. `agent` is shared across
    threads (an HTTP client is thread-safe); pass a zero-argument factory instead to give each worker its own.
    With `resume`, tasks whose ids already appear in `out` are not run again and their records are returned.
    """
    config = config or LoopConfig()
    tasks = list(tasks)
    done: dict[str, Episode] = {}
    out_path = pathlib.Path(out) if out else None
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if resume and out_path.exists():
            done = {ep.task_id: ep for ep in read_episodes(out_path)}
        elif out_path.exists():
            out_path.unlink()
    ids = [t.id for t in tasks]
    if resume and done:
        # Resuming only makes sense when the finished ones form a prefix (the writer keeps task order).
        prefix = 0
        while prefix < len(ids) and ids[prefix] in done:
            prefix += 1
        todo = list(range(prefix, len(tasks)))
    else:
        prefix, todo = 0, list(range(len(tasks)))
    if out_path and resume and done:
        # Drop records past the prefix so the file stays in order after the rerun.
        keep = [done[i].to_row() for i in ids[:prefix]]
        out_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep), encoding="utf-8")
    results: list[Episode | None] = [done[i] for i in ids[:prefix]] + [None] * (len(tasks) - prefix)
    writer = _OrderedWriter(out_path, start=prefix)
    local = threading.local()
    envs: list[Environment] = []
    envs_lock = threading.Lock()
    agent_is_factory = not hasattr(agent, "act") and callable(agent)

    def worker(index: int) -> None:
        task = tasks[index]
        if getattr(local, "env", None) is None:
            try:
                local.env = env_factory()
                local.agent = agent() if agent_is_factory else agent
            except Exception as e:  # noqa: BLE001 -- e.g. a missing system piece: every episode says so
                local.env = None
                episode = Episode(task.id, task.env, [], 0.0, Outcome.ERROR, 0,
                                  {"error": f"environment/agent setup: {e!r}"})
                results[index] = episode
                writer.put(index, episode)
                return
            with envs_lock:
                envs.append(local.env)
        episode = run_episode(local.env, local.agent, task, config)
        results[index] = episode
        writer.put(index, episode)

    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=len(todo), desc=f"episodes ({tasks[0].env if tasks else ''})", leave=False)
        except ImportError:  # pragma: no cover
            bar = None
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(worker, i) for i in todo]
            for fut in concurrent.futures.as_completed(futures):
                fut.result()
                if bar:
                    bar.update(1)
    finally:
        if bar:
            bar.close()
        writer.close()
        for env in envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001
                log.exception("closing %s failed", env)
    return [r for r in results if r is not None]


def summarize(episodes: Iterable[Episode]) -> dict[str, Any]:
    """Mean reward and success rate over scorable episodes, and the count of each outcome kind."""
    episodes = list(episodes)
    counts = Counter(ep.outcome.value for ep in episodes)
    scored = [ep for ep in episodes if ep.outcome != Outcome.UNSCORABLE]
    n = len(scored)
    return {
        "episodes": len(episodes),
        "scored": n,
        "unscorable": len(episodes) - n,
        "mean_reward": sum(ep.reward for ep in scored) / n if n else 0.0,
        "success_rate": sum(ep.outcome == Outcome.SUCCESS for ep in scored) / n if n else 0.0,
        "mean_rounds": sum(ep.rounds for ep in scored) / n if n else 0.0,
        "outcomes": {o.value: counts.get(o.value, 0) for o in Outcome},
    }
