"""The embedded warehouse: a real PostgreSQL on 127.0.0.1 under KAM_HOME, or an external one."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from kam.local.embedded_server import SERVER_USER_WHEN_ROOT, EmbeddedServer, pg_bin
from kam.warehouse.bootstrap import bootstrap
from kam.warehouse.connect import connect
from kam.warehouse.roles import bi_url
from tests.conftest import make_settings, rows, run_kam


def test_embedded_warehouse_lifecycle_under_its_own_kam_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KAM_HOME", str(tmp_path / "instance"))
    monkeypatch.delenv("KAM_WAREHOUSE_URL", raising=False)
    try:
        started = run_kam("warehouse", "start", check=True)
        assert "****" in started.stdout and "127.0.0.1" in started.stdout
        url = run_kam("warehouse", "url", check=True).stdout.strip()
        assert url.startswith("postgresql://kam:") and "@127.0.0.1:" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_user").fetchone()[0] == "kam"
            assert conn.execute("show wal_level").fetchone()[0] == "minimal"  # no replicas to feed
            schemas = {r[0] for r in conn.execute("select nspname from pg_namespace")}
        assert {"raw", "audit", "snapshots"} <= schemas
        assert (tmp_path / "instance" / "warehouse" / "pgdata" / "PG_VERSION").exists()
        status = run_kam("warehouse", "status")
        assert status.returncode == 0 and "running" in status.stdout
        password = url.split(":")[2].split("@")[0]
        assert password not in status.stdout
        assert run_kam("warehouse", "start", check=True).returncode == 0  # idempotent
    finally:
        run_kam("warehouse", "stop")
    assert run_kam("warehouse", "status").returncode == 3


def test_external_warehouse_url_is_used_and_no_embedded_server_starts(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("KAM_HOME", str(tmp_path / "external"))
    monkeypatch.setenv("KAM_WAREHOUSE_URL", warehouse)
    role = f"kam_bi_external_{tmp_path.name[-8:].replace('-', '_')}".lower()
    monkeypatch.setenv("KAM_BI_ROLE", role)
    monkeypatch.setenv("KAM_BI_PASSWORD", "from-the-env-file")
    assert run_kam("warehouse", "url", check=True).stdout.strip() == warehouse
    run_kam("warehouse", "start", check=True)
    assert not (tmp_path / "external" / "warehouse").exists()
    # the BI role comes up with the warehouse, with the password the deployment gave it
    try:
        with connect(bi_url(warehouse, make_settings(tmp_path / "external", warehouse))) as conn:
            assert conn.execute("select current_user").fetchone()[0] == role
            assert not conn.execute("select has_schema_privilege('raw', 'usage')").fetchone()[0]
    finally:
        with connect(warehouse, autocommit=True) as conn:
            conn.execute(
                sql.SQL("grant {0} to current_user; drop owned by {0}; drop role {0}").format(
                    sql.Identifier(role)
                )
            )


def test_bootstrap_replaces_an_earlier_warehouses_btree_batch_index_with_brin(warehouse):
    with connect(warehouse, autocommit=True) as conn:
        conn.execute("drop index raw.invoices_batch_brin")
        conn.execute("create index invoices_batch_idx on raw.invoices (_batch_id)")
    bootstrap(warehouse)
    bootstrap(warehouse)
    assert rows(
        warehouse,
        "select indexrelid::regclass::text, am.amname from pg_index join pg_class c on c.oid = indexrelid"
        " join pg_am am on am.oid = c.relam where indrelid = 'raw.invoices'::regclass order by 1",
    ) == [("raw.invoices_batch_brin", "brin"), ("raw.invoices_pkey", "btree")]


def test_bootstrap_moves_the_gates_copies_to_gate_rows_and_indexes_publications(warehouse):
    with connect(warehouse, autocommit=True) as conn:
        conn.execute("drop schema gate_rows; create schema raw_gate; create table raw_gate.invoices (id int)")
        conn.execute("drop index audit.publications_day")
    bootstrap(warehouse)
    assert rows(warehouse, "select nspname from pg_namespace where nspname in ('raw_gate', 'gate_rows')") == [
        ("gate_rows",)
    ]
    assert rows(
        warehouse,
        "select indexname from pg_indexes where schemaname = 'audit' and tablename = 'publications' order by 1",
    ) == [("publications_day",), ("publications_pkey",)]


def test_a_killed_server_nobody_reaped_is_seen_stopped_and_starts_again(tmp_path):
    """A postmaster killed while its parent lives on without reaping it is a zombie: pg_ctl
    still calls it running. The embedded server sees it dead, and starts at once."""
    server = EmbeddedServer(tmp_path / "warehouse")
    port = server.start().port
    server.stop()
    user = pwd.getpwnam(SERVER_USER_WHEN_ROOT) if os.geteuid() == 0 else None
    # a parent that starts the server as its own child and never waits for it
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, os, subprocess, sys, time\n"
            "ids = json.loads(sys.argv[1])\n"
            "def become():\n"
            "    if ids: os.setgid(ids[1]); os.setuid(ids[0])\n"
            "child = subprocess.Popen(sys.argv[2:], preexec_fn=become, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(600)\n",
            json.dumps([user.pw_uid, user.pw_gid] if user else []),
            pg_bin("postgres"),
            "-D",
            str(server.pgdata),
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            str(port),
            "-c",
            "unix_socket_directories=",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        postmaster = int(parent.stdout.readline())
        deadline = time.monotonic() + 60
        while not server.is_running():
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        os.kill(postmaster, signal.SIGKILL)
        stat = Path(f"/proc/{postmaster}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the server did not die"
            time.sleep(0.05)
        assert not server.is_running()
        state = server.start()
        assert server.is_running()
        with psycopg.connect(state.url()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        parent.kill()
        parent.wait()
        server.stop()
