"""The household environment's games: TextWorld generates each one from (kind, level, seed) into the cache.

A game is an `agentlm.cache` directory entry (`<cache>/textworld/<kind>-L<level>-S<seed>/`, holding game.z8 and
game.json, the latter with the walkthrough), so evaluation workers, pipeline workers and separate processes that
need the same missing game wait for one build instead of racing, and an entry left half-written by a killed
build is rebuilt rather than played.

TextWorld parses its logic files and game descriptions with one module-level tatsu parser, so two threads of a
process that generate, load or play games at the same moment corrupt each other's parse ("pop from empty list",
FailedToken, FailedParse). Every call into TextWorld therefore holds `TEXTWORLD_LOCK`. A game is fetched from the
cache (which may wait on another process's per-entry file lock) *before* that lock is taken, never while holding
it, so a thread waiting for a build never blocks the thread doing it.
"""
from __future__ import annotations

import json
import pathlib
import threading

from agentlm import cache

KINDS = ("cooking", "treasure", "coin")
# cooking difficulty presets: rooms, ingredients, and which preparation steps the recipe needs
COOKING_LEVELS = {
    1: {"recipe": 1, "take": 1, "go": 1, "open": False, "cook": False, "cut": False},
    2: {"recipe": 2, "take": 2, "go": 6, "open": True, "cook": False, "cut": True},
    3: {"recipe": 3, "take": 3, "go": 9, "open": True, "cook": True, "cut": True},
}
LEVEL_RANGES = {"cooking": (1, 3), "treasure": (1, 30), "coin": (1, 300)}
GAME, INFO = "game.z8", "game.json"  # the compiled game and TextWorld's description of it (walkthrough included)

# One thread of this process at a time inside TextWorld (its parser state is global); reentrant so that a
# caller holding it may call helpers that take it too.
TEXTWORLD_LOCK = threading.RLock()


def cache_dir() -> pathlib.Path:
    """$AGENTLM_CACHE/textworld, else ~/.cache/agentlm/textworld."""
    return cache.cache_root() / "textworld"


def game_spec(data: dict, where: str = "task") -> tuple[str, int, int]:
    """(kind, level, seed) of a task's data, with an error naming `where` when a field is missing or out of range."""
    try:
        kind, level, seed = data["kind"], int(data["level"]), int(data["seed"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: a household task needs kind, level (int) and seed (int); got {data!r}") from None
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    lo, hi = LEVEL_RANGES[kind]
    if not lo <= level <= hi:
        raise ValueError(f"{where}: {kind} level must be in {lo}..{hi}, got {level}")
    return kind, level, seed


def generate(kind: str, level: int, seed: int, out_dir: pathlib.Path) -> None:
    """Writes the game (deterministic in its seed) as out_dir/game.z8 and out_dir/game.json."""
    import textworld
    from textworld import GameOptions
    from textworld.challenges import coin_collector, cooking, treasure_hunter
    with TEXTWORLD_LOCK:
        options = GameOptions()
        options.seeds = seed
        options.path = str(out_dir / GAME)
        options.force_recompile = True
        if kind == "coin":
            game = coin_collector.make({"level": level}, options)
        elif kind == "treasure":
            game = treasure_hunter.make({"level": level}, options)
        else:
            settings = dict(COOKING_LEVELS[level], drop=False, recipe_seed=seed, split=None)
            game = cooking.make(settings, options)
        compiled = pathlib.Path(textworld.generator.compile_game(game, options))
    if compiled != out_dir / GAME:  # TextWorld chose its own name: bring both files to the entry's names
        compiled.with_suffix(".json").replace(out_dir / INFO)
        compiled.replace(out_dir / GAME)


def _entry_ok(entry: pathlib.Path) -> bool:
    return all((entry / name).is_file() and (entry / name).stat().st_size > 0 for name in (GAME, INFO))


def game_dir(kind: str, level: int, seed: int, root: pathlib.Path | None = None) -> pathlib.Path:
    """The game's cache entry, generating it on first use (one builder across processes and threads)."""
    kind, level, seed = game_spec({"kind": kind, "level": level, "seed": seed})
    entry = (root or cache_dir()) / f"{kind}-L{level}-S{seed}"
    return cache.build_once(entry, lambda tmp: generate(kind, level, seed, tmp), directory=True, valid=_entry_ok,
                            what=f"TextWorld {kind} game, level {level}, seed {seed}")


def game_file(kind: str, level: int, seed: int, root: pathlib.Path | None = None) -> pathlib.Path:
    """Path of the compiled game (generated on first use)."""
    return game_dir(kind, level, seed, root) / GAME


def walkthrough(kind: str, level: int, seed: int, root: pathlib.Path | None = None) -> list[str]:
    """The winning command sequence TextWorld recorded when it generated the game."""
    info = game_dir(kind, level, seed, root) / INFO
    try:
        steps = json.loads(info.read_text(encoding="utf-8")).get("metadata", {}).get("walkthrough")
    except (OSError, ValueError) as e:
        raise ValueError(f"{info}: unreadable TextWorld game description ({e})") from e
    if not steps:  # not recorded: TextWorld derives it from the game's quests
        import textworld
        with TEXTWORLD_LOCK:
            steps = textworld.Game.load(str(info)).walkthrough
    return list(steps or [])
