"""A MariaDB server for the DB environment's MariaDB tests: the one already running in $AGENTLM_MARIADB_DIR, or a
fresh one in a temporary directory that is stopped afterwards. Skips where mariadb-server is missing (not on CI,
which installs it)."""
import contextlib
import os
import shutil

import pytest


@contextlib.contextmanager
def running_mariadb(tmp_path_factory, port: int):
    """Yields the server's data directory."""
    from agentlm.envs.mariadb import MariaDBServer

    if not shutil.which("mariadb-install-db") and not os.environ.get("CI"):
        pytest.skip("mariadb-server is not installed (make mariadb)")
    datadir = os.environ.get("AGENTLM_MARIADB_DIR") or str(tmp_path_factory.mktemp("mariadb"))
    server = MariaDBServer(datadir, port=port)
    started = not server.running()
    server.start()
    try:
        yield server, datadir
    finally:
        if started:
            server.stop()
