"""The MariaDB data directory as a cache entry: processes that start the server together launch one server, and a
data directory left by a killed initialisation is initialised again (with a log line) instead of breaking every
later start."""
import logging
import multiprocessing
import os
import shutil

import pytest

from agentlm.envs.mariadb import MariaDBServer

PORT = 33072

needs_mariadb = pytest.mark.skipif(not shutil.which("mariadb-install-db") and not os.environ.get("CI"),
                                   reason="mariadb-server is not installed (make mariadb)")


def _start(datadir):
    server = MariaDBServer(datadir, port=PORT)
    server.start()
    return int(server.pidfile.read_text())


def _query(server) -> int:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 + 1")
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.mark.slow
@needs_mariadb
def test_processes_start_one_server_and_a_partial_data_directory_is_initialised_again(tmp_path, caplog):
    datadir = tmp_path / "mariadb"
    server = MariaDBServer(datadir, port=PORT)
    try:
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pids = pool.map(_start, [str(datadir)] * 2)
        assert pids[0] == pids[1] and server.running() and _query(server) == 2
        assert not [p for p in datadir.iterdir() if ".tmp-" in p.name]
        server.stop()

        (datadir / "data" / ".complete").unlink()  # as a killed mariadb-install-db leaves it: no marker
        caplog.set_level(logging.WARNING)
        server.start()
        assert "rebuilding" in caplog.text and "MariaDB data directory" in caplog.text
        assert (datadir / "data" / ".complete").is_file() and _query(server) == 2
    finally:
        server.stop()
