"""AgentBench's Digital Card Game (held out), played through its own engine, judge and prompts.

build.py compiles the unmodified upstream source into a cache, match.py runs one game (judge, engine, players,
the loopback endpoint of the LLM seat, limits), env.py is the agent environment and the paper's metric.
"""
from __future__ import annotations

import os

from agentlm.envs.spec import ActionFormat, EnvSpec, Metric


def _source_problem() -> str | None:
    from agentlm.envs.card_game import build

    if not os.environ.get(build.SOURCE_ENV):
        return None  # engine_source may be given as an option; the environment says so if neither is
    try:
        build.find_source()
    except build.CardGameUnavailable as e:
        return str(e)
    return None


SPEC = EnvSpec(
    name="card_game", env="agentlm.envs.card_game.env:CardGameEnv", load_tasks="agentlm.envs.card_game.env:load_tasks",
    group="held_out", paper_task="Digital Card Game",
    metric=Metric("win rate", "agentlm.envs.card_game.env:aggregate"),
    oracle="agentlm.envs.card_game.env:ScriptedPlayer",
    action_format=ActionFormat(r"^\s*\{", thought_prefix=""), split="std", default_tasks="std",
    options={"engine_source": "", "language": "en", "game_timeout_s": 600.0},
    requires=("pybind11", "websockets"), executables=("g++", "make", "cmake"), check=_source_problem,
    install_hint="run `make install` (g++, make, cmake; pybind11, websockets) and `make card-game` with "
                 "AGENTLM_CARD_GAME_SRC set to AgentBench's src/tasks/card_game",
    task_formats="std | dev | ext (5 / 3 / 50 games per opponent and seat), games:N, or an AgentBench task .yaml",
    description="Digital Card Game (held out): AgentBench's engine and judge, the agent in the LLM seat")
