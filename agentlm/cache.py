"""Cache entries that several processes and threads may need at the same moment (generated games, extracted
archives, compiled engines, root filesystems, prepared datasets).

Evaluation and the data pipeline run episodes in parallel workers, and several of them often ask for the same
missing entry at once. Every entry therefore
- is built by one process while the others wait on a per-entry lock file (`filelock`, which also serialises
  threads of one process),
- is written under a temporary name beside its final place and renamed into place only when complete, so no
  reader ever sees half an entry,
- is checked when found: a directory entry is complete only with its marker file; a caller's `valid` check can
  add more. An entry that fails the check (left by a crash, a full disk, a killed build) is logged and rebuilt.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import tempfile
from typing import Callable, Iterator

import filelock

log = logging.getLogger(__name__)

COMPLETE = ".complete"  # marker file inside a finished directory entry


def cache_root() -> pathlib.Path:
    """$AGENTLM_CACHE, else ~/.cache/agentlm."""
    root = os.environ.get("AGENTLM_CACHE")
    return pathlib.Path(root).expanduser() if root else pathlib.Path.home() / ".cache" / "agentlm"


@contextlib.contextmanager
def entry_lock(path: str | os.PathLike, timeout: float = -1) -> Iterator[None]:
    """Holds the lock of one cache entry (a `<name>.lock` file beside it)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path.parent / f".{path.name}.lock"), timeout=timeout):
        yield


def is_complete(path: pathlib.Path, valid: Callable[[pathlib.Path], bool] | None = None) -> bool:
    if path.is_dir():
        ok = (path / COMPLETE).is_file()
    else:
        ok = path.is_file() and path.stat().st_size > 0
    return ok and (valid is None or bool(valid(path)))


def _discard(path: pathlib.Path) -> None:
    """Moves a broken entry out of the way, then deletes it."""
    aside = path.with_name(f".{path.name}.broken-{os.getpid()}")
    os.replace(path, aside)
    if aside.is_dir():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)


def build_once(path: str | os.PathLike, build: Callable[[pathlib.Path], None], *, directory: bool,
               valid: Callable[[pathlib.Path], bool] | None = None, what: str = "") -> pathlib.Path:
    """Returns `path`, building it first if it is missing or broken.

    `build(tmp)` writes the entry at `tmp` (a fresh empty directory when `directory`, else a file path that does
    not exist yet); it is renamed to `path` only after `build` returns. A build that raises leaves no entry."""
    path = pathlib.Path(path)
    if is_complete(path, valid):
        return path
    with entry_lock(path):
        if is_complete(path, valid):  # another process built it while we waited
            return path
        if path.exists() or path.is_symlink():
            log.warning("cache entry %s is incomplete or corrupt; rebuilding%s", path, f" ({what})" if what else "")
            _discard(path)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            if directory:
                build(tmp)
                (tmp / COMPLETE).write_text("")
                target = tmp
            else:
                target = tmp / path.name
                build(target)
                if not target.is_file():
                    raise RuntimeError(f"building cache entry {path}: the builder wrote no file")
            if not is_complete(target, valid):
                raise RuntimeError(f"building cache entry {path}: the new entry fails its check")
            os.replace(target, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def write_atomic(path: str | os.PathLike, data: bytes | str) -> pathlib.Path:
    """Writes a whole file so that readers see the old content or the new, never a part."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path
