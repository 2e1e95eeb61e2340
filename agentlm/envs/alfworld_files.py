"""Where ALFWorld's games are and what TextWorld loads for one: the data root (a folder with json_2.1.1/, or its
.tar.xz archive extracted once into the agentlm cache), the item sources (AgentBench's split files, data roots with
a split, folders of games), and each game's domain, grammar and expert plan (AgentBench's logic/ where found, else
the game file's own copy). The environment itself is agentlm.envs.alfworld.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import tarfile
from typing import Any, Sequence

from agentlm.cache import build_once, cache_root
from agentlm.envs.base import Task

log = logging.getLogger(__name__)

GAMES_DIR = "json_2.1.1"
ARCHIVE = "json_2.1.1.tar.xz"
GAME_FILE = "game.tw-pddl"
LOGIC_FILES = ("alfred.pddl", "alfred.twl2")
SPLITS = ("train", "valid_seen", "valid_train", "valid_unseen")
# Task folder prefix -> key of the example trajectory in AgentBench's prompt files (order as in its split files).
TASK_TYPES = {"pick_and_place": "put", "pick_clean_then_place": "clean", "pick_heat_then_place": "heat",
              "pick_cool_then_place": "cool", "look_at_obj": "examine", "pick_two_obj": "puttwo"}


def extracted_archive(archive: str | os.PathLike) -> pathlib.Path:
    """An ALFWORLD_DATA root holding json_2.1.1/, extracted from `archive` once into the agentlm cache."""
    archive = pathlib.Path(archive)
    size = archive.stat().st_size
    stem = re.sub(r"\.(tar\.\w+|tgz|tar)$", "", archive.name)
    entry = cache_root() / "alfworld" / f"{stem}-{size}"  # the size tells two versions of one archive apart

    def build(tmp: pathlib.Path) -> None:
        log.info("extracting %s into %s (once)", archive, entry)
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        if not (tmp / GAMES_DIR).is_dir():
            raise ValueError(f"{archive}: the archive has no top-level {GAMES_DIR}/ folder")

    return build_once(entry, build, directory=True, what=f"ALFWorld games from {archive}")


def data_root(path: str | os.PathLike) -> pathlib.Path:
    """The ALFWORLD_DATA root for `path`: a folder holding json_2.1.1/ (or its archive), or the archive itself."""
    p = pathlib.Path(path).expanduser()
    if p.is_dir() and (p / GAMES_DIR).is_dir():
        return p
    archive = p if p.is_file() else p / ARCHIVE
    if archive.is_file():
        return extracted_archive(archive)
    raise FileNotFoundError(f"{p}: no ALFWorld data here (expected {GAMES_DIR}/ or {ARCHIVE})")


def env_root() -> pathlib.Path | None:
    """$ALFWORLD_DATA when it holds the games. The alfworld package sets it to its own default (~/.cache/alfworld,
    created empty) when unset, so an empty folder there means "not given", not an error."""
    given = os.environ.get("ALFWORLD_DATA")
    try:
        return data_root(given) if given else None
    except FileNotFoundError:
        return None


def find_root(near: pathlib.Path | None = None, data_path: str | None = None) -> pathlib.Path | None:
    """`data_path`, else $ALFWORLD_DATA (when it holds games), else the nearest folder at or above `near` that
    holds them."""
    if data_path:
        return data_root(data_path)
    root = env_root()
    if root is not None:
        return root
    for folder in ([near, *near.parents][:3] if near else []):
        if (folder / GAMES_DIR).is_dir() or (folder / ARCHIVE).is_file():
            return data_root(folder)
    return None


def logic_near(folder: pathlib.Path | None) -> pathlib.Path | None:
    """The `logic/` folder (alfred.pddl + alfred.twl2) at or up to two levels above `folder`, where AgentBench's
    base_config expects it ($ALFWORLD_DATA/logic)."""
    for f in ([folder, *folder.parents][:3] if folder else []):
        if all((f / "logic" / name).is_file() for name in LOGIC_FILES):
            return f / "logic"
    return None


def task_type(game: str) -> str:
    """The AgentBench task type ('pick_and_place', ...) of a game path, from its task folder."""
    folder = pathlib.PurePosixPath(game).parts[-3] if len(pathlib.PurePosixPath(game).parts) >= 3 else ""
    for prefix in TASK_TYPES:
        if folder.startswith(prefix):
            return prefix
    raise ValueError(f"{game}: task folder {folder!r} names no ALFWorld task type ({', '.join(TASK_TYPES)})")


def make_task(game: str, root: pathlib.Path | None, split: str, index: int, prefix: str = "alfworld",
              logic: pathlib.Path | None = None) -> Task:
    data = {"game": game, "task_type": task_type(game)}
    if root is not None:
        data["root"] = str(root)
    if logic is not None:
        data["logic"] = str(logic)
    return Task(id=f"{prefix}_{split}_{index:04d}", env="alfworld", data=data, split=split)


def walk_games(folder: pathlib.Path) -> tuple[list[pathlib.Path], dict[str, int]]:
    """Game files under `folder` that ALFWorld plays, in a fixed order, and how many were left out and why
    (as ALFWorld's loader does: unsolvable games, and the 'movable' and 'Sliced' trials it does not support)."""
    games, skipped = [], {"unsolvable": 0, "movable_or_sliced": 0}
    for path in sorted(folder.rglob(GAME_FILE)):
        if "movable" in str(path.parent) or "Sliced" in str(path.parent):
            skipped["movable_or_sliced"] += 1
            continue
        try:
            solvable = json.loads(path.read_text(encoding="utf-8")).get("solvable", False)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a game file ({e})") from None
        if not solvable:
            skipped["unsolvable"] += 1
            continue
        games.append(path)
    return games, skipped


def load_tasks(source: str | os.PathLike, split: str = "std") -> list[Task]:
    """Games from
    - an AgentBench split file (std.json / dev.json: {task type: [paths relative to the data root]}) or a JSON
      list of such paths; the root is $ALFWORLD_DATA or found beside the file;
    - an ALFWORLD_DATA root (json_2.1.1/ or its .tar.xz) with `split` one of train / valid_seen / valid_train /
      valid_unseen, or a folder of games; every solvable game.tw-pddl below it, in path order.
    """
    p = pathlib.Path(source).expanduser()
    if p.suffix == ".json" and p.is_file():
        try:
            content = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not JSON ({e})") from None
        if isinstance(content, dict):
            paths = [g for key, games in content.items() for g in _path_list(games, f"{p} key {key!r}")]
        else:
            paths = _path_list(content, str(p))
        root, logic = find_root(p.parent), logic_near(p.parent)
        return [make_task(g, root, p.stem, i, logic=logic) for i, g in enumerate(paths)]
    if not p.exists():
        raise FileNotFoundError(f"ALFWorld tasks: {p} does not exist (give a split file such as AgentBench's "
                                f"std.json, an ALFWorld data root, or a folder of {GAME_FILE} files)")
    if p.is_dir() and not (p / GAMES_DIR).is_dir() and not (p / ARCHIVE).is_file():
        root, folder, logic = None, p, logic_near(p)
    else:
        if split not in SPLITS:
            raise ValueError(f"{p}: an ALFWorld data root needs split one of {SPLITS}, not {split!r}")
        root, logic = data_root(p), logic_near(p if p.is_dir() else p.parent)
        folder = root / GAMES_DIR / split
    games, skipped = walk_games(folder)
    if any(skipped.values()):
        log.warning("%s: left out %s (as ALFWorld's own loader does)", folder, skipped)
    split_name = split if split in SPLITS else folder.name
    return [make_task(str(g.relative_to(root)) if root else str(g), root, split_name, i, logic=logic)
            for i, g in enumerate(games)]


def _path_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise ValueError(f"{where}: expected a list of game paths, got {type(value).__name__}")
    return value


def game_path(task: Task, data_path: str | None = None) -> pathlib.Path:
    """The game file of a task: absolute, or joined onto the data root (option, $ALFWORLD_DATA, or the task's)."""
    game = pathlib.Path(task.data["game"])
    if game.is_absolute():
        path = game
    else:
        root = find_root(data_path=data_path) or (pathlib.Path(task.data["root"]) if task.data.get("root") else None)
        if root is None:
            raise FileNotFoundError(f"task {task.id}: {game} is relative and no ALFWorld data root is known (set "
                                    f"$ALFWORLD_DATA, now {os.environ.get('ALFWORLD_DATA')!r}, or the data_path "
                                    f"option)")
        path = root / game
    if not path.is_file():
        raise FileNotFoundError(f"task {task.id}: game file {path} does not exist")
    return path


def logic_for(task: Task, data_path: str | None = None, logic_dir: str | None = None) -> pathlib.Path | None:
    """The domain and grammar a game is played with: `logic_dir` ("embedded" = the game file's own copy), else
    logic/ beside `data_path`, $ALFWORLD_DATA or the task's data, else None (the game's own copy)."""
    if logic_dir == "embedded":
        return None
    if logic_dir:
        found = logic_near(pathlib.Path(logic_dir).parent) if pathlib.Path(logic_dir).name == "logic" else None
        if found is None:
            raise FileNotFoundError(f"logic_dir {logic_dir}: expected a folder logic/ holding {LOGIC_FILES}")
        return found
    for base in (data_path, os.environ.get("ALFWORLD_DATA")):
        found = logic_near(pathlib.Path(base)) if base else None
        if found:
            return found
    return pathlib.Path(task.data["logic"]) if task.data.get("logic") else None


_TEMPLATE = re.compile(r'action (\w+) \{\s*template :: "([^"]*)";')
_GOAL = re.compile(r'"rhs": "Your task is to: ([^"]*)"')


def translate_plan(plan: Sequence[str], source_grammar: str, target_grammar: str) -> list[str]:
    """Commands written with one grammar's action templates, in another's (the newer game files say
    "move X to Y" where AgentBench's grammar says "put X in/on Y")."""
    source, target = dict(_TEMPLATE.findall(source_grammar)), dict(_TEMPLATE.findall(target_grammar))
    rules = []
    for action, template in source.items():
        if action in target and target[action] != template and "[" not in template:
            slots = re.split(r"(\{\w+\})", template)
            pattern = "".join(f"(?P<{s[1:-1]}>.+?)" if s.startswith("{") else re.escape(s) for s in slots)
            rules.append((re.compile(pattern + "$"), target[action]))
    out = []
    for command in plan:
        for pattern, template in rules:
            m = pattern.match(command)
            if m:
                command = template.format(**m.groupdict())
                break
        out.append(command)
    return out


def game_data(task: Task, data_path: str | None = None, logic_dir: str | None = None) -> dict[str, Any]:
    """The game as TextWorld's PDDL backend loads it. With AgentBench's logic/ (the default where it is found),
    its domain and grammar replace the game file's own copy, the game's goal goes into the grammar as ALFWorld's
    add_task_to_grammar does, and the expert plan is rewritten in that grammar's commands."""
    path = game_path(task, data_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"task {task.id}: {path} is not a game file ({e})") from None
    missing = [k for k in ("pddl_domain", "grammar", "pddl_problem") if k not in data]
    if missing:
        raise ValueError(f"task {task.id}: {path} lacks {missing}")
    logic = logic_for(task, data_path, logic_dir)
    if logic is None:
        return data
    grammar = (logic / "alfred.twl2").read_text(encoding="utf-8")
    goal = _GOAL.search(data["grammar"])
    if goal is None or "UNKNOWN GOAL." not in grammar:
        raise ValueError(f"task {task.id}: cannot carry the goal of {path} into {logic / 'alfred.twl2'}")
    walkthrough = translate_plan(data.get("walkthrough") or [], data["grammar"], grammar)
    return {**data, "pddl_domain": (logic / "alfred.pddl").read_text(encoding="utf-8"),
            "grammar": grammar.replace("UNKNOWN GOAL.", goal.group(1)), "walkthrough": walkthrough}
