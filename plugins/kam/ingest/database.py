"""Database sources: pull raw tables straight from the ERP's database, only what changed.

A database mapping (mappings/<name>.yml with `kind: database`) gives, per raw table, a SELECT
in the ERP's own SQL whose output columns are contract column names, plus control columns
(names starting with `_`): the watermark, a modification timestamp, and for documents that
are cancelled rather than deleted, a soft-delete flag.

Each run extracts the rows whose watermark is past the one kept in audit.source_watermarks,
less a look-back (`lookback_minutes`): ERPs stamp a document when its transaction starts, so
one committed after an extract that already saw a later stamp is still taken next time (the
overlap is upserted, so it changes nothing). Every `full_extract_every_days` a table is
extracted whole, which also catches rows changed without touching their stamp. Rows are
streamed through the loader: one batch per table, the same validation, quarantine and audit
as a file, upserted by key. Soft-deleted rows are removed from raw. Every
`reconcile_every_days` (and on a full refresh) the source's whole key set is compared with
the rows this mapping loaded, and rows the source no longer has are removed too. Every
removal is kept, with the row, in audit.source_deletions. A table's batch, its deletions and
its new watermark commit together, so a failed extract leaves raw and the watermark as they
were and the next run takes the same rows again.

The source is only read, in one REPEATABLE READ, READ ONLY transaction per run: the tables
of one extract are one consistent snapshot (an invoice and its lines agree).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from kam.constants import SQLALCHEMY_DRIVERS
from kam.contract import Table, get_table
from kam.ingest.batches import (
    BatchResult,
    begin_batch,
    load_in_batch,
    load_landing,
    lock_batch_key,
    unlock_batch_key,
)
from kam.ingest.contract_sql import row_key
from kam.ingest.copy import copy_into_landing
from kam.ingest.mappings import ColumnSource, Mapping, MappingError, Target, read_yaml
from kam.ingest.readers import TabularStream, cell_text, rows_as_csv
from kam.warehouse.connect import connect, mask_url

log = logging.getLogger(__name__)
DATABASE_KIND = "database"
CONTROL_PREFIX = "_"
ROWS_PER_FETCH = 10_000
PROGRESS_EVERY_ROWS = 100_000
# Below this many rows a reconciliation may remove any share of a table; above it, more
# than max_deleted_share looks like a wrong connection or query rather than real deletions.
GUARDED_DELETIONS = 10
TRUE_TEXTS = ("1", "t", "true", "y", "yes")


class SourceUnreachable(RuntimeError):
    """The source database cannot be reached: worth a retry, unlike a mapping error."""


@dataclass(frozen=True)
class SourceTable:
    """One raw table fed by one query."""

    table: Table
    query: str
    watermark: str
    deleted: str | None = None
    reconcile_every_days: int = 1


@dataclass(frozen=True)
class DatabaseMapping:
    name: str
    path: Path
    tables: tuple[SourceTable, ...]
    description: str = ""
    max_deleted_share: float = 0.5
    lookback_minutes: int = 15
    full_extract_every_days: int = 7


def is_database_mapping(path: Path) -> bool:
    try:
        document = read_yaml(path)
    except MappingError:
        return False
    return isinstance(document, dict) and document.get("kind") == DATABASE_KIND


def _control_column(spec: dict, key: str, where: str, required: bool) -> str | None:
    name = spec.get(key)
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.startswith(CONTROL_PREFIX):
        raise MappingError(f"{where}: `{key}` must name an output column starting with {CONTROL_PREFIX!r}")
    return name


def load_database_mapping(path: Path) -> DatabaseMapping:
    document = read_yaml(path)
    if not isinstance(document, dict) or document.get("kind") != DATABASE_KIND:
        raise MappingError(f"mapping {path}: not a database mapping (it needs `kind: {DATABASE_KIND}`)")
    if not isinstance(document.get("tables"), dict) or not document["tables"]:
        raise MappingError(f"mapping {path}: needs a `tables:` section (raw table -> query)")
    tables = []
    for table_name, spec in document["tables"].items():
        where = f"mapping {path}, table {table_name}"
        try:
            table = get_table(str(table_name))
        except KeyError as exc:
            raise MappingError(f"mapping {path}: {exc.args[0]}") from exc
        if not isinstance(spec, dict) or not str(spec.get("query") or "").strip():
            raise MappingError(f"{where}: needs a `query`")
        unknown = set(spec) - {"query", "watermark", "deleted", "reconcile_every_days"}
        if unknown:
            raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
        tables.append(
            SourceTable(
                table=table,
                query=str(spec["query"]).strip().rstrip(";"),
                watermark=_control_column(spec, "watermark", where, required=True),
                deleted=_control_column(spec, "deleted", where, required=False),
                reconcile_every_days=int(spec.get("reconcile_every_days", 1)),
            )
        )
    return DatabaseMapping(
        name=str(document.get("name") or Path(path).stem),
        path=Path(path),
        tables=tuple(tables),
        description=str(document.get("description", "")),
        max_deleted_share=float(document.get("max_deleted_share", DatabaseMapping.max_deleted_share)),
        lookback_minutes=int(document.get("lookback_minutes", DatabaseMapping.lookback_minutes)),
        full_extract_every_days=int(
            document.get("full_extract_every_days", DatabaseMapping.full_extract_every_days)
        ),
    )


def sqlalchemy_url(url: str) -> str:
    """A SQLAlchemy URL with this project's drivers (PyMySQL, psycopg 3) for a plain
    mysql://, mariadb:// or postgresql:// URL."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"not a database URL: {mask_url(url)}")
    return f"{SQLALCHEMY_DRIVERS.get(scheme, scheme)}://{rest}"


