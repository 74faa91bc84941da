"""The embedded default warehouse: a real PostgreSQL 16 from the pgserver wheel.

pgserver's own get_server() listens on a Unix socket only; BI tools need TCP, so this
module drives the binaries pgserver bundles (initdb, pg_ctl) directly and serves
127.0.0.1 on a port. Data lives under KAM_HOME/warehouse. PostgreSQL refuses to run as
root, so as root the server runs as the unprivileged `pgserver` user, as pgserver does.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pwd
import secrets
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PROJECT_DATABASE = "kam"
PROJECT_ROLE = "kam"
SUPERUSER = "postgres"
SERVER_USER_WHEN_ROOT = "pgserver"
# The embedded server has no replicas or WAL archive to feed, so it writes the least WAL:
# a table created or truncated in the same transaction (a first load, every dbt table
# model) is then written once, to its own file, instead of twice. A deployment's own
# PostgreSQL keeps its replication settings; it is only slower at those steps.
SERVER_SETTINGS = {"wal_level": "minimal", "max_wal_senders": "0"}


class EmbeddedServerError(RuntimeError):
    pass


def pg_bin(name: str) -> str:
    # Located without importing pgserver: its package import probes runtime directories.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the pgserver package is not installed; run `make install`")
    return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as PostgreSQL binds: a port in TIME_WAIT after a stop is still ours to reuse
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class ServerState:
    port: int
    superuser_password: str
    role_password: str

    def url(
        self, role: str = PROJECT_ROLE, password: str | None = None, database: str = PROJECT_DATABASE
    ) -> str:
        secret = self.role_password if password is None else password
        return f"postgresql://{role}:{quote(secret, safe='')}@127.0.0.1:{self.port}/{database}"


class EmbeddedServer:
    def __init__(self, warehouse_dir: Path, requested_port: int | None = None):
        self.dir = warehouse_dir
        self.pgdata = warehouse_dir / "pgdata"
        self.state_file = warehouse_dir / "server.json"
        self.requested_port = requested_port
        self.run_as = SERVER_USER_WHEN_ROOT if os.geteuid() == 0 else None

    # -- state -----------------------------------------------------------------------
    def _read_state(self) -> ServerState | None:
        if not self.state_file.exists():
            return None
        return ServerState(**json.loads(self.state_file.read_text()))

    def _write_state(self, state: ServerState) -> None:
        self.state_file.write_text(json.dumps(state.__dict__))
        self.state_file.chmod(0o600)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # -- processes -------------------------------------------------------------------
    def _run(self, args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, user=self.run_as, cwd="/"
        )
        if result.returncode not in (0, 3):
            raise EmbeddedServerError(
                f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                f"\nServer log: {self.pgdata / 'server.log'}"
            )
        return result

    def _server_user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(self.run_as)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", self.run_as], check=True, capture_output=True
            )
            return pwd.getpwnam(self.run_as)

    def _prepare_ownership(self) -> None:
        """As root: the server user must own pgdata and reach it and the binaries."""
        if not self.run_as:
            return
        entry = self._server_user()
        traversable = stat.S_IXGRP | stat.S_IXOTH
        for folder in [*self.pgdata.parents, *Path(pg_bin("postgres")).parents]:
            if folder.exists() and (folder.stat().st_mode & traversable) != traversable:
                folder.chmod(folder.stat().st_mode | traversable | stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> ServerState:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        self._prepare_ownership()
        state = ServerState(
            port=self.requested_port or free_port(),
            superuser_password=secrets.token_urlsafe(18),
            role_password=secrets.token_urlsafe(18),
        )
        with tempfile.NamedTemporaryFile("w", dir=self.dir, delete=False) as pwfile:
            pwfile.write(state.superuser_password + "\n")
        try:
            if self.run_as:
                entry = self._server_user()
                os.chown(pwfile.name, entry.pw_uid, entry.pw_gid)
            self._run(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile.name}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ]
            )
        finally:
            os.unlink(pwfile.name)
        self._write_state(state)
        return state

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        if self._postmaster_is_dead():
            return False
        return self._run([pg_bin("pg_ctl"), "status", "-D", str(self.pgdata)]).returncode == 0

    def _postmaster_is_dead(self) -> bool:
        """A killed server whose process nobody has reaped yet (a zombie) still answers
        pg_ctl's kill(pid, 0), so pg_ctl calls it running and refuses to start another. Its
        pid file is then stale: removed, so that start works at once."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            process_state = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return False  # no pid file (stopped) or no /proc: pg_ctl decides
        if process_state.rsplit(")", 1)[1].split()[0] != "Z":
            return False
        pid_file.unlink(missing_ok=True)
        return True

    def start(self) -> ServerState:
        """Start (initialising on first use); idempotent and safe against a parallel start."""
        with self._lock():
            state = self._read_state()
            first_start = state is None or not (self.pgdata / "PG_VERSION").exists()
            if first_start:
                state = self._initdb()
            if self.is_running():
                return state
            wanted = self.requested_port or state.port
            if not _port_is_free(wanted):
                if self.requested_port:
                    raise EmbeddedServerError(f"port {wanted} (KAM_WAREHOUSE_PORT) is taken; choose another")
                wanted = free_port()
            if wanted != state.port:
                state.port = wanted
                self._write_state(state)
            options = f"-c listen_addresses=127.0.0.1 -p {state.port} -c unix_socket_directories=''"
            options += "".join(f" -c {name}={value}" for name, value in SERVER_SETTINGS.items())
            self._run(
                [
                    pg_bin("pg_ctl"),
                    "start",
                    "-D",
                    str(self.pgdata),
                    "-w",
                    "-t",
                    "90",
                    "-l",
                    str(self.pgdata / "server.log"),
                    "-o",
                    options,
                ]
            )
            if first_start:
                self._create_project_role(state)
            self._keep_server_databases_private(state)
            return state

    def _keep_server_databases_private(self, state: ServerState) -> None:
        """The server's own databases are for its superuser: without PUBLIC's CONNECT on them,
        the BI role reaches the project's database only (the project role keeps out of other
        databases it owns itself: kam.warehouse.roles). Idempotent, at every start."""
        import psycopg
        from psycopg import sql

        admin_url = state.url(role=SUPERUSER, password=state.superuser_password, database="postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for database in ("postgres", "template1"):
                conn.execute(
                    sql.SQL("revoke connect on database {} from public").format(sql.Identifier(database))
                )

    def _create_project_role(self, state: ServerState) -> None:
        import psycopg
        from psycopg import sql

        admin_url = state.url(role=SUPERUSER, password=state.superuser_password, database="postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create role {} login createrole createdb password {}").format(
                    sql.Identifier(PROJECT_ROLE), sql.Literal(state.role_password)
                )
            )
            conn.execute(
                sql.SQL("create database {} owner {}").format(
                    sql.Identifier(PROJECT_DATABASE), sql.Identifier(PROJECT_ROLE)
                )
            )

    def stop(self) -> bool:
        with self._lock():
            if not self.is_running():
                return False
            self._run([pg_bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60"])
            return True

    def state(self) -> ServerState | None:
        return self._read_state()
