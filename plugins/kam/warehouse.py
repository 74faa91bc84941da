"""The warehouse: which server, how to connect, and the schemas the contract asks for."""

from __future__ import annotations

import json
import os
import secrets
from importlib import resources
from urllib.parse import quote, urlsplit, urlunsplit

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


BATCH_SETTING = "kam.batch_id"
# The loader's fast path COPYs straight into a raw table; each row's batch comes from the transaction.
BATCH_ID_DEFAULT = sql.SQL(
    f"nullif(current_setting({sql.Literal(BATCH_SETTING).as_string()}, true), '')::bigint"
)
HISTORY_SCHEMA = "snapshots"  # dbt's append-only history tables, one set of rows per published day
ROWS_UNDER_VALIDATION_SCHEMA = "gate_rows"  # the gates' copies of the rows they validate
FORMER_SCHEMAS = ("raw_gate",)  # what ROWS_UNDER_VALIDATION_SCHEMA was called; empty between gates


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit, application_name="kam")


def _raw_table_ddl(table: Table) -> list[sql.Composed]:
    name = sql.Identifier(RAW_SCHEMA, table.name)
    columns = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.data_type)) for c in table.columns]
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
        sql.SQL("alter table {} alter column _batch_id set default {}").format(name, BATCH_ID_DEFAULT),
        # BRIN: batches arrive in _batch_id order, so block range summaries find a batch's
        # rows (a superseded file's, a gate's new ones) at a fraction of a B-tree's upkeep
        # and build time. It replaces the B-tree earlier warehouses have.
        sql.SQL("drop index if exists {}").format(sql.Identifier(RAW_SCHEMA, f"{table.name}_batch_idx")),
        sql.SQL("create index if not exists {} on {} using brin (_batch_id)").format(
            sql.Identifier(f"{table.name}_batch_brin"), name
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
        for schema in (RAW_SCHEMA, ROWS_UNDER_VALIDATION_SCHEMA):
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        for schema in FORMER_SCHEMAS:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        for table in load_contract().values():
            for statement in _raw_table_ddl(table):
                conn.execute(statement)


def ready_warehouse(settings: Settings) -> str:
    """The URL of a running, bootstrapped warehouse, with its BI role."""
    url = warehouse_url(settings)
    bootstrap(url)
    ensure_bi_role(url, settings)
    return url


# -- the BI role: reads `marts` and nothing else --------------------------------------------


def bi_role_name() -> str:
    return os.environ.get("KAM_BI_ROLE", "kam_bi")


def bi_password(settings: Settings) -> str:
    """KAM_BI_PASSWORD, else one generated once and kept under KAM_HOME (mode 0600)."""
    if os.environ.get("KAM_BI_PASSWORD"):
        return os.environ["KAM_BI_PASSWORD"]
    path = settings.warehouse_dir / "bi_role.json"
    if path.exists():
        return json.loads(path.read_text())["password"]
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    path.write_text(json.dumps({"password": password}))
    path.chmod(0o600)
    return password


def bi_url(url: str, settings: Settings) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(bi_role_name(), safe='')}:{quote(bi_password(settings), safe='')}@{parts.hostname}"
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=netloc))


def ensure_bi_role(url: str, settings: Settings) -> None:
    """Create (or re-key) the BI role: it may connect and read the published marts; it
    owns nothing, creates nothing and has no grant on raw, audit, staging or snapshots."""
    role = sql.Identifier(bi_role_name())
    with connect(url) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext('kam.bi_role'))")
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (bi_role_name(),)).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(
            sql.SQL(verb + " role {} login nocreatedb nocreaterole noinherit password {}").format(
                role, sql.Literal(bi_password(settings))
            )
        )
        database = conn.execute("select current_database()").fetchone()[0]
        conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(database), role))
        conn.execute(sql.SQL("revoke create on schema public from {}").format(role))
        if _schema_exists(conn, PUBLISHED_SCHEMA):
            _grant_read(conn, PUBLISHED_SCHEMA)


def _grant_read(conn: psycopg.Connection, schema: str) -> None:
    role = sql.Identifier(bi_role_name())
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), role))
    conn.execute(
        sql.SQL("grant select on all tables in schema {} to {}").format(sql.Identifier(schema), role)
    )


PUBLISHED_SCHEMA = "marts"
PREVIOUS_SCHEMA = "marts_previous"


def _schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone() is not None


def history_tables(conn: psycopg.Connection) -> list[str]:
    """The history tables: one set of rows per as-of date and dbt run."""
    return [
        table
        for (table,) in conn.execute(
            "select table_name from information_schema.columns where table_schema = %s"
            " and column_name in ('as_of_date', 'dbt_invocation_id') group by table_name having count(*) = 2"
            " order by table_name",
            (HISTORY_SCHEMA,),
        )
    ]


