"""A Cloud Storage emulator on loopback for tests of runs whose directories live in a bucket.

`gcp-storage-emulator` (PyPI, test-only) speaks the JSON API that gcsfs, google-cloud-storage (TensorBoard's gs://
writer) and tensorstore (orbax's array store) use; each client is pointed at it through its own variable. epath is
told to use fsspec/gcsfs (`EPATH_USE_TF=false`) because TensorFlow's GCS filesystem has no emulator endpoint: that
one client is exercised only by a real bucket (docs/object_storage.md).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time

BUCKET = "agentlm-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(port: int) -> dict[str, str]:
    """Variables that point every storage client of the stack at an emulator on `port` (child processes inherit)."""
    url = f"http://127.0.0.1:{port}"
    return {
        "STORAGE_EMULATOR_HOST": url,  # gcsfs and google-cloud-storage
        "TENSORSTORE_GCS_HTTP_URL": url,  # orbax's arrays, through tensorstore's gcs driver
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",  # tensorstore: skip Google's credential discovery
        "GOOGLE_CLOUD_PROJECT": "agentlm-test",
        "EPATH_USE_TF": "false",  # epath: fsspec/gcsfs instead of tf.io.gfile
        # gcsfs caches directory listings per process for ever: a process watching what another writes (a test,
        # or host 1 listing host 0's checkpoints) would see a stale bucket. tf.io.gfile does not cache.
        "FSSPEC_GS": '{"use_listings_cache": false}',
    }


@contextlib.contextmanager
def running_emulator():
    """Starts an in-memory emulator with an empty bucket; yields the env for clients; stops it afterwards."""
    port = _free_port()
    args = ["start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--default-bucket", BUCKET]
    # its log goes to a file: a pipe nobody drains fills up and blocks every request thread on the logging lock
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"storage emulator did not start: {log.read()[-2000:]}")
            time.sleep(0.2)
        yield client_env(port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
