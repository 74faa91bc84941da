"""The warehouse: which server, how to connect, and the schemas the contract asks for."""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from kam.contract import RAW_SCHEMA, Table, load_contract
from kam.embedded_server import EmbeddedServer
from kam.settings import Settings


def embedded_server(settings: Settings) -> EmbeddedServer:
    return EmbeddedServer(settings.warehouse_dir, settings.warehouse_port)


def warehouse_url(settings: Settings, start: bool = True) -> str:
    """KAM_WAREHOUSE_URL when set (the embedded server is then never touched), else the
    embedded server's URL, starting it when `start`."""
    if settings.warehouse_url:
        return settings.warehouse_url
    server = embedded_server(settings)
    state = server.start() if start else server.state()
    if state is None:
        raise RuntimeError(f"no embedded warehouse under {settings.warehouse_dir}; run `kam warehouse start`")
    return state.url()


def mask_url(url: str) -> str:
    """The URL with its password replaced, for anything a person or a log will read."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit, application_name="kam")


def _raw_table_ddl(table: Table) -> list[sql.Composed]:
    name = sql.Identifier(RAW_SCHEMA, table.name)
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.data_type)) for c in table.columns
    ]
    key = sql.SQL(", ").join(map(sql.Identifier, table.primary_key))
    statements = [
        sql.SQL(
            "create table if not exists {} ({}, _batch_id bigint not null, "
            "_loaded_at timestamptz not null default now(), primary key ({}))"
        ).format(name, sql.SQL(", ").join(columns), key),
        # A contract that gained a column reaches existing warehouses without a migration tool.
        *[
            sql.SQL("alter table {} add column if not exists {} {}").format(
                name, sql.Identifier(c.name), sql.SQL(c.data_type)
            )
            for c in table.columns
        ],
        sql.SQL("create index if not exists {} on {} (_batch_id)").format(
            sql.Identifier(f"{table.name}_batch_idx"), name
        ),
    ]
    if table.description:
        statements.append(sql.SQL("comment on table {} is {}").format(name, sql.Literal(table.description)))
    return statements


def bootstrap(url: str) -> None:
    """Create the raw and audit schemas from the contract; idempotent and cheap."""
    with connect(url) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext('kam.bootstrap'))")
        conn.execute(resources.files("kam").joinpath("sql/audit.sql").read_text())
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(RAW_SCHEMA)))
        for table in load_contract().values():
            for statement in _raw_table_ddl(table):
                conn.execute(statement)


def ready_warehouse(settings: Settings) -> str:
    """The URL of a running, bootstrapped warehouse."""
    url = warehouse_url(settings)
    bootstrap(url)
    return url
