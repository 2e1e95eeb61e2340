"""The Digital Card Game as an agent environment: the agent plays AgentBench's LLM seat through the game's own
prompts, against baseline1 or baseline2, in either seat; the reward is 1 for a win.

Each prompt the game's client sends is one agent turn. The client keeps its own short history (the rules as a
first exchange, then its last two or three exchanges), so the agent is shown exactly that message list
(`agent_view`), while the episode records every prompt and reply in order. A reply the client cannot use is asked
again, up to five times, and a turn with no usable reply forfeits the game: the adapter counts a prompt asked
again as a rejected reply (`invalid_replies`), and a game lost that way ends as an invalid action.

    tasks: "std" / "dev" / "ext" (5 / 3 / 50 games per pairing, AgentBench's configs), "games:N", or an
    AgentBench task config (.yaml with parameters.test_time); the schedule is stage 2, opponents baseline1 and
    baseline2, the agent in seat 0 and in seat 1.
"""
from __future__ import annotations

import json
import pathlib
import re
from typing import Any, Sequence

from agentlm.envs.base import Environment, Episode, Message, StepResult, Task
from agentlm.envs.card_game import build, match
from agentlm.envs.spec import episode_counts, scored_episodes

SETTINGS = {"dev": 3, "std": 5, "ext": 50}  # games per (opponent, seat): AgentBench's configs
OPPONENTS = ("baseline1", "baseline2")
STAGE = 2
ROLES = {"user": "human", "agent": "gpt"}
LANGUAGES = ("en", "cn")  # AI_SDK/Python/main.py: English prompts, or the Chinese ones for anything else
CLIENT_TRIES = 5  # the game's LLM client asks each prompt at most this often (AI_En.py)


def schedule(games: int, split: str = "std", opponents: Sequence[str] = OPPONENTS) -> list[Task]:
    return [Task(id=f"card_game_{opp}_seat{seat}_{i}", env="card_game", split=split,
                 data={"stage": STAGE, "opponent": opp, "seat": seat, "game": i})
            for opp in opponents for seat in (0, 1) for i in range(games)]


def load_tasks(source: str, split: str = "std") -> list[Task]:
    source = str(source or "std")
    if source in SETTINGS:
        return schedule(SETTINGS[source], source)
    if source.startswith("games:"):
        return schedule(int(source.split(":", 1)[1]), split)
    path = pathlib.Path(source)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        import yaml

        config = yaml.safe_load(path.read_text()) or {}
        games = (config.get("parameters") or {}).get("test_time")
        if not isinstance(games, int) or games < 1:
            raise ValueError(f"{path}: parameters.test_time must be a positive integer, got {games!r}")
        return schedule(games, path.stem)
    raise ValueError(f"card game tasks {source!r}: use std, dev, ext, games:N or an AgentBench task .yaml")


