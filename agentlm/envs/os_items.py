"""AgentBench os_interaction items in every shape AgentBench's own loader accepts, and its directory layout.

The shapes (the 26-item dev file uses a few; the seven folders of the test set use all of them):
- a data file is JSON holding a list of items or one item object, or JSONL with one item per line;
- a script (`create.init`, `start`, `evaluation.example`, a `check` entry) is a shell string, {"code": ...} or
  {"file": ...}, either with an optional "language" ("bash" by default, or "python");
- `create.init` is one script or a list of them (run in order; files and shell strings may be mixed);
- `evaluation.match` is a string (compared stripped), {"answer", "strip"} or {"regex"}; otherwise
  `evaluation.check` is one script or a list where `null` stands for the item's `example` script and every other
  entry is a script that gets (answer, outputs of the entries before it) as arguments. The standard checks
  (check/integer-match.py and friends) are recognised by name and run built in.

Layout: AgentBench's task config pairs `data/<n>/*.json` with `scripts/<n>/`, and file entries are relative to
that scripts directory. `load_tasks` accepts a file, a glob, a folder of data files, or the `data` folder itself
(every sub-folder with its matching `scripts/<n>`), and records each item's scripts directory with the item.
Ids are os_<folder or file stem>_<index>, the index counting items across the folder's files in name order.

`needs_root` says whether an item's scripts do what only a root-like machine allows (new users and groups,
ownership changes, sudo, apt/dpkg, writes into /usr/bin, /bin, /sbin): where no root sandbox is
available those items are reported as unscorable instead of failed.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import pathlib
import re
from typing import Any

from agentlm.envs.base import Task
from agentlm.jsonl import parse_lines

BUILTIN_CHECK_NAMES = ("integer-match", "string-match", "size-match", "containing", "in")
SCRIPTS_DIR_KEY = "_scripts_dir"  # set by load_tasks on items that come with AgentBench's scripts folder
ROOT_MARKERS = re.compile(
    r"\b(useradd|adduser|userdel|deluser|groupadd|addgroup|groupdel|delgroup|usermod|groupmod|gpasswd|chpasswd|"
    r"chown|chgrp|setfacl|sudo|visudo|apt|apt-get|apt-cache|dpkg|update-alternatives)\b"
    r"|(?:>\s*|\b(?:cp|mv|install|ln|tee|touch|rm)\b[^\n;|&]*?\s)/(?:usr/)?s?bin/|/etc/sudoers")


class OSItemError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Script:
    language: str  # "bash" or "python"
    code: str | None = None  # inline code
    file: str | None = None  # path relative to the item's scripts directory

    @property
    def builtin(self) -> str | None:
        """The standard check this entry names (check/integer-match.py ...), run built in."""
        stem = pathlib.PurePosixPath(self.file).stem if self.file else ""
        return stem if stem in BUILTIN_CHECK_NAMES else None

    @property
    def interpreter(self) -> str:
        return "python3" if self.language.startswith("python") else "bash"


@dataclasses.dataclass(frozen=True)
class OSItem:
    description: str
    init: tuple[Script, ...]
    start: Script | None
    match: dict | None  # {"answer": str, "strip": bool} or {"regex": str}
    check: tuple[Script | None, ...] | None
    example: Script | None


def script(obj: Any, where: str) -> Script | None:
    if obj is None or obj == "":
        return None
    if isinstance(obj, str):
        return Script("bash", code=obj)
    if isinstance(obj, dict) and ("code" in obj or "file" in obj):
        lang = str(obj.get("language") or "bash").lower()
        if lang not in ("bash", "sh", "python", "python3"):
            raise OSItemError(f"{where}: language {lang!r} (bash or python)")
        if "code" in obj and not isinstance(obj["code"], str) or "file" in obj and not isinstance(obj["file"], str):
            raise OSItemError(f"{where}: code/file must be a string")
        return Script("python" if lang.startswith("python") else "bash", code=obj.get("code"),
                      file=None if "code" in obj else obj["file"])
    raise OSItemError(f"{where}: a script is a shell string, {{\"code\": ...}} or {{\"file\": ...}}, not {obj!r:.80}")


def _scripts(obj: Any, where: str) -> tuple[Script, ...]:
    items = obj if isinstance(obj, list) else [obj]
    return tuple(s for n, o in enumerate(items) if (s := script(o, f"{where}[{n}]")) is not None)


def parse_item(item: Any, where: str) -> OSItem:
    """Reads one item as AgentBench's loader does; raises OSItemError naming the item and field."""
    if not isinstance(item, dict) or not isinstance(item.get("description"), str):
        raise OSItemError(f"{where}: needs a 'description' string")
    create = item.get("create")
    create = create if isinstance(create, dict) else {}  # AgentBench reads init only from an object
    ev = item.get("evaluation")
    if not isinstance(ev, dict) or not ("match" in ev or "check" in ev):
        raise OSItemError(f"{where}: evaluation needs 'match' or 'check'")
    match, check = None, None
    if "match" in ev:
        m = ev["match"]
        if isinstance(m, dict) and ("answer" in m or "regex" in m):
            match = {"regex": str(m["regex"])} if "regex" in m else {"answer": str(m["answer"]),
                                                                      "strip": bool(m.get("strip", True))}
        elif isinstance(m, (str, int, float)):
            match = {"answer": str(m), "strip": True}
        else:
            raise OSItemError(f"{where}: evaluation.match is a string, {{answer, strip}} or {{regex}}")
    else:
        entries = ev["check"] if isinstance(ev["check"], list) else [ev["check"]]
        check = tuple(None if e is None else script(e, f"{where}: evaluation.check[{n}]")
                      for n, e in enumerate(entries))
    example = script(ev.get("example", item.get("example")), f"{where}: evaluation.example")
    if check is not None and None in check and example is None:
        raise OSItemError(f"{where}: evaluation.check has null (use the example's output) but no example")
    return OSItem(description=item["description"], init=_scripts(create.get("init"), f"{where}: create.init"),
                  start=script(item.get("start"), f"{where}: start"), match=match, check=check, example=example)