@contextmanager
def read_only_snapshot(source_url: str):
    """One REPEATABLE READ, READ ONLY transaction on the source (MySQL, MariaDB or PostgreSQL)."""
    from sqlalchemy import create_engine, exc
    from sqlalchemy.pool import NullPool

    engine = create_engine(sqlalchemy_url(source_url), poolclass=NullPool)
    try:
        try:
            conn = engine.connect()
            conn.exec_driver_sql("set transaction isolation level repeatable read, read only")
        except exc.OperationalError as error:
            raise SourceUnreachable(
                f"cannot reach the source database {mask_url(source_url)}: {error.orig}; check that it is up "
                "and that the connection's host, port, database and credentials are right"
            ) from error
        with conn:
            yield conn
            conn.rollback()
    finally:
        engine.dispose()


def _over_query(source, spec: SourceTable, columns: list[str] | None = None, newer_than: bool = False) -> str:
    """SELECT from the mapping's query as a subquery: some columns, optionally only rows
    whose watermark is past :since. The query is reviewed configuration (like a dbt
    model); the names added here are quoted by the source's dialect."""
    quote = source.dialect.identifier_preparer.quote
    selected = ", ".join(f"src.{quote(c)}" for c in columns) if columns else "*"
    # the line break ends a `--` comment on the query's last line
    statement = f"select {selected} from ({spec.query}\n) as src"  # noqa: S608 - see the docstring
    if newer_than:
        statement += f" where src.{quote(spec.watermark)} > :since"
    return statement


@contextmanager
def _streamed(source, statement: str, params: dict):
    """The query's column names and its rows as text, fetched ROWS_PER_FETCH at a time
    (a server-side cursor: the table never sits in memory)."""
    from sqlalchemy import text

    result = source.execute(
        text(statement), params, execution_options={"stream_results": True, "yield_per": ROWS_PER_FETCH}
    )
    try:
        yield list(result.keys()), ([cell_text(v) for v in row] for row in result)
    finally:
        result.close()


def _check_columns(header: list[str], spec: SourceTable, where: str) -> None:
    table = spec.table
    unknown = [c for c in header if not c.startswith(CONTROL_PREFIX) and c not in table.column_index]
    if unknown:
        raise MappingError(
            f"{where}: the query returns {unknown}, which are not columns of raw.{table.name}; name each "
            f"output column after the contract ({', '.join(table.column_names)}) or start it with "
            f"{CONTROL_PREFIX!r}"
        )
    required = [c.name for c in table.columns if c.not_null or c.name in table.primary_key]
    control = [c for c in (spec.watermark, spec.deleted) if c]
    if missing := [c for c in required + control if c not in header]:
        raise MappingError(f"{where}: the query must return {missing}")


