"""Write-audit-publish: the build schema swapped in as `marts`, the history of each
published day, and the withdrawal of a day published by mistake."""

from __future__ import annotations

import psycopg
from psycopg import sql

from kam.constants import HISTORY_SCHEMA, PREVIOUS_SCHEMA, PUBLISH_LOCK, PUBLISHED_SCHEMA
from kam.warehouse.connect import connect
from kam.warehouse.roles import bi_role_name, grant_read, schema_exists

PUBLISH_LOCK_WAIT = "30s"


def _lock_holders(conn: psycopg.Connection) -> str:
    holders = conn.execute(
        "select string_agg(format('pid %s (%s, %s, %s)', pid, usename, application_name, state), ', ')"
        " from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        " and state in ('idle in transaction', 'active') and backend_type = 'client backend'"
    ).fetchone()[0]
    return f"sessions that may hold it: {holders or 'none left'}"


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
        conn.execute("select pg_advisory_lock(hashtext(%s))", (PUBLISH_LOCK,))
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
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (PUBLISH_LOCK,))


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
    A backfill (an as-of date older than the current marts) publishes only its history.

    It never waits unboundedly on a reader: each lock it needs is waited for PUBLISH_LOCK_WAIT
    at most (the BI role's idle-in-transaction timeout ends a forgotten session well before
    that adds up), then it fails with who holds it, to be retried."""
    with connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext(%s))", (PUBLISH_LOCK,))
        conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(PUBLISH_LOCK_WAIT)))
        try:
            if not schema_exists(conn, build_schema):
                raise RuntimeError(
                    f"nothing to publish: schema {build_schema} does not exist (did dbt build run?)"
                )
            current = current_as_of(conn)
            # with no current marts (all withdrawn), the latest day is current again
            is_backfill = current is not None and as_of_date < current
            if not is_backfill:
                try:
                    conn.execute(
                        sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(PREVIOUS_SCHEMA))
                    )
                except psycopg.errors.LockNotAvailable as exc:
                    raise RuntimeError(
                        f"publish waited {PUBLISH_LOCK_WAIT} for readers of {PREVIOUS_SCHEMA} to let go: "
                        + _lock_holders(conn)
                        + "; retry (a BI session idle in a transaction ends by itself)"
                    ) from exc
            with conn.transaction():
                if is_backfill:
                    # an older day: its history becomes visible; the current marts stay as they are
                    conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(build_schema)))
                else:
                    if conn.execute(
                        "select 1 from pg_roles where rolname = %s", (bi_role_name(),)
                    ).fetchone():
                        grant_read(conn, build_schema)  # grants travel with the schema when it is renamed
                    if schema_exists(conn, PUBLISHED_SCHEMA):
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
                    if (
                        schema_exists(conn, PREVIOUS_SCHEMA)
                        and conn.execute(
                            "select 1 from pg_roles where rolname = %s", (bi_role_name(),)
                        ).fetchone()
                    ):
                        # queries already running finish on it; BI cannot start new ones there
                        conn.execute(
                            sql.SQL("revoke usage on schema {} from {}").format(
                                sql.Identifier(PREVIOUS_SCHEMA), sql.Identifier(bi_role_name())
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
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (PUBLISH_LOCK,))
