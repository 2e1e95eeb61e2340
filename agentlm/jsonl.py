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