def _hashed(chunks: Iterator[bytes], digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _counted(rows: Iterator[list], label: str, progress: Callable[[str], None]) -> Iterator[list]:
    count = 0
    for count, row in enumerate(rows, start=1):  # noqa: B007 - the count is reported
        if count % PROGRESS_EVERY_ROWS == 0:
            progress(f"  {label}: {count:,} rows extracted")
        yield row


def _landing(position: int) -> sql.Identifier:
    return sql.Identifier(f"c{position}")


def _key_table(conn: psycopg.Connection, table: Table, name: str) -> sql.Identifier:
    identifier = sql.Identifier(name)
    conn.execute(
        sql.SQL("create temp table {} ({}) on commit drop").format(
            identifier,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(k), sql.SQL(table.column(k).data_type))
                for k in table.primary_key
            ),
        )
    )
    return identifier


def _in_keys(table: Table, keys: sql.Identifier) -> sql.Composed:
    """raw row r's key is in the temporary key table (NULL-safe, unlike NOT IN)."""
    return sql.SQL("exists (select from pg_temp.{} k where {})").format(
        keys,
        sql.SQL(" and ").join(
            sql.SQL("k.{key} = r.{key}").format(key=sql.Identifier(k)) for k in table.primary_key
        ),
    )


def _typed_keys(table: Table, header: list[str]) -> list[sql.Composed]:
    """The landing row's key columns, cast to their raw types."""
    return [
        sql.SQL("nullif(btrim({}), '')::{}").format(
            _landing(header.index(k) + 1), sql.SQL(table.column(k).data_type)
        )
        for k in table.primary_key
    ]


def _row_hash(header: list[str]) -> sql.Composed:
    """What the source returned for the row, control columns (the watermark) left out: a
    save that changed nothing but the stamp is no change."""
    content = [_landing(i + 1) for i, name in enumerate(header) if not name.startswith(CONTROL_PREFIX)]
    return sql.SQL("md5(row({})::text)").format(sql.SQL(", ").join(content))


def _skip_unchanged(conn: psycopg.Connection, spec: SourceTable, header: list[str], mapping_name: str) -> int:
    """Take out of the landing table the rows identical to what was loaded for their key and is
    still in raw. Returns how many."""
    table = spec.table
    typed = _typed_keys(table, header)
    return conn.execute(
        sql.SQL("""
delete from pg_temp.landing l
using audit.source_rows s
where s.source_name = %(mapping)s and s.table_name = %(table)s
    and s.row_key = {row_key} and s.row_hash = {row_hash}
    and exists (select from {raw} r where {same_key})""").format(
            row_key=row_key(typed),
            row_hash=_row_hash(header),
            raw=sql.Identifier("raw", table.name),
            same_key=sql.SQL(" and ").join(
                sql.SQL("r.{} = {}").format(sql.Identifier(k), value)
                for k, value in zip(table.primary_key, typed, strict=True)
            ),
        ),
        {"mapping": mapping_name, "table": table.name},
    ).rowcount


def _remember_loaded(
    conn: psycopg.Connection, spec: SourceTable, header: list[str], mapping_name: str, batch_id: int
) -> None:
    """Keep the hash of every landing row that was loaded (not quarantined)."""
    conn.execute(
        sql.SQL("""
insert into audit.source_rows (source_name, table_name, row_key, row_hash)
select distinct on (1, 2, 3) %(mapping)s, %(table)s, {row_key}, {row_hash}
from pg_temp.landing l
where not exists (select from audit.quarantine q where q.batch_id = %(batch)s and q.line_no = l._record)
order by 1, 2, 3, l._record desc
on conflict (source_name, table_name, row_key) do update set row_hash = excluded.row_hash""").format(
            row_key=row_key(_typed_keys(spec.table, header)), row_hash=_row_hash(header)
        ),
        {"mapping": mapping_name, "table": spec.table.name, "batch": batch_id},
    )


