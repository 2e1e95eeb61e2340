"""Append-only JSONL record stores that make every stage exactly-once and resumable.

A teacher run can cost real money and be killed at any moment (preemption, Ctrl-C, kill -9). Each record is
written with one `write` of a complete line to a file opened O_APPEND and fsynced, so after a crash the file holds
whole records plus at most one torn last line. Opening the store again truncates that torn tail and remembers
which ids are done; a stage skips them, so rerunning any stage continues where it stopped and never writes an id
twice. An exclusive lock stops two processes from appending to the same file.
"""
from __future__ import annotations

import fcntl
import json
import os
import pathlib
import threading
from typing import Any, Iterator

from agentlm.cache import write_atomic


class StoreError(RuntimeError):
    pass


def read_jsonl(path: str | os.PathLike, *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    """Reads a JSONL file, naming the file and line of any bad record."""
    rows = []
    path = pathlib.Path(path)
    lines = path.read_bytes().split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if tolerate_torn_tail and i == len(lines) - 1:
                break
            raise StoreError(f"{path}:{i + 1}: not valid JSON ({e.msg})") from None
    return rows


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Writes JSON through a temporary file and a rename, so readers never see half a file."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes UTF-8 text through a temporary file and a rename (agentlm.cache.write_atomic, the one copy)."""
    write_atomic(path, text)


class RecordStore:
    """An append-only JSONL file of records keyed by `key` (default "id"), each key written at most once."""

    def __init__(self, path: str | os.PathLike, *, key: str = "id", fsync: bool = True):
        self.path = pathlib.Path(path)
        self.key = key
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreError(f"{self.path} is being written by another process (lock held)") from None
        self.repaired_bytes = self._repair_tail()
        self._rows: dict[str, dict[str, Any]] = {}
        for i, row in enumerate(read_jsonl(self.path) if self.path.exists() else []):
            k = row.get(self.key)
            if k is None:
                raise StoreError(f"{self.path}: record {i + 1} has no {self.key!r} field")
            if k in self._rows:
                raise StoreError(f"{self.path}: {self.key} {k!r} appears twice (file edited by hand?)")
            self._rows[k] = row
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair_tail(self) -> int:
        """Drops a torn last line left by a crash mid-write; returns how many bytes were dropped."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        cut = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        return len(data) - cut

    def __contains__(self, k: str) -> bool:
        with self._lock:
            return k in self._rows

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._rows.values())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def get(self, k: str) -> dict[str, Any] | None:
        with self._lock:
            return self._rows.get(k)

    def add(self, row: dict[str, Any]) -> bool:
        """Appends `row` unless its key is already stored; returns whether it was written."""
        k = row.get(self.key)
        if k is None:
            raise StoreError(f"{self.path}: record without {self.key!r}: {str(row)[:200]}")
        line = (json.dumps(row, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode("utf-8")
        with self._lock:
            if k in self._rows:
                return False
            view = memoryview(line)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            if self.fsync:
                os.fsync(self._fd)
            self._rows[k] = row
            return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
