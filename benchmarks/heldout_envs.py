"""Wall time of the held-out environments' harness on this machine: the card game's build into a fresh cache and
its std schedule (baseline1 in the agent's seat, and the scripted text player through the LLM seat), and the
HotpotQA and ReWOO oracles over their full sets. Results go to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/heldout_envs.py --shared ../shared [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import tempfile

from common import timed  # noqa: E402  (common also puts the repository on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    shared = pathlib.Path(args.shared).resolve()
    os.environ["AGENTLM_CACHE"] = tempfile.mkdtemp(prefix="agentlm_bench_")  # a cold build

    from agentlm.envs import hotpotqa, loop, registry
    from agentlm.envs.card_game import build, env as cg

    source = str(shared / "third_party" / "agentbench_card_game")
    timed("card game build (engine + AI client, cold cache)", lambda: build.built_game(source))
    tasks = cg.load_tasks("std")
    eps = timed(f"card game std, baseline1 seat, {args.workers} workers (20 games)",
                lambda: cg.baseline_episodes("baseline1", tasks, source, workers=args.workers))
    print("  win rate", cg.aggregate(eps, tasks)["score"])
    eps = timed(f"card game std, scripted player via LLM seat, {args.workers} workers",
                lambda: loop.run_tasks(lambda: cg.CardGameEnv(engine_source=source), cg.ScriptedPlayer(), tasks,
                                       workers=args.workers, progress=False))
    print("  win rate", cg.aggregate(eps, tasks)["score"], "llm calls", sum(e.rounds for e in eps))
    hq = hotpotqa.load_tasks(str(shared / "data" / "hotpotqa"))
    timed("hotpotqa oracle, 300 questions (corpus + BM25 index built)", lambda: loop.run_tasks(
        hotpotqa.HotpotQAEnv, hotpotqa.SupportingFactsOracle(), hq, progress=False))
    spec = registry.get("rewoo")
    rw = spec.tasks(str(shared / "data" / "rewoo"))
    timed("rewoo scripted planner, 250 items", lambda: loop.run_tasks(spec.env_factory(), spec.make_oracle(), rw,
                                                                       progress=False))


if __name__ == "__main__":
    main()
