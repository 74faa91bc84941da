"""COPY: a file's bytes streamed into a temporary landing table (memory does not grow with
the file); a clean contract-layout file then goes into its raw table in one insert."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from kam.ingest.contract_sql import clean_insert_statement, landing_column
from kam.ingest.mappings import Mapping, Target
from kam.ingest.readers import FileRefused, TabularStream

PROGRESS_EVERY_BYTES = 64 << 20


def _copy(
    conn: psycopg.Connection,
    into: sql.Composable,
    columns: list[sql.Identifier],
    stream: TabularStream,
    progress: Callable[[str], None],
) -> int:
    """COPY the stream's CSV bytes into `into`; returns the rows copied."""
    copy_sql = sql.SQL("copy {} ({}) from stdin (format csv, delimiter {}, encoding {})").format(
        into,
        sql.SQL(", ").join(columns),
        sql.Literal(stream.delimiter),
        sql.Literal(stream.pg_encoding),
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
    """The fast way in found a row the contract refuses: the full statement takes over."""


@contextlib.contextmanager
def _first_load(conn: psycopg.Connection, table: sql.Identifier) -> Iterator[None]:
    """For a bulk load into an empty table, which the load's transaction holds alone: its
    keys and indexes are dropped before and built after (one sort or scan each instead of an
    index insert per row), and it is analyzed for the build that reads it next. A repeated
    key fails the rebuild; the caller's savepoint then puts everything back."""
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
    yield
    for constraint, definition in constraints:
        conn.execute(
            sql.SQL("alter table {} add constraint {} {}").format(
                table, sql.Identifier(constraint), sql.SQL(definition)
            )
        )
    for _, definition in indexes:
        conn.execute(sql.SQL(definition))
    conn.execute(sql.SQL("analyze {}").format(table))


def insert_clean(conn: psycopg.Connection, target: Target, header: list[str], batch_id: int) -> int | None:
    """Most files are clean. The landed rows of a contract-layout file go into their raw
    table in one insert when every row passes every rule of the contract (the same checks as
    the full statement, on the text as it came), and no key repeats or is already loaded;
    else nothing of it stays and None says the full statement must load it with quarantine.
    Returns the rows loaded."""
    raw = sql.Identifier("raw", target.table.name)
    try:
        with conn.transaction():
            # Other writers of this table wait (readers do not), so it cannot fill between
            # this emptiness check and a first load's index rebuild.
            conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(raw))
            empty = conn.execute(sql.SQL("select not exists (select from {})").format(raw)).fetchone()[0]
            with _first_load(conn, raw) if empty else contextlib.nullcontext():
                inserted, landed = conn.execute(clean_insert_statement(target, header, batch_id)).fetchone()
                if inserted != landed:
                    raise _NotClean
    except (_NotClean, psycopg.errors.IntegrityError):
        return None
    return inserted


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