def _remove_rows(
    conn: psycopg.Connection,
    spec: SourceTable,
    mapping_name: str,
    batch_id: int,
    keys: sql.Identifier,
    reason: str,
) -> int:
    """Remove from raw the rows this mapping loaded whose key is in `keys` (soft-deleted) or
    is not (missing from the source), keeping each in audit.source_deletions."""
    table = spec.table
    in_keys = _in_keys(table, keys)
    condition = in_keys if reason == "soft_deleted" else sql.SQL("not {}").format(in_keys)
    return conn.execute(
        sql.SQL("""
with gone as (
    delete from {raw} r using audit.batches b
    where r._batch_id = b.batch_id and b.mapping = %(mapping)s and {condition}
    returning r.*
), kept as (
    insert into audit.source_deletions (batch_id, source_name, table_name, reason, record)
    select %(batch)s, %(mapping)s, %(table)s, %(reason)s, to_jsonb(gone) from gone
    returning 1
), forgotten as (
    delete from audit.source_rows s using gone
    where s.source_name = %(mapping)s and s.table_name = %(table)s and s.row_key = {gone_key}
)
select count(*) from kept""").format(
            raw=sql.Identifier("raw", table.name),
            condition=condition,
            gone_key=row_key([sql.SQL("gone.{}").format(sql.Identifier(k)) for k in table.primary_key]),
        ),
        {"mapping": mapping_name, "batch": batch_id, "table": table.name, "reason": reason},
    ).fetchone()[0]


def _remove_soft_deleted(
    conn: psycopg.Connection, spec: SourceTable, header: list[str], mapping_name: str, batch_id: int
) -> tuple[int, int]:
    """Take the soft-deleted rows out of the landing table and their keys out of raw.
    Returns (rows taken out of the landing, rows removed from raw)."""
    if not spec.deleted:
        return 0, 0
    table = spec.table
    keys = _key_table(conn, table, "soft_deleted_keys")
    flag = _landing(header.index(spec.deleted) + 1)
    typed_keys = sql.SQL(", ").join(_typed_keys(table, header))
    taken = conn.execute(
        sql.SQL("""
with taken as (
    delete from pg_temp.landing where lower(btrim({flag})) = any(%(true)s) returning *
), keys as (
    insert into pg_temp.{keys} select {typed_keys} from taken returning 1
)
select count(*) from keys""").format(flag=flag, keys=keys, typed_keys=typed_keys),
        {"true": list(TRUE_TEXTS)},
    ).fetchone()[0]
    removed = _remove_rows(conn, spec, mapping_name, batch_id, keys, "soft_deleted") if taken else 0
    return taken, removed


def _reconcile(
    conn: psycopg.Connection,
    source,
    spec: SourceTable,
    mapping: DatabaseMapping,
    batch_id: int,
    progress: Callable[[str], None],
) -> int:
    """Compare the source's key set with the rows this mapping loaded; remove the missing."""
    table = spec.table
    wanted = list(table.primary_key) + ([spec.deleted] if spec.deleted else [])
    statement = _over_query(source, spec, wanted)
    width = len(table.primary_key)
    keys = _key_table(conn, table, "source_keys")
    copy = sql.SQL("copy pg_temp.{} from stdin (format csv)").format(keys)
    with _streamed(source, statement, {}) as (_, rows), conn.cursor().copy(copy) as writer:
        present = (
            row[:width]
            for row in rows
            if not (spec.deleted and (row[width] or "").strip().lower() in TRUE_TEXTS)
        )
        for chunk in rows_as_csv(present):
            writer.write(chunk)
    conn.execute(sql.SQL("analyze pg_temp.{}").format(keys))
    in_source = conn.execute(sql.SQL("select count(*) from pg_temp.{}").format(keys)).fetchone()[0]
    loaded, missing = conn.execute(
        sql.SQL("""
select count(*), count(*) filter (where not {in_keys})
from {raw} r join audit.batches b on b.batch_id = r._batch_id and b.mapping = %s""").format(
            in_keys=_in_keys(table, keys), raw=sql.Identifier("raw", table.name)
        ),
        (mapping.name,),
    ).fetchone()
    if missing > GUARDED_DELETIONS and missing > mapping.max_deleted_share * loaded:
        raise MappingError(
            f"{mapping.name} {table.name}: the source no longer has {missing:,} of the {loaded:,} rows loaded from "
            f"it (it returned {in_source:,} keys). That looks like a wrong connection, database or query, so "
            f"nothing was removed. If the deletions are real, raise max_deleted_share in {mapping.path} for one run."
        )
    removed = _remove_rows(conn, spec, mapping.name, batch_id, keys, "missing_from_source") if missing else 0
    progress(f"  {mapping.name} {table.name}: reconciled {in_source:,} source keys; {removed:,} removed")
    return removed


