"""The MariaDB backend of the DB environment, and the local server it talks to.

The server is Debian's mariadb-server, run by this module on loopback only, from a data directory of the
project's own (default ~/.cache/agentlm/mariadb, or $AGENTLM_MARIADB_DIR), with file import/export disabled.
Each episode gets its own database and its own user that may touch nothing else (no FILE privilege, so no
LOAD_FILE / INTO OUTFILE), and every statement is capped with max_statement_time. The table hash is computed by
the server itself with the AgentBench expression, under MySQL's group_concat_max_len of 1024 (MariaDB's default
is larger).

    python -m agentlm.envs.mariadb start|stop|status [--datadir DIR] [--port N]
    make mariadb          # installs mariadb-server if missing, then starts it
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Sequence

from agentlm import cache

DEFAULT_PORT = 33061
SQLSTATE = {1064: "42000", 1054: "42S22", 1146: "42S02", 1142: "42000", 1044: "42000", 1045: "28000",
            1049: "42000", 1062: "23000", 1136: "21S01", 1969: "70100", 3024: "HY000"}


def default_datadir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("AGENTLM_MARIADB_DIR", pathlib.Path.home() / ".cache/agentlm/mariadb"))


class MariaDBServer:
    def __init__(self, datadir: str | os.PathLike | None = None, port: int = DEFAULT_PORT):
        self.root = pathlib.Path(datadir) if datadir else default_datadir()
        self.port = port
        self.data, self.socket = self.root / "data", self.root / "mysqld.sock"
        self.pidfile, self.client_file = self.root / "mysqld.pid", self.root / "client.json"

    # --- lifecycle ---
    def binaries(self) -> tuple[str, str]:
        server, install = shutil.which("mariadbd") or shutil.which("mysqld"), shutil.which("mariadb-install-db")
        if not server and pathlib.Path("/usr/sbin/mariadbd").exists():
            server = "/usr/sbin/mariadbd"
        if not server or not install:
            raise RuntimeError("mariadb-server is not installed (run `make mariadb`, or apt-get install mariadb-server)")
        return server, install

    def running(self) -> bool:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return self.socket.exists()

    def start(self, timeout: float = 60.0) -> None:
        """Starts the server (initialising its data directory on first use) unless it already runs.

        The data directory is an `agentlm.cache` entry: initialised under a temporary name, so one left by a killed
        initialisation is re-created (with a log line) instead of failing every later start; and the whole start
        holds the directory's lock, so processes starting together launch one server and the others find it."""
        if self.running():
            return
        server, install = self.binaries()
        with cache.entry_lock(self.root):
            if not self.running():
                self._launch(server, install, timeout)

    def _initialise(self, install: str, data: pathlib.Path) -> None:
        self.client_file.unlink(missing_ok=True)  # its admin user lived in the data directory being replaced
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([install, "--no-defaults", f"--datadir={data}", "--skip-test-db",
                        "--auth-root-authentication-method=socket", *user], check=True, capture_output=True, timeout=300)

    def _launch(self, server: str, install: str, timeout: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "no-files").mkdir(exist_ok=True)
        user = ["--user=root"] if os.geteuid() == 0 else []
        cache.build_once(self.data, lambda tmp: self._initialise(install, tmp), directory=True,
                         valid=lambda d: (d / "mysql").is_dir(), what="MariaDB data directory")
        log = open(self.root / "server.log", "ab")
        subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.data}", f"--socket={self.socket}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--pid-file={self.pidfile}", f"--secure-file-priv={self.root / 'no-files'}",
             "--local-infile=0", "--skip-name-resolve", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_general_ci", "--innodb-buffer-pool-size=64M", "--max-connections=200",
             "--skip-log-bin", *user],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline and not self.running():
            time.sleep(0.3)
        if not self.running():
            raise RuntimeError(f"mariadbd did not start; see {self.root / 'server.log'}")
        if not self.client_file.exists():
            self._create_admin()

    def _create_admin(self) -> None:
        password = secrets.token_hex(16)
        sql = (f"CREATE USER IF NOT EXISTS 'agentlm'@'localhost' IDENTIFIED BY '{password}';"
               "GRANT ALL PRIVILEGES ON *.* TO 'agentlm'@'localhost' WITH GRANT OPTION; FLUSH PRIVILEGES;")
        client = shutil.which("mariadb") or shutil.which("mysql")
        if not client:
            raise RuntimeError("the mariadb client is missing (apt-get install mariadb-client)")
        deadline = time.time() + 30
        while True:
            r = subprocess.run([client, "--no-defaults", "-uroot", f"--socket={self.socket}", "-e", sql],
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                break
            if time.time() > deadline:
                raise RuntimeError(f"could not create the admin user: {r.stderr.strip()}")
            time.sleep(0.5)
        self.client_file.write_text(json.dumps({"user": "agentlm", "password": password}))
        self.client_file.chmod(0o600)

    def stop(self) -> None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)

    # --- connections ---
    def connect(self, user: str | None = None, password: str | None = None, database: str | None = None):
        import pymysql
        if user is None:
            creds = json.loads(self.client_file.read_text())
            user, password = creds["user"], creds["password"]
        return pymysql.connect(unix_socket=str(self.socket), user=user, password=password, database=database,
                               charset="utf8mb4", autocommit=True)


