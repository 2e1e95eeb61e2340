"""Runs one Digital Card Game the way AgentBench's task does, with this project's side of it: the loopback TCP
endpoint the game's LLM client (AI_SDK/Python/main.py) asks for each reply, the process handling and the limits.

A game is AgentBench's judge (judger/judger.py) running the engine (logic/bin/main) and two players: a baseline
AI (basline1.py / basline2.py, upstream's spelling) or the LLM client, which sends each prompt as a JSON list of
{"role": "user"|"agent", "content"} messages and waits for the reply text. Limits: the engine's own per-turn time
limit (it gives each player 300 s a turn), plus a wall-clock limit on the whole game after which the judge's
process group is killed and the game counts as lost by the agent's seat (`MatchResult.timeout`).
After the game the judge's own counters (judger/cal_metric.py: damage, takedowns, full plays, retries) are read
from its replay, as AgentBench's task does.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

BASELINES = {"baseline1": "basline1.py", "baseline2": "basline2.py", "baseline3": "basline3.py"}
AGENT = "agent"
GAME_TIMEOUT_S = 600.0  # AgentBench's run_cmd limit for one game


@dataclasses.dataclass
class MatchResult:
    winner: int | None  # seat 0 or 1; None when the game did not finish (timeout, crash)
    seat: int  # the seat whose view `stats` takes
    stats: dict[str, Any]  # judger/cal_metric.py's counters for `seat`
    timeout: bool = False
    judge_output: str = ""


class AgentSeat:
    """The TCP endpoint (127.0.0.1, a free port) the game's LLM client connects to. `requests` yields
    ("request", messages) for each prompt and ("closed", None) when the client hangs up; `reply(text)` answers."""

    def __init__(self, accept_timeout_s: float = 60.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(accept_timeout_s)
        self.port = self.sock.getsockname()[1]
        self.requests: queue.Queue = queue.Queue()
        self._replies: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _read_message(self, conn: socket.socket) -> list | None:
        buffer = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffer += chunk
            try:  # the client frames nothing: a message is complete when it parses
                return json.loads(buffer.decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue

    def _serve(self) -> None:
        conn = None
        try:
            conn, _ = self.sock.accept()
            while True:
                message = self._read_message(conn)
                if message is None:
                    break
                self.requests.put(("request", message))
                reply = self._replies.get()
                if reply is None:
                    break
                conn.sendall(reply.encode("utf-8") or b" ")  # an empty send would read as a hang-up
        except OSError:
            pass
        finally:
            if conn is not None:
                conn.close()
            self.requests.put(("closed", None))

    def reply(self, text: str) -> None:
        self._replies.put(text)

    def close(self) -> None:
        self._replies.put(None)
        try:
            self.sock.close()
        except OSError:
            pass


def _player_command(game: pathlib.Path, player: str, stage: int, seat: int, save_dir: pathlib.Path,
                    language: str, port: int | None) -> str:
    sdk = game / "AI_SDK" / "Python"
    if player == AGENT:
        parts = [sys.executable, str(sdk / "main.py"), language, str(stage), str(seat), str(save_dir), str(port)]
    elif player in BASELINES:
        parts = [sys.executable, str(sdk / BASELINES[player]), str(stage), str(seat), str(save_dir)]
    else:
        raise ValueError(f"unknown card game player {player!r}; use {AGENT!r} or one of {sorted(BASELINES)}")
    bad = [p for p in parts if "+" in p or " " in p]
    if bad:  # the judge splits a player command on '+' and spaces
        raise ValueError(f"the card game judge cannot run paths with '+' or spaces: {bad}")
    return "+".join(parts)


def _winner(output: str) -> int | None:
    """The judge's final {"0": score, "1": score}: the seat with the higher score (AgentBench: seat 1 wins when
    seat 0 scored 0)."""
    found = re.findall(r"\{\s*\"0\"\s*:\s*(-?\d+)\s*,\s*\"1\"\s*:\s*(-?\d+)\s*\}", output)
    if not found:
        return None
    s0, s1 = (int(x) for x in found[-1])
    return 1 if s0 == 0 else 0


class Game:
    """One running game. Start it, take `seat.requests` when a player is the agent, then `finish()`."""

    def __init__(self, game: pathlib.Path, players: tuple[str, str], stage: int = 2, language: str = "en",
                 timeout_s: float = GAME_TIMEOUT_S, seat: int = 0):
        """`seat`: whose counters the result reports when no seat is the agent's."""
        if players.count(AGENT) > 1:
            raise ValueError("at most one seat of a card game is the agent")
        self.game, self.players, self.stage, self.timeout_s = game, players, stage, timeout_s
        self.agent_seat = players.index(AGENT) if AGENT in players else seat
        self.seat = AgentSeat() if AGENT in players else None
        self.result_dir = pathlib.Path(tempfile.mkdtemp(prefix="card_game_"))
        self.save_dir = self.result_dir / "game"
        self.save_dir.mkdir()
        commands = [_player_command(game, p, stage, s, self.save_dir, language, self.seat and self.seat.port)
                    for s, p in enumerate(players)]
        cmd = [sys.executable, str(game / "judger" / "judger.py"), str(game / "logic" / "bin" / "main"),
               *commands, "config", str(self.save_dir / "replay.json")]
        self.proc = subprocess.Popen(cmd, cwd=game / "judger", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # its own process group: a kill takes all players
        self.started = time.monotonic()
        self.timed_out = False
        self.output = ""
        self._done = threading.Event()
        self._waiter = threading.Thread(target=self._wait, daemon=True)
        self._waiter.start()

    def _wait(self) -> None:
        try:
            out, _ = self.proc.communicate(timeout=self.timeout_s)
            self.output = out.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.kill()
            out, _ = self.proc.communicate()
            self.output = out.decode("utf-8", "replace")
        finally:
            self._done.set()
            if self.seat is not None:
                self.seat.requests.put(("over", None))

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def next_request(self) -> list | None:
        """The agent's next prompt (a message list), or None once the game is over."""
        while True:
            kind, message = self.seat.requests.get()
            if kind == "request":
                return message
            if kind == "over" or self._done.is_set():
                return None
            # "closed": the client hung up; the judge is finishing the game

    def finish(self) -> MatchResult:
        """Waits for the game (killing it at its time limit), reads the judge's counters, removes the files."""
        self._done.wait()
        if self.seat is not None:
            self.seat.close()
        try:
            winner = None if self.timed_out else _winner(self.output)
            stats = self._stats(winner)
            return MatchResult(winner, self.agent_seat, stats, self.timed_out, self.output[-2000:])
        finally:
            shutil.rmtree(self.result_dir, ignore_errors=True)

    def close(self) -> None:
        """Stops a game that is still running (an episode cut short)."""
        if not self._done.is_set():
            self.kill()
            self._done.wait(30)
        if self.seat is not None:
            self.seat.close()
        shutil.rmtree(self.result_dir, ignore_errors=True)

    def _stats(self, winner: int | None) -> dict[str, Any]:
        """judger/cal_metric.py over this game (it reads meta.json, which AgentBench's task writes)."""
        if winner is None or not (self.save_dir / "replay.json").exists():
            return {}
        names = ["ai" if p == AGENT else p for p in self.players]
        meta = {"ai1": names[0], "ai2": names[1], "winner": str(winner)}
        (self.save_dir / "meta.json").write_text(json.dumps(meta))
        done = subprocess.run([sys.executable, str(self.game / "judger" / "cal_metric.py"), str(self.result_dir),
                               str(self.agent_seat)], capture_output=True, text=True, timeout=60)
        try:
            return json.loads(done.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            return {"cal_metric_error": (done.stdout + done.stderr)[-500:]}


def play(game: pathlib.Path, players: tuple[str, str], seat: int = 0, stage: int = 2, language: str = "en",
         timeout_s: float = GAME_TIMEOUT_S) -> MatchResult:
    """A whole game between two baselines (no agent seat), reported from `seat`'s side."""
    if AGENT in players:
        raise ValueError("play() runs baseline-only games; an agent's game goes through CardGameEnv")
    return Game(game, players, stage, language, timeout_s, seat).finish()