@dataclass
class _Watermark:
    value: datetime | None
    reconciled_as_of: date | None
    full_extracted_as_of: date | None


def _watermark(conn: psycopg.Connection, mapping: DatabaseMapping, table: Table) -> _Watermark:
    row = conn.execute(
        "select watermark, reconciled_as_of, full_extracted_as_of from audit.source_watermarks "
        "where source_name = %s and table_name = %s",
        (mapping.name, table.name),
    ).fetchone()
    return _Watermark(*row) if row else _Watermark(None, None, None)


def _since(
    mapping: DatabaseMapping, state: _Watermark, as_of_date: date, full_refresh: bool
) -> datetime | None:
    """Where this extract starts: nowhere (everything) on a full refresh, on the first run and
    when a scheduled full extract is due; else the watermark less the look-back."""
    if full_refresh or state.value is None or state.full_extracted_as_of is None:
        return None
    if (as_of_date - state.full_extracted_as_of).days >= mapping.full_extract_every_days:
        return None
    return state.value - timedelta(minutes=mapping.lookback_minutes)


def _reconcile_due(spec: SourceTable, state: _Watermark, as_of_date: date, full_refresh: bool) -> bool:
    if full_refresh or state.reconciled_as_of is None:
        return True
    return (as_of_date - state.reconciled_as_of).days >= spec.reconcile_every_days


