"""The schemas and tables the contract asks for, created idempotently on every start."""

from __future__ import annotations

from importlib import resources

from psycopg import sql

from kam.constants import BOOTSTRAP_LOCK, FORMER_SCHEMAS, RAW_SCHEMA, ROWS_UNDER_VALIDATION_SCHEMA
from kam.contract import Table, load_contract
from kam.warehouse.connect import connect

BATCH_SETTING = "kam.batch_id"
# The loader's fast path COPYs straight into a raw table; each row's batch comes from the transaction.
BATCH_ID_DEFAULT = sql.SQL(
    f"nullif(current_setting({sql.Literal(BATCH_SETTING).as_string()}, true), '')::bigint"
)


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
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (BOOTSTRAP_LOCK,))
        conn.execute(resources.files("kam.warehouse").joinpath("sql/audit.sql").read_text())
        for schema in (RAW_SCHEMA, ROWS_UNDER_VALIDATION_SCHEMA):
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        for schema in FORMER_SCHEMAS:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        for table in load_contract().values():
            for statement in _raw_table_ddl(table):
                conn.execute(statement)
