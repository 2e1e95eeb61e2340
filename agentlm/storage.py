"""Where a run lives: local disk or object storage (gs://, s3://, any URL etils.epath knows), behind one path type.

On a pod every host writes its own shards of each checkpoint, and the one place all hosts share is a bucket
(MaxText's `base_output_directory=gs://...`). Orbax already speaks `etils.epath`, so every file a run reads or
writes goes through `storage.path()` too, and code never splits URLs by hand.

Object stores differ from a disk in one way that matters here: an object cannot be appended to. `AppendLog`
hides that for the run's logs (metrics.jsonl): a local file is appended as usual; a remote one is rewritten
whole, at most every `min_interval_s`, at every checkpoint (the trainer flushes it there) and at close. A preempted
run so loses only lines after its last checkpoint, which the resumed run writes again as it repeats those steps.

Backends: with TensorFlow installed, epath reads gs:// through tf.io.gfile; with `EPATH_USE_TF=false` it uses
fsspec (gcsfs), which is what the tests point at a local Cloud Storage emulator (tests/gcs_emulator.py).
"""
from __future__ import annotations

import os
import pathlib
import time

from etils import epath

PathLike = str | os.PathLike


def is_remote(p: PathLike) -> bool:
    """True for a URL such as gs://bucket/run (anything with a scheme), false for a local path."""
    return "://" in os.fspath(p)


def path(p: PathLike) -> epath.Path:
    """The one path type for run directories, checkpoints and data: local paths absolute, URLs as given."""
    if isinstance(p, epath.Path) and is_remote(p):
        return p
    s = os.fspath(p)
    return epath.Path(s) if is_remote(s) else epath.Path(os.path.abspath(os.path.expanduser(s)))


def local_path(p: PathLike, what: str):
    """`p` as a local pathlib path, or a clear error for a URL where a library can only read local files."""
    if is_remote(p):
        raise ValueError(f"{what}={os.fspath(p)!r}: must be a local path here (copy it to local disk first, e.g. "
                         f"`gsutil -m cp -r`)")
    return pathlib.Path(os.fspath(p)).absolute()


class AppendLog:
    """A text file that grows across restarts of a run, on a disk or in a bucket."""

    def __init__(self, p: PathLike, min_interval_s: float = 30.0):
        self.path = path(p)
        self.remote = is_remote(p)
        self.min_interval_s = min_interval_s
        self._last_upload = float("-inf")
        if self.remote:
            self._text = self.path.read_text() if self.path.exists() else ""
            self._dirty = False
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")

    def write(self, text: str) -> None:
        if not self.remote:
            self._file.write(text)
            self._file.flush()
            return
        self._text += text
        self._dirty = True
        if time.monotonic() - self._last_upload >= self.min_interval_s:
            self.flush()

    def flush(self) -> None:
        if not self.remote:
            self._file.flush()
        elif self._dirty:
            self.path.write_text(self._text)
            self._dirty = False
            self._last_upload = time.monotonic()

    def close(self) -> None:
        self.flush()
        if not self.remote:
            self._file.close()
