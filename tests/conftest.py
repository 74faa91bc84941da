"""Shared fixtures: one embedded PostgreSQL per test session, a fresh database per test,
and one generated-and-built warehouse shared by the read-only mart tests."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from psycopg import sql

from kam.alerts.delivery import Smtp
from kam.local.embedded_server import EmbeddedServer, free_port
from kam.settings import PROJECT_DIR, Settings
from kam.warehouse.bootstrap import bootstrap

AS_OF = date(2026, 10, 31)
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("server-home")
    embedded = EmbeddedServer(home / "warehouse")
    state = embedded.start()
    yield state
    embedded.stop()


def make_settings(home: Path, url: str | None) -> Settings:
    return Settings(home=home, project_dir=PROJECT_DIR, warehouse_url=url, warehouse_port=None)


def _admin(state) -> psycopg.Connection:
    return psycopg.connect(
        state.url(role="postgres", password=state.superuser_password, database="postgres"), autocommit=True
    )


def create_database(state, name: str) -> str:
    with _admin(state) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {} owner kam").format(sql.Identifier(name)))
    url = state.url(database=name)
    bootstrap(url)
    return url


def drop_database(state, name: str) -> None:
    with _admin(state) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def warehouse(server):
    """A fresh, bootstrapped database on the session's server; dropped afterwards."""
    name = f"test_{next(_database_numbers)}"
    yield create_database(server, name)
    drop_database(server, name)


@pytest.fixture
def kam_env(tmp_path, warehouse, monkeypatch):
    """Environment for `kam` subprocesses: own KAM_HOME, the test database as the warehouse."""
    monkeypatch.setenv("KAM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAM_WAREHOUSE_URL", warehouse)
    return dict(os.environ)


def run_kam(
    *args: str, env: dict | None = None, check: bool = False, program: str = "kam"
) -> subprocess.CompletedProcess:
    """`kam ...` (or `kam-dev ...`, the developer tools) as a user runs it."""
    kam = Path(sys.executable).parent / program
    result = subprocess.run([str(kam), *args], capture_output=True, text=True, env=env, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(
            f"kam {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def scalar(url: str, query: str, params: tuple | None = None):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()[0]


def rows(url: str, query: str, params: tuple | None = None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="session")
def built_warehouse(server, tmp_path_factory):
    """Scale-0.2 synthetic data, loaded and built into the marts as of AS_OF (read-only)."""
    from kam.ingest.files import Loader
    from kam.pipeline import build_marts, publish_marts
    from tools.synthetic import generate

    home = tmp_path_factory.mktemp("built-home")
    url = create_database(server, "built")
    settings = make_settings(home, url)
    generate(settings.landing_dir, scale=0.2, seed=7, end_date=AS_OF, progress=lambda m: None)
    results = Loader(url, progress=lambda m: None).load_paths([settings.landing_dir])
    assert all(r.status == "loaded" for r in results), [r.message for r in results if r.status != "loaded"]
    build = build_marts(url, settings, AS_OF, progress=lambda m: None)
    publish_marts(url, AS_OF, "test-run", build["invocation_id"])
    yield {"url": url, "settings": settings, "landing": settings.landing_dir, "as_of": AS_OF}
    drop_database(server, "built")


class Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free loopback port, keeping what it receives."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, Smtp("127.0.0.1", controller.port)
    controller.stop()


def _erp(kind: str):
    """A fresh ERP database with its master data (tests/erp_fixtures.py), dropped afterwards."""
    import tests.erp_fixtures

    erp = getattr(tests.erp_fixtures, kind)()
    try:
        erp.master_data()
        yield erp
    finally:
        erp.close()


@pytest.fixture
def erpnext():
    """An ERPNext site's database on the machine's MariaDB."""
    yield from _erp("ErpNext")


@pytest.fixture
def odoo():
    """An Odoo 17 database on the machine's PostgreSQL."""
    yield from _erp("Odoo")