class DatabaseExtractor:
    """Extracts one database mapping from one source into one warehouse."""

    def __init__(
        self,
        mapping: DatabaseMapping,
        source_url: str,
        warehouse_url: str,
        progress: Callable[[str], None] = log.info,
    ):
        self.mapping = mapping
        self.source_url = source_url
        self.warehouse_url = warehouse_url
        self.progress = progress

    def extract(self, as_of_date: date, full_refresh: bool = False) -> list[BatchResult]:
        mode = "full refresh" if full_refresh else "changes since the last run"
        self.progress(
            f"extracting {self.mapping.name} from {mask_url(self.source_url)} ({mode}): "
            f"{len(self.mapping.tables)} table(s)"
        )
        results = []
        with read_only_snapshot(self.source_url) as source:
            for spec in self.mapping.tables:
                result = self._extract_table(source, spec, as_of_date, full_refresh)
                results.append(result)
                self.progress(f"  {describe_extract(result)}")
        return results

    def _extract_table(self, source, spec: SourceTable, as_of_date: date, full_refresh: bool) -> BatchResult:
        from sqlalchemy import exc

        started = time.monotonic()
        table = spec.table
        label = f"{self.mapping.name}.{table.name}"
        batch_key = f"db:{self.mapping.name}:{table.name}"
        result = BatchResult(file=label, mapping=self.mapping.name, status="failed")
        with connect(self.warehouse_url, autocommit=True) as conn:
            lock_batch_key(conn, batch_key)
            state = _watermark(conn, self.mapping, table)
            since = _since(self.mapping, state, as_of_date, full_refresh)
            load_mapping = Mapping(name=self.mapping.name, targets=(Target(table=table, columns={}),))
            origin = f"{mask_url(self.source_url)} ({self.mapping.path.name}: {table.name})"
            result.batch_id = batch_id = begin_batch(conn, batch_key, origin, label, load_mapping, "", None)

            def work() -> None:
                try:
                    with source.begin_nested():  # a failed query must not end the snapshot for the next table
                        self._load(
                            conn, source, spec, since, as_of_date, full_refresh, state, batch_id, result
                        )
                except exc.SQLAlchemyError as error:
                    raise MappingError(
                        f"{label}: the source refused the query in {self.mapping.path}: "
                        f"{getattr(error, 'orig', error)}"
                    ) from error

            load_in_batch(conn, result, label, work)
            unlock_batch_key(conn, batch_key)
        result.seconds = time.monotonic() - started
        return result

    def _load(
        self,
        conn: psycopg.Connection,
        source,
        spec: SourceTable,
        since: datetime | None,
        as_of_date: date,
        full_refresh: bool,
        state: _Watermark,
        batch_id: int,
        result: BatchResult,
    ) -> None:
        table = spec.table
        where = f"{self.mapping.path}, table {table.name}"
        statement = _over_query(source, spec, newer_than=since is not None)
        params = {"since": since} if since is not None else {}
        digest = hashlib.sha256()
        with _streamed(source, statement, params) as (header, rows):
            _check_columns(header, spec, where)
            stream = TabularStream(
                path=Path(result.file),
                file_format=DATABASE_KIND,
                header=header,
                header_line=0,
                delimiter=",",
                pg_encoding="UTF8",
                chunks=_hashed(rows_as_csv(_counted(rows, result.file, self.progress)), digest),
            )
            extracted = copy_into_landing(conn, stream, self.progress)
        new_watermark = conn.execute(
            sql.SQL("select max(nullif(btrim({}), '')::timestamp) from pg_temp.landing").format(
                _landing(header.index(spec.watermark) + 1)
            )
        ).fetchone()[0]
        soft_deleted, removed = _remove_soft_deleted(conn, spec, header, self.mapping.name, batch_id)
        unchanged = _skip_unchanged(conn, spec, header, self.mapping.name)
        columns = {c: ColumnSource(column=c) for c in header if c in table.column_index}
        load_mapping = Mapping(name=self.mapping.name, targets=(Target(table=table, columns=columns),))
        notes = (
            f"extracted {extracted} row(s) stamped after {since}"
            if since
            else f"extracted {extracted} row(s)"
        )
        if soft_deleted:
            notes += f"; {soft_deleted} soft-deleted in the source"
        if unchanged:
            notes += f"; {unchanged} read again unchanged"
        load_landing(
            conn, load_mapping, stream, batch_id, extracted - soft_deleted - unchanged, result, notes
        )
        _remember_loaded(conn, spec, header, self.mapping.name, batch_id)
        reconciled = _reconcile_due(spec, state, as_of_date, full_refresh)
        if reconciled:
            removed += _reconcile(conn, source, spec, self.mapping, batch_id, self.progress)
        result.rows_deleted = removed
        conn.execute(
            "update audit.batches set checksum = %s, rows_deleted = %s where batch_id = %s",
            (digest.hexdigest(), removed, batch_id),
        )
        conn.execute(
            """
            insert into audit.source_watermarks as w
                (source_name, table_name, watermark, last_batch_id, rows_extracted, reconciled_as_of,
                 full_extracted_as_of)
            values (%(source)s, %(table)s, %(watermark)s, %(batch)s, %(rows)s, %(reconciled)s, %(full)s)
            on conflict (source_name, table_name) do update set
                watermark = greatest(excluded.watermark, w.watermark),
                last_batch_id = excluded.last_batch_id,
                rows_extracted = excluded.rows_extracted,
                extracted_at = now(),
                reconciled_as_of = coalesce(excluded.reconciled_as_of, w.reconciled_as_of),
                full_extracted_as_of = coalesce(excluded.full_extracted_as_of, w.full_extracted_as_of)""",
            {
                "source": self.mapping.name,
                "table": table.name,
                "watermark": new_watermark,
                "batch": batch_id,
                "rows": extracted,
                "reconciled": as_of_date if reconciled else None,
                "full": as_of_date if since is None else None,
            },
        )


def describe_extract(result: BatchResult) -> str:
    if result.status == "failed":
        return f"FAILED {result.message}"
    deleted = f", {result.rows_deleted} removed (deleted in the source)" if result.rows_deleted else ""
    return (
        f"{result.file}: {result.rows_landed} changed row(s) = {result.rows_loaded} loaded + "
        f"{result.rows_quarantined} quarantined{deleted} in {result.seconds:.1f}s"
    )
