"""The metric of a tool domain (every domain's registry entry uses it, see env_spec.py).

Evaluation items are by default generated from the domain's held-out templates (the templates no training source
uses). The score is the success rate in percent; mean reward (partial credit from the checker) and the success
rate per template ride along.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from agentlm.envs.base import Episode, Outcome, Task


def score(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    template = {t.id: t.data.get("template", "?") for t in tasks}
    scored = [e for e in episodes if e.outcome != Outcome.UNSCORABLE]
    n = len(scored) or 1
    per: dict[str, list[bool]] = defaultdict(list)
    for e in scored:
        per[template.get(e.task_id, "?")].append(e.outcome == Outcome.SUCCESS)
    rate = sum(e.outcome == Outcome.SUCCESS for e in scored) / n
    return {"score": 100.0 * rate, "success_rate": rate, "mean_reward": sum(e.reward for e in scored) / n,
            "per_template": {k: sum(v) / len(v) for k, v in sorted(per.items())},
            "tool_errors": sum(int(e.info.get("tool_errors", 0)) for e in scored),
            "scored": len(scored), "unscorable": len(episodes) - len(scored)}