def read_items(path: pathlib.Path) -> list:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return parse_lines(text, path, OSItemError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise OSItemError(f"{path}: invalid JSON ({e})") from None
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise OSItemError(f"{path}: expected an item object or a list of items")
    return data


def _data_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".jsonl")),
                  key=lambda p: _natural(p.name))


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _scripts_for(folder: pathlib.Path, name: str) -> pathlib.Path | None:
    """AgentBench's pairing: <root>/data/<name> goes with <root>/scripts/<name>."""
    for base in (folder.parent, folder):
        cand = base / "scripts" / name
        if cand.is_dir():
            return cand
    return None


def sources(source: str | pathlib.Path) -> list[tuple[str, list[pathlib.Path], pathlib.Path | None]]:
    """(id prefix, data files, scripts directory) groups for a file, glob, data folder or AgentBench data root."""
    text = str(source)
    if any(c in text for c in "*?["):
        files = sorted((pathlib.Path(p) for p in glob.glob(text)), key=lambda p: _natural(str(p)))
        if not files:
            raise OSItemError(f"{text}: no file matches")
        folder = files[0].parent
        return [(folder.name, files, _scripts_for(folder.parent, folder.name))]
    path = pathlib.Path(source)
    if path.is_file():
        scripts = _scripts_for(path.parent.parent, path.parent.name) if path.parent.name.isdigit() else \
            _scripts_for(path.parent, path.stem)
        return [(path.stem, [path], scripts)]
    if not path.is_dir():
        raise OSItemError(f"{path}: no such file or folder of os_interaction items")
    groups = []
    files = _data_files(path)
    if files:  # a folder of data files (one of AgentBench's numbered folders, or any)
        groups.append((path.name, files, _scripts_for(path.parent, path.name)))
    for sub in sorted((p for p in path.iterdir() if p.is_dir() and p.name != "scripts"), key=lambda p: _natural(p.name)):
        sub_files = _data_files(sub)
        if sub_files:
            groups.append((sub.name, sub_files, _scripts_for(path, sub.name)))
    if not groups:
        raise OSItemError(f"{path}: no .json/.jsonl item files in it or in its sub-folders")
    if files and len(groups) > 1:  # AgentBench's data root: loose files (dev.json) pair with scripts/<stem>
        groups = [(f.stem, [f], _scripts_for(path, f.stem)) for f in files] + groups[1:]
    return groups


def load_tasks(source: str | pathlib.Path, split: str = "dev") -> list[Task]:
    tasks = []
    for prefix, files, scripts in sources(source):
        n = 0
        for f in files:
            for i, item in enumerate(read_items(f)):
                parse_item(item, f"{f} item {i}")
                if scripts is not None:
                    item = {**item, SCRIPTS_DIR_KEY: str(scripts)}
                tasks.append(Task(id=f"os_{re.sub(r'[^A-Za-z0-9]+', '_', prefix)}_{n}", env="os", data=item,
                                  split=split))
                n += 1
    return tasks


def resolve(s: Script, dirs: list[pathlib.Path]) -> str | None:
    """The script's code: inline, or read from the first directory that has the file; None if none has it."""
    if s.code is not None:
        return s.code
    for d in dirs:
        p = d / s.file
        if p.is_file():
            return p.read_text(encoding="utf-8")
    return None


def scripts_dirs(item: dict, configured: pathlib.Path | None) -> list[pathlib.Path]:
    """Where an item's file entries are looked up: its own AgentBench scripts folder first, then the
    configured directory (the project's stand-ins for the dev file's few item scripts)."""
    dirs = [pathlib.Path(item[SCRIPTS_DIR_KEY])] if item.get(SCRIPTS_DIR_KEY) else []
    return dirs + ([configured] if configured else [])


def needs_root(item: dict, dirs: list[pathlib.Path]) -> str | None:
    """The first root-only thing the item's scripts or description mention (see ROOT_MARKERS), else None."""
    parsed = parse_item(item, "item")
    texts = [item["description"]]
    for s in (*parsed.init, parsed.start, parsed.example, *(parsed.check or ())):
        if s is not None and not s.builtin:
            texts.append(resolve(s, dirs) or "")
    for t in texts:
        m = ROOT_MARKERS.search(t)
        if m:
            return m.group(0)
    return None