def current_as_of(conn: psycopg.Connection):
    """The as-of date of the marts BI reads now: the latest publication that moved them and
    was not withdrawn (a backfill publishes history only)."""
    return conn.execute(
        "select max(as_of_date) from audit.publications where is_current_marts and withdrawn_at is null"
    ).fetchone()[0]


def published_days(conn: psycopg.Connection) -> list:
    """Every as-of date with a publication in force, oldest first."""
    return [
        day
        for (day,) in conn.execute(
            "select distinct as_of_date from audit.publications where withdrawn_at is null order by 1"
        )
    ]


def withdraw(url: str, as_of_date, withdrawn_by: str, reason: str) -> dict:
    """Withdraw every publication of a day: recorded in audit.publications (who, when, why),
    its rows removed from the history tables. When that day was the current marts, the marts
    are dropped: the caller republishes the latest day left (or none is published)."""
    with connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext('kam.publish'))")
        try:
            with conn.transaction():
                current = current_as_of(conn)
                withdrawn = conn.execute(
                    "update audit.publications set withdrawn_at = now(), withdrawn_by = %s, withdrawal_reason = %s"
                    " where as_of_date = %s and withdrawn_at is null returning publication_id",
                    (withdrawn_by, reason, as_of_date),
                ).fetchall()
                for table in history_tables(conn):
                    conn.execute(
                        sql.SQL("delete from {} where as_of_date = %s").format(
                            sql.Identifier(HISTORY_SCHEMA, table)
                        ),
                        (as_of_date,),
                    )
                was_current = bool(withdrawn) and current == as_of_date
                if was_current:
                    for schema in (PUBLISHED_SCHEMA, PREVIOUS_SCHEMA):
                        conn.execute(
                            sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema))
                        )
                days = published_days(conn)
            return {
                "withdrawn": [p for (p,) in withdrawn],
                "was_current": was_current,
                "latest_left": days[-1] if days else None,
            }
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('kam.publish'))")


def _prune_unpublished_history(conn: psycopg.Connection, as_of_date, dbt_invocation_id: str | None) -> None:
    """History tables keep one set of rows per as-of date: the published run's."""
    for table in history_tables(conn):
        conn.execute(
            sql.SQL("delete from {} where as_of_date = %s and dbt_invocation_id is distinct from %s").format(
                sql.Identifier(HISTORY_SCHEMA, table)
            ),
            (as_of_date, dbt_invocation_id),
        )


def publish(
    url: str, build_schema: str, as_of_date, run_id: str, dbt_invocation_id: str | None = None
) -> int:
    """Swap the build schema in as `marts` in one transaction (write-audit-publish).

    Readers see the old marts or the new ones, never an empty or mixed schema: queries
    already running finish on the old tables (now in marts_previous), new ones resolve
    `marts` to the new tables after commit. The previous marts stay as marts_previous
    until the next publish, so the swap never waits for long-running readers to finish.
    A backfill (an as-of date older than the current marts) publishes only its history."""
    with connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext('kam.publish'))")
        try:
            if not _schema_exists(conn, build_schema):
                raise RuntimeError(
                    f"nothing to publish: schema {build_schema} does not exist (did dbt build run?)"
                )
            current = current_as_of(conn)
            # with no current marts (all withdrawn), the latest day is current again
            is_backfill = current is not None and as_of_date < current
            if not is_backfill:
                conn.execute(
                    sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(PREVIOUS_SCHEMA))
                )
            with conn.transaction():
                if is_backfill:
                    # an older day: its history becomes visible; the current marts stay as they are
                    conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(build_schema)))
                else:
                    if conn.execute(
                        "select 1 from pg_roles where rolname = %s", (bi_role_name(),)
                    ).fetchone():
                        _grant_read(conn, build_schema)  # grants travel with the schema when it is renamed
                    if _schema_exists(conn, PUBLISHED_SCHEMA):
                        conn.execute(
                            sql.SQL("alter schema {} rename to {}").format(
                                sql.Identifier(PUBLISHED_SCHEMA), sql.Identifier(PREVIOUS_SCHEMA)
                            )
                        )
                    conn.execute(
                        sql.SQL("alter schema {} rename to {}").format(
                            sql.Identifier(build_schema), sql.Identifier(PUBLISHED_SCHEMA)
                        )
                    )
                _prune_unpublished_history(conn, as_of_date, dbt_invocation_id)
                publication_id = conn.execute(
                    "insert into audit.publications (as_of_date, run_id, dbt_invocation_id, is_current_marts) "
                    "values (%s, %s, %s, %s) returning publication_id",
                    (as_of_date, run_id, dbt_invocation_id, not is_backfill),
                ).fetchone()[0]
            return publication_id
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('kam.publish'))")
