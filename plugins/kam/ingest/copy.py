"""COPY: a file's bytes streamed into a temporary landing table (memory does not grow with
the file), or, for a clean contract-layout file, straight into its raw table."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from kam.contract import Table
from kam.ingest.contract_sql import ColumnSql, column_checks, landing_column
from kam.ingest.mappings import Mapping
from kam.ingest.readers import FileRefused, TabularStream
from kam.warehouse.bootstrap import BATCH_ID_DEFAULT, BATCH_SETTING

PROGRESS_EVERY_BYTES = 64 << 20


def _copy(
    conn: psycopg.Connection,
    into: sql.Composable,
    columns: list[sql.Identifier],
    stream: TabularStream,
    progress: Callable[[str], None],
    freeze: bool = False,
) -> int:
    """COPY the stream's CSV bytes into `into`; returns the rows copied."""
    copy_sql = sql.SQL("copy {} ({}) from stdin (format csv, delimiter {}, encoding {}, freeze {})").format(
        into,
        sql.SQL(", ").join(columns),
        sql.Literal(stream.delimiter),
        sql.Literal(stream.pg_encoding),
        sql.Literal(freeze),
    )
    sent = next_report = 0
    with conn.cursor() as cursor:
        with cursor.copy(copy_sql) as copy:
            for chunk in stream.chunks:
                copy.write(chunk)
                sent += len(chunk)
                if sent >= next_report + PROGRESS_EVERY_BYTES:
                    next_report = sent
                    progress(f"  {stream.path.name}: {sent >> 20} MiB sent to COPY")
        return cursor.rowcount


def copy_into_landing(
    conn: psycopg.Connection, stream: TabularStream, progress: Callable[[str], None]
) -> int:
    """Stream the rows into the transaction's temporary landing table; returns how many landed."""
    columns = [landing_column(i + 1) for i in range(len(stream.header))]
    conn.execute(
        sql.SQL(
            "create temp table landing (_record bigint generated always as identity, {}) on commit drop"
        ).format(sql.SQL(", ").join(sql.SQL("{} text").format(c) for c in columns))
    )
    return _copy(conn, sql.SQL("pg_temp.landing"), columns, stream, progress)


class _NotClean(Exception):
    """The fast path found a row the contract refuses; the landing path takes over."""


@contextlib.contextmanager
def _first_load(conn: psycopg.Connection, table: sql.Identifier, batch_id: int) -> Iterator[None]:
    """For a bulk load into an empty table, which the load's transaction holds alone.
    - It is truncated first, so COPY FREEZE writes its rows final (no later pass sets their
      hint bits) and, on a server with wal_level minimal, skips the WAL.
    - Its keys and indexes are dropped before and built after: one sort or scan each
      instead of an index insert per row (about 40 % of a first load; even the BRIN on
      `_batch_id` costs COPY a quarter more than building it after).
    - `_batch_id` defaults to the batch itself rather than the per-row setting lookup (15 %
      of COPY); the lookup is back before anyone else sees the table.
    - It is analyzed for the build that reads it next.
    A repeated key fails the rebuild; the caller's transaction then puts everything back."""
    name = table.as_string(conn)
    constraints = conn.execute(
        "select conname, pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = %s::regclass and contype in ('p', 'u')",
        (name,),
    ).fetchall()
    indexes = conn.execute(
        "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index"
        " where indrelid = %s::regclass and indexrelid not in (select conindid from pg_constraint)",
        (name,),
    ).fetchall()
    for constraint, _ in constraints:
        conn.execute(sql.SQL("alter table {} drop constraint {}").format(table, sql.Identifier(constraint)))
    for index, _ in indexes:
        conn.execute(sql.SQL("drop index {}").format(sql.SQL(index)))
    conn.execute(sql.SQL("truncate {}").format(table))
    conn.execute(
        sql.SQL("alter table {} alter column _batch_id set default {}").format(table, sql.Literal(batch_id))
    )
    yield
    conn.execute(
        sql.SQL("alter table {} alter column _batch_id set default {}").format(table, BATCH_ID_DEFAULT)
    )
    for constraint, definition in constraints:
        conn.execute(
            sql.SQL("alter table {} add constraint {} {}").format(
                table, sql.Identifier(constraint), sql.SQL(definition)
            )
        )
    for _, definition in indexes:
        conn.execute(sql.SQL(definition))
    conn.execute(sql.SQL("analyze {}").format(table))