def to_turns(messages: Any, where: str = "card game prompt") -> list[Message]:
    """The client's message list as AgentInstruct turns (its earlier replies are context, never trained on)."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: expected a non-empty list of messages, got {type(messages).__name__}")
    turns = []
    for n, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"{where}: message {n} is not {{role: user|agent, content: str}}: {m!r}")
        turns.append({"from": ROLES[m["role"]], "value": m["content"], "loss": None if m["role"] == "user" else False})
    if turns[-1]["from"] != "human":
        raise ValueError(f"{where}: the last message is not the game's prompt")
    return turns


class CardGameEnv(Environment):
    name = "card_game"
    max_rounds = 1000  # a game ends itself (each turn allows five tries); the wall-clock limit bounds it
    allow_repeats = True  # a rejected reply is answered by the same prompt: the game counts it, not the loop

    def __init__(self, engine_source: str = "", language: str = "en", game_timeout_s: float = match.GAME_TIMEOUT_S):
        if language not in LANGUAGES:
            raise ValueError(f"card_game: language {language!r} is not one of the game's prompt sets {LANGUAGES}")
        self.game_dir = build.built_game(engine_source or None)
        self.language, self.timeout_s = language, float(game_timeout_s)
        self.game: match.Game | None = None
        self.view: list[Message] = []

    def reset(self, task: Task) -> list[Message]:
        self.close()
        seat, opponent = int(task.data["seat"]), task.data["opponent"]
        players = (match.AGENT, opponent) if seat == 0 else (opponent, match.AGENT)
        self.task, self.calls, self.invalid, self.asked, self.last_prompt = task, 0, 0, 0, None
        self.game = match.Game(self.game_dir, players, int(task.data.get("stage", STAGE)), self.language,
                               self.timeout_s)
        first = self.game.next_request()
        if first is None:
            result = self.game.finish()
            raise RuntimeError(f"{task.id}: the game ended before asking the agent anything "
                               f"(timeout={result.timeout}; judge: {result.judge_output[-300:]!r})")
        self._take(first)
        return list(self.view)

    def _take(self, messages: list | None) -> None:
        """Counts rejected replies: the same prompt asked again means the last reply was unusable, and a prompt
        asked CLIENT_TRIES times (the client's limit) had all its replies rejected."""
        prompt = None
        if messages is not None:
            self.view = to_turns(messages, f"{self.task.id} prompt {self.calls + 1}")
            prompt = self.view[-1]["value"]
            self.calls += 1
        if prompt is not None and prompt == self.last_prompt:
            self.invalid += 1
            self.asked += 1
        else:
            self.invalid += self.asked >= CLIENT_TRIES
            self.asked = 1
        self.last_prompt = prompt

    def agent_view(self, conversation: list[Message]) -> list[Message]:
        """What the game's client sent for this turn (its own history window), not the whole episode."""
        return list(self.view)

    def step(self, action: str) -> StepResult:
        self.game.seat.reply(action)
        nxt = self.game.next_request()
        if nxt is not None:
            self._take(nxt)
            return StepResult(self.view[-1]["value"])
        self._take(None)
        result = self.game.finish()
        self.game = None
        info = {**result_info(self.task, result), "llm_calls": self.calls, "invalid_replies": self.invalid}
        won = info["won"]
        forfeited = not won and info.get("full_play") == 0
        return StepResult("", 1.0 if won else 0.0, True, info, invalid=forfeited)

    def close(self) -> None:
        if self.game is not None:
            self.game.close()
            self.game = None


class ScriptedPlayer:
    """A text player for the game's prompts (a harness check, not a strong player): normal attack with its first
    living fish on the weakest living enemy; guesses "spray" for the first living enemy."""

    def act(self, conversation: list[Message], task: Task) -> str:
        prompt = conversation[-1]["value"]
        if "Please output your guess" in prompt:
            live = re.search(r"Live Enemy Fish: (\[.*?\])", prompt)
            alive = json.loads(live.group(1).replace("'", '"')) if live else ["0"]
            return json.dumps({"guess_type": "spray", "target_position": (alive or ["0"])[0]})
        state = json.loads(re.search(r"current game state:\n(\{.*\})\n", prompt).group(1))
        mine = [f for f in state["You"] if int(f["HP"]) > 0]
        enemies = sorted((f for f in state["Enemy"] if int(f["HP"]) > 0), key=lambda f: int(f["HP"]))
        return ("I attack the weakest enemy.\n" +
                json.dumps({"pick_fish": mine[0]["ID"], "action": "normal",
                            "target_position": enemies[0]["POSITION"]}))


def result_info(task: Task, result: match.MatchResult) -> dict[str, Any]:
    """An episode's info from a finished game, seen from the seat `task` names."""
    won = result.winner == result.seat
    stats = result.stats
    return {"won": won, "success": won, "winner": result.winner, "seat": result.seat,
            "opponent": task.data["opponent"], "timeout": result.timeout,
            **{k: stats[k] for k in ("damage", "takedown", "full_play", "try_times", "round_num") if k in stats}}


def baseline_episodes(player: str, tasks: Sequence[Task], engine_source: str = "", workers: int = 2,
                      timeout_s: float = match.GAME_TIMEOUT_S) -> list[Episode]:
    """The schedule played by a baseline AI in the agent's seat (the harness check AgentBench's numbers rest on),
    as episodes the metric reads."""
    import concurrent.futures

    from agentlm.envs.base import Outcome

    game_dir = build.built_game(engine_source or None)

    def one(task: Task) -> Episode:
        seat, opp = int(task.data["seat"]), task.data["opponent"]
        players = (player, opp) if seat == 0 else (opp, player)
        info = result_info(task, match.play(game_dir, players, seat, int(task.data.get("stage", STAGE)),
                                            timeout_s=timeout_s))
        return Episode(task.id, task.env, [], float(info["won"]), Outcome.SUCCESS if info["won"] else
                       Outcome.WRONG_ANSWER, 0, info)

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(one, tasks))


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """The paper's DCG score: win rate x 100 (games won / games played); the judge's other counters as details."""
    scored = scored_episodes(episodes)
    n = len(scored) or 1
    wins = sum(bool(e.info.get("won")) for e in scored)
    by_pairing: dict[str, list[int]] = {}
    for e in scored:
        key = f"{e.info.get('opponent', '?')}/seat{e.info.get('seat', '?')}"
        by_pairing.setdefault(key, [0, 0])
        by_pairing[key][0] += bool(e.info.get("won"))
        by_pairing[key][1] += 1

    def mean(key: str) -> float:
        return sum(float(e.info.get(key, 0)) for e in scored) / n

    return {"score": 100.0 * wins / n, "win_rate": wins / n, "wins": wins, "games": len(scored),
            "by_pairing": {k: {"wins": w, "games": g} for k, (w, g) in sorted(by_pairing.items())},
            "mean_damage": mean("damage"), "mean_takedown": mean("takedown"), "full_play_rate": mean("full_play"),
            "invalid_replies": sum(int(e.info.get("invalid_replies", 0)) for e in scored),
            "timeouts": sum(bool(e.info.get("timeout")) for e in scored), **episode_counts(episodes)}
