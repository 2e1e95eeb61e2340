"""A response cache keyed by the exact request, so rerunning a stage (or resuming after a crash) costs nothing.

SQLite in WAL mode: one file, safe across the worker threads of one run and across processes sharing it, and a
row is either committed or absent after a crash. Only complete API responses are cached; transport errors never
are. A damaged cache is never read: opening checks the file (under the entry's `agentlm.cache` lock, so two
processes starting together do not both repair it) and a file SQLite cannot read is moved aside, logged and
replaced by an empty cache (the moved file keeps paid-for replies for inspection); a row whose response is not
valid JSON is logged, deleted and asked again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import sqlite3
import threading
import time
from typing import Any

from agentlm.cache import entry_lock

log = logging.getLogger(__name__)


def request_key(request: dict[str, Any]) -> str:
    """A stable hash of a request (model, messages, sampling parameters, attempt number)."""
    blob = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _connect(path: pathlib.Path) -> sqlite3.Connection:
    """Opens the cache and checks it; raises sqlite3.DatabaseError when the file is not a sound database."""
    db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, request TEXT, response TEXT)")
        db.commit()
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(problems[:3]))
        return db
    except BaseException:
        db.close()
        raise


def _move_aside(path: pathlib.Path) -> pathlib.Path:
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        part = pathlib.Path(str(path) + suffix)
        if part.exists():
            os.replace(part, str(aside) + suffix)
    return aside


class ResponseCache:
    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with entry_lock(self.path):
            try:
                self._db = _connect(self.path)
            except sqlite3.DatabaseError as e:
                aside = _move_aside(self.path)
                log.warning("teacher response cache %s is unreadable (%s); moved it to %s and started an empty one",
                            self.path, e, aside)
                self._db = _connect(self.path)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
            if not row:
                return None
            try:
                return json.loads(row[0])
            except (TypeError, ValueError) as e:
                log.warning("teacher response cache %s: entry %s is not valid JSON (%s); dropping it, the request "
                            "will be sent again", self.path, key[:12], e)
                self._db.execute("DELETE FROM responses WHERE key = ?", (key,))
                self._db.commit()
                return None

    def put(self, key: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                             (key, json.dumps(request, sort_keys=True), json.dumps(response, sort_keys=True)))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