def copy_straight_into_raw(
    conn: psycopg.Connection,
    stream: TabularStream,
    table: Table,
    batch_id: int,
    progress: Callable[[str], None],
) -> int | None:
    """Most files are clean. A contract-layout file is COPied straight into its raw table
    (one pass, as fast as COPY gets), then the contract's rules are checked on the typed rows
    of this batch. Anything off (a value that does not parse, a key already loaded or
    repeated, an untrimmed or empty text, a rule broken) undoes it and returns None: the
    landing path then loads the file with quarantine. Returns the rows loaded."""
    header = stream.header
    required = {c.name for c in table.columns if c.not_null} | set(table.primary_key)
    if len(set(header)) != len(header) or set(header) - set(table.column_names) or required - set(header):
        return None
    problems = []
    for column in table.columns:
        name = sql.Identifier(column.name)
        typed = ColumnSql(column, name, name, None)
        problems += [
            p.condition for p in column_checks(typed, name, name, name, table, column.name in required)
        ]
        if column.data_type == "text":
            # btrim's spaces, without building a trimmed copy of every value
            problems.append(sql.SQL("{c} = '' or {c} like ' %' or {c} like '% '").format(c=name))
    raw = sql.Identifier("raw", table.name)
    try:
        with conn.transaction():
            conn.execute("select set_config(%s, %s, true)", (BATCH_SETTING, str(batch_id)))
            conn.execute("set local datestyle = 'ISO, YMD'")
            # Other writers of this table wait (readers do not), so it cannot fill between
            # this emptiness check and a first load's truncate.
            conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(raw))
            empty = conn.execute(sql.SQL("select not exists (select from {})").format(raw)).fetchone()[0]
            with _first_load(conn, raw, batch_id) if empty else contextlib.nullcontext():
                copied = _copy(conn, raw, [sql.Identifier(c) for c in header], stream, progress, freeze=empty)
                broken = conn.execute(
                    sql.SQL("select count(*) from {} where _batch_id = {} and ({})").format(
                        raw,
                        sql.Literal(batch_id),
                        sql.SQL(" or ").join(sql.SQL("coalesce({}, false)").format(p) for p in problems),
                    )
                ).fetchone()[0]
                if broken:
                    raise _NotClean
    except (_NotClean, psycopg.errors.DataError, psycopg.errors.IntegrityError):
        return None
    return copied


def check_header(stream, mapping: Mapping) -> str:
    missing = sorted(mapping.file_columns() - set(stream.header))
    if missing:
        hint = " (is the delimiter right?)" if len(stream.header) == 1 else ""
        raise FileRefused(
            stream.path,
            f"the header lacks column(s) {', '.join(missing)}{hint}; it has: {', '.join(stream.header)}",
            stream.header_line,
        )
    extra = sorted(set(stream.header) - mapping.file_columns())
    return (
        f"ignored columns not in the {'contract' if mapping.is_contract_layout else 'mapping'}: "
        f"{', '.join(extra)}"
        if extra
        else ""
    )


def copy_error(path: Path, exc: psycopg.Error, header_line: int) -> FileRefused:
    context = (exc.diag.context or "") if exc.diag else ""
    line = None
    marker = "line "
    if marker in context:
        digits = context.split(marker, 1)[1].split(",", 1)[0].split(":", 1)[0].strip()
        line = int(digits) + header_line if digits.isdigit() else None
    detail = (exc.diag.message_primary if exc.diag else None) or str(exc).splitlines()[0]
    return FileRefused(path, f"{detail}; nothing from this file was loaded; fix or re-export it", line)
