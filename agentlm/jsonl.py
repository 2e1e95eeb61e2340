"""Reading JSON Lines files with errors that point at the line, so a bad row is found, not guessed at."""
from __future__ import annotations

import gzip
import json
import pathlib
from typing import Any, Iterator


def iter_jsonl(path: str | pathlib.Path) -> Iterator[tuple[int, Any]]:
    """Yields (1-based line number, parsed row) for each non-blank line; `.gz` files are read transparently.

    A line that is not JSON raises ValueError("<path>:<line>: not valid JSON (...)")."""
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e})") from None
            yield n, row


def parse_lines(text: str, where, error: type[Exception] = ValueError) -> list:
    """The rows of JSON Lines text already read (blank lines skipped); a bad line raises `error` naming
    `<where>:<line>`, so callers with their own error type keep it."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise error(f"{where}:{n}: not valid JSON ({e})") from None
    return rows


def read_json(path: str | pathlib.Path, kind: type = object):
    """A whole-file JSON document whose top level must be `kind` (list or dict); errors name the file."""
    path = pathlib.Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, kind):
        raise ValueError(f"{path}: expected a JSON {'list' if kind is list else 'object'} at the top level, "
                         f"got {type(data).__name__}")
    return data