def _error_text(e: Exception) -> str:
    args = getattr(e, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        state = getattr(e, "sqlstate", None) or SQLSTATE.get(args[0], "HY000")
        return f"{args[0]} ({state}): {args[1]}"
    return str(e)


class MariaDBDatabase:
    """One episode's database on the local server: the item's table (all TEXT), reachable by one throwaway user."""

    def __init__(self, table_name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 statement_timeout: float = 5.0, datadir: str | None = None, port: int = DEFAULT_PORT):
        self.server = MariaDBServer(datadir, port)
        if not self.server.running():
            raise RuntimeError(f"no MariaDB server running in {self.server.root} (start it: `make mariadb`)")
        # MySQL refuses empty column names (one dbbench table has one); such a column gets a placeholder name.
        self.table_name = table_name
        self.columns = [c if str(c).strip() else f"column_{n + 1}" for n, c in enumerate(columns)]
        self.db_name = "ep_" + secrets.token_hex(6)
        self.user, password = self.db_name, secrets.token_hex(12)
        self.admin = self.server.connect()
        with self.admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.db_name}` CHARACTER SET utf8mb4")
            cur.execute(f"CREATE USER '{self.user}'@'localhost' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT ALL PRIVILEGES ON `{self.db_name}`.* TO '{self.user}'@'localhost'")
            cols = ", ".join(f"{_ident(c)} TEXT" for c in self.columns)
            cur.execute(f"CREATE TABLE `{self.db_name}`.{_ident(table_name)} ({cols})")
            if rows:
                marks = "(" + ", ".join(["%s"] * len(self.columns)) + ")"
                cur.executemany(f"INSERT INTO `{self.db_name}`.{_ident(table_name)} VALUES {marks}",
                                [[None if v is None else str(v) for v in row] for row in rows])
        self.conn = self.server.connect(self.user, password, self.db_name)
        with self.conn.cursor() as cur:
            cur.execute(f"SET SESSION max_statement_time = {float(statement_timeout)}")

    def query(self, sql: str) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]

    def execute(self, sql: str) -> str:
        try:
            return str(self.query(sql))
        except Exception as e:  # noqa: BLE001 -- every server error is an observation
            return _error_text(e)

    def table_hash(self) -> str | None:
        cols = ",".join(_ident(c) for c in self.columns)
        sql = (f"select md5(group_concat(rowhash order by rowhash)) as hash from (SELECT substring(MD5(CONCAT_WS(',', "
               f"{cols})), 1, 5) AS rowhash FROM `{self.db_name}`.{_ident(self.table_name)}) as sub")
        try:
            with self.admin.cursor() as cur:
                cur.execute("SET SESSION group_concat_max_len = 1024")
                cur.execute(sql)
                row = cur.fetchone()
        except Exception:  # noqa: BLE001 -- a dropped or altered table hashes to nothing
            return None
        return row[0] if row else None

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            with self.admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.db_name}`")
                cur.execute(f"DROP USER IF EXISTS '{self.user}'@'localhost'")
        finally:
            self.admin.close()


def _ident(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run the local MariaDB server the DB environment can use.")
    ap.add_argument("command", choices=["start", "stop", "status"])
    ap.add_argument("--datadir", default=None, help=f"default: {default_datadir()}")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = ap.parse_args(argv)
    server = MariaDBServer(args.datadir, args.port)
    if args.command == "start":
        server.start()
        print(f"mariadb running: socket {server.socket}, 127.0.0.1:{server.port}, data {server.data}")
    elif args.command == "stop":
        server.stop()
        print("mariadb stopped")
    else:
        print("running" if server.running() else "not running")
        return 0 if server.running() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
