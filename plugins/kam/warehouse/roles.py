"""The BI role: it reads the published marts and nothing else."""

from __future__ import annotations

import json
import os
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from kam.constants import BI_ROLE_LOCK, PUBLISHED_SCHEMA
from kam.settings import Settings
from kam.warehouse.connect import connect


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
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (BI_ROLE_LOCK,))
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (bi_role_name(),)).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(
            sql.SQL(verb + " role {} login nocreatedb nocreaterole noinherit password {}").format(
                role, sql.Literal(bi_password(settings))
            )
        )
        # A reader cannot hold the marts (and a publish) for ever, nor take every connection.
        limits = settings.bi_limits
        conn.execute(
            sql.SQL("alter role {} connection limit {}").format(role, sql.Literal(limits.connection_limit))
        )
        for parameter, value in (
            ("statement_timeout", limits.statement_timeout),
            ("idle_in_transaction_session_timeout", limits.idle_in_transaction_timeout),
        ):
            conn.execute(
                sql.SQL("alter role {} set {} = {}").format(
                    role, sql.Identifier(parameter), sql.Literal(value)
                )
            )
        database = sql.Identifier(conn.execute("select current_database()").fetchone()[0])
        conn.execute(sql.SQL("grant connect on database {} to {}").format(database, role))
        conn.execute(sql.SQL("revoke create on schema public from {}").format(role))
        # temporary tables and the `public` schema are PUBLIC's by default: kept for the project
        # role only, where it owns the database (elsewhere its administrator decides)
        owns = conn.execute(
            "select datdba = (select oid from pg_roles where rolname = current_user) from pg_database"
            " where datname = current_database()"
        ).fetchone()[0]
        if owns:
            conn.execute(sql.SQL("revoke temporary on database {} from public").format(database))
            conn.execute(sql.SQL("grant temporary on database {} to current_user").format(database))
            # nothing of the project lives in `public`; PUBLIC's usage would let BI list it
            conn.execute("revoke all on schema public from public")
        keep_out_of_other_databases(conn)
        if schema_exists(conn, PUBLISHED_SCHEMA):
            grant_read(conn, PUBLISHED_SCHEMA)


def keep_out_of_other_databases(conn: psycopg.Connection) -> None:
    """CONNECT on a database is PUBLIC's by default and cannot be denied to one role: on
    every other database this role may administer, PUBLIC's CONNECT is replaced by a grant
    to each role that could connect before, except the BI role (nobody else loses access).
    Databases it cannot administer are their administrator's (README, Connecting a BI tool)."""
    role = bi_role_name()
    databases = conn.execute(
        "select datname from pg_database where datallowconn and datname <> current_database()"
        " and (pg_has_role(current_user, datdba, 'member')"
        "      or (select rolsuper from pg_roles where rolname = current_user))"
        " and has_database_privilege(%s, datname, 'connect')",
        (role,),
    ).fetchall()
    for (database,) in databases:
        others = conn.execute(
            "select rolname from pg_roles where rolcanlogin and rolname <> %s and not rolsuper"
            " and has_database_privilege(rolname, %s, 'connect')",
            (role, database),
        ).fetchall()
        name = sql.Identifier(database)
        for (other,) in others:
            conn.execute(sql.SQL("grant connect on database {} to {}").format(name, sql.Identifier(other)))
        conn.execute(sql.SQL("revoke connect on database {} from public").format(name))
        conn.execute(sql.SQL("revoke connect on database {} from {}").format(name, sql.Identifier(role)))


def grant_read(conn: psycopg.Connection, schema: str) -> None:
    role = sql.Identifier(bi_role_name())
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), role))
    conn.execute(
        sql.SQL("grant select on all tables in schema {} to {}").format(sql.Identifier(schema), role)
    )


def schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone() is not None
