"""The embedded warehouse: a real PostgreSQL on 127.0.0.1 under KAM_HOME, or an external one."""

from __future__ import annotations

import psycopg

from kam.warehouse.bootstrap import bootstrap
from kam.warehouse.connect import connect
from tests.conftest import rows, run_kam


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
    assert run_kam("warehouse", "url", check=True).stdout.strip() == warehouse
    run_kam("warehouse", "start", check=True)
    assert not (tmp_path / "external" / "warehouse").exists()


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
