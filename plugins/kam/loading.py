"""Load landing files into `raw` with COPY: one file, one batch, one transaction.

A file's bytes stream into a temporary landing table through COPY (memory does not grow
with the file). One set-based statement per target table then casts every value to its
contract type, quarantines the rows that break the contract (with file, line, column,
value and reason) and upserts the rest by key. Landed = loaded + quarantined, always: the
audit tables enforce it with CHECK constraints.

Idempotent: an unchanged file (same checksum) is skipped; a changed file replaces the rows
its earlier batch loaded; a failed file leaves nothing behind but a `failed` batch row.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from kam.contract import Column, Table, load_contract
from kam.mapping import (
    ISO_DATE_FORMAT,
    ColumnSource,
    Mapping,
    MappingError,
    Target,
    contract_layout,
    date_pattern,
)
from kam.sources.files import FileRefused, TabularStream, open_tabular
from kam.warehouse import BATCH_ID_DEFAULT, BATCH_SETTING, connect

log = logging.getLogger("kam.loading")
LOADABLE_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".parquet"}
PROGRESS_EVERY_BYTES = 64 << 20
# COPY is bound by the server's CPU parsing rows, one core per connection; two keep a 2-core
# machine busy without starving dbt or Airflow running beside.
LOAD_CONNECTIONS = 2
QUARANTINED_VALUE_CHARS = 200


@dataclass
class TableCounts:
    produced: int
    loaded: int
    merged: int
    quarantined: int


@dataclass
class BatchResult:
    file: str
    mapping: str
    status: str  # loaded | skipped | failed
    batch_id: int | None = None
    rows_landed: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_deleted: int = 0  # removed from raw because the source deleted them (database sources)
    tables: dict[str, TableCounts] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0


def file_checksum(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def infer_table(path: Path) -> Table:
    """The raw table a contract-layout file feeds: its folder (landing/<source>/<table>/)
    or, failing that, the longest table name its file name starts with."""
    tables = load_contract()
    if path.parent.name in tables:
        return tables[path.parent.name]
    stem = path.stem.lower()
    matches = [
        name for name in tables if stem == name or stem.startswith(name + "_") or stem.startswith(name + ".")
    ]
    if not matches:
        raise FileRefused(
            path,
            "cannot tell which raw table this file feeds: put it in landing/<source>/<table>/, "
            "name it after the table (invoices.csv), or give --table or --mapping",
        )
    return tables[max(matches, key=len)]


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in LOADABLE_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.exists():
            files.append(path)
        else:
            raise FileRefused(path, "no such file or folder")
    return files


# -- SQL for one target table ------------------------------------------------------------


def _landing_column(position: int) -> sql.Identifier:
    return sql.Identifier(f"c{position}")


def _source_text(source: ColumnSource, positions: dict[str, int]) -> sql.Composable:
    """The column's value as text, NULL when empty."""

    def file_value(name: str) -> sql.Composable:
        return sql.SQL("nullif(btrim(l.{}), '')").format(_landing_column(positions[name]))

    if source.column is not None:
        return file_value(source.column)
    if source.value is not None:
        return sql.SQL("{}::text").format(sql.Literal(source.value))
    if source.template is not None:
        import string

        parts: list[sql.Composable] = []
        for literal, name, _, _ in string.Formatter().parse(source.template):
            if literal:
                parts.append(sql.Literal(literal))
            if name:
                parts.append(file_value(name))
        return sql.SQL("({})").format(sql.SQL(" || ").join(parts))
    return sql.SQL("null::text")


@dataclass
class _ColumnSql:
    column: Column
    source: sql.Composable  # text as it came
    value: sql.Composable  # text ready to cast (dates reformatted to ISO)
    date_format: str | None


def _column_sql(column: Column, source: ColumnSource | None, positions: dict[str, int]) -> _ColumnSql:
    text = _source_text(source, positions) if source else sql.SQL("null::text")
    if column.data_type != "date":
        return _ColumnSql(column, text, text, None)
    date_format = (source.date_format if source else None) or ISO_DATE_FORMAT
    regex, replacement = date_pattern(date_format)
    value = sql.SQL("case when {src} ~ {rx} then regexp_replace({src}, {rx}, {rep}) end").format(
        src=text, rx=sql.Literal(regex), rep=sql.Literal(replacement)
    )
    return _ColumnSql(column, text, value, date_format)


@dataclass(frozen=True)
class _Problem:
    """One contract rule on one column: the row breaks it when `condition` is true."""

    column: Column
    condition: sql.Composable
    value: sql.Composable
    reason: str

    def as_jsonb(self) -> sql.Composed:
        return sql.SQL(
            "case when {cond} then jsonb_build_object('column', {col}, 'value', left({val}, {n}), 'reason', {why}) end"
        ).format(
            cond=self.condition,
            col=sql.Literal(self.column.name),
            val=self.value,
            n=sql.Literal(QUARANTINED_VALUE_CHARS),
            why=sql.Literal(self.reason),
        )


def _checks(
    c: _ColumnSql, s: sql.Identifier, v: sql.Identifier, t: sql.Identifier, table: Table, required: bool
) -> list[_Problem]:
    """Problems of one column: s is the text as it came, v the text ready to cast, t the typed value."""
    col = c.column
    checks = []
    if required:
        checks.append(
            _Problem(col, sql.SQL("{} is null").format(s), sql.SQL("null::text"), "missing required value")
        )
    if c.date_format:
        checks.append(
            _Problem(
                col,
                sql.SQL("{} is not null and {} is null").format(s, v),
                s,
                f"not a date in the format {c.date_format}",
            )
        )
    if col.data_type == "date":
        low, high = table.plausible_dates
        checks.append(
            _Problem(
                col,
                sql.SQL("{} not between {} and {}").format(t, sql.Literal(low), sql.Literal(high)),
                s,
                f"impossible date (outside {low} .. {high})",
            )
        )
    if col.data_type != "text":
        checks.append(
            _Problem(
                col, sql.SQL("{} is not null and {} is null").format(v, t), s, f"not a valid {col.data_type}"
            )
        )
    if col.accepted_values:
        checks.append(
            _Problem(
                col,
                sql.SQL("{} is not null and {} <> all({}::text[])").format(
                    s, s, sql.Literal(list(col.accepted_values))
                ),
                s,
                "not one of: " + ", ".join(col.accepted_values),
            )
        )
    if col.min_value is not None or col.max_value is not None:
        low = sql.Literal(col.min_value) if col.min_value is not None else sql.SQL("null")
        high = sql.Literal(col.max_value) if col.max_value is not None else sql.SQL("null")
        checks.append(
            _Problem(
                col,
                sql.SQL("{t} < {lo} or {t} > {hi}").format(t=t, lo=low, hi=high),
                s,
                f"outside the plausible range {col.min_value} .. {col.max_value}",
            )
        )
    return checks


def target_statement(
    target: Target, header: list[str], batch_id: int, file_name: str, header_line: int
) -> sql.Composed:
    """One statement: validate, quarantine and upsert the landing rows for one raw table.
    Returns one row: produced, loaded, merged, quarantined."""
    table = target.table
    positions = {name: i + 1 for i, name in enumerate(header)}
    cols = [_column_sql(col, target.columns.get(col.name), positions) for col in table.columns]
    src = [sql.Identifier(f"s_{c.column.name}") for c in cols]
    val = [sql.Identifier(f"v_{c.column.name}") for c in cols]
    typed = [sql.Identifier(c.column.name) for c in cols]
    key = [sql.Identifier(k) for k in table.primary_key]

    staged = sql.SQL(", ").join(
        sql.SQL("{} as {}, {} as {}").format(c.source, s, c.value, v)
        for c, s, v in zip(cols, src, val, strict=True)
    )
    casts = sql.SQL(", ").join(
        (
            sql.SQL("{} as {}").format(v, t)
            if c.column.data_type == "text"
            else sql.SQL("case when pg_input_is_valid({v}, {ty}) then {v}::{ty_sql} end as {t}").format(
                v=v, ty=sql.Literal(c.column.data_type), ty_sql=sql.SQL(c.column.data_type), t=t
            )
        )
        for c, v, t in zip(cols, val, typed, strict=True)
    )
    checks: list[sql.Composable] = []
    for c, s, v, t in zip(cols, src, val, typed, strict=True):
        required = c.column.not_null or c.column.name in table.primary_key
        checks += [problem.as_jsonb() for problem in _checks(c, s, v, t, table, required)]
    typed_list = sql.SQL(", ").join(typed)
    row_hash = sql.SQL("md5(row({})::text)").format(typed_list) if target.distinct else sql.SQL("''::text")
    key_text = sql.SQL(" || '/' || ").join(sql.SQL("{}::text").format(k) for k in key)
    header_keys = sql.Literal(header)
    header_values = sql.SQL(", ").join(
        sql.SQL("l.{}").format(_landing_column(i + 1)) for i in range(len(header))
    )
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = excluded.{}").format(t, t)
        for t in typed
        if t.as_string() not in {k.as_string() for k in key}
    )
    on_conflict = (
        sql.SQL("do update set {}, _batch_id = excluded._batch_id, _loaded_at = now()").format(assignments)
        if assignments.as_string()
        else sql.SQL("do update set _batch_id = excluded._batch_id, _loaded_at = now()")
    )
    return sql.SQL("""
with staged as materialized (
    select l._record, {staged} from pg_temp.landing l
), typed as materialized (
    select _record, {casts}, {src_list}, {val_list} from staged
), checked as materialized (
    select *, array_remove(array[{checks}]::jsonb[], null) as problems from typed
), ranked as (
    select *,
        row_number() over w as key_rank,
        first_value(_record) over w as first_record,
        {row_hash} = first_value({row_hash}) over w as same_as_first
    from checked
    window w as (partition by cardinality(problems) = 0, {key} order by _record)
), verdict as (
    select *,
        case
            when cardinality(problems) > 0 then problems
            when key_rank > 1 and not ({distinct} and same_as_first) then array[jsonb_build_object(
                'column', {key_names}, 'value', {key_text},
                'reason', 'duplicate key: same ' || {key_names} || ' as line ' || (first_record + {hl}))]
        end as final_problems,
        cardinality(problems) = 0 and key_rank = 1 as is_loaded,
        cardinality(problems) = 0 and key_rank > 1 and {distinct} and same_as_first as is_merged
    from ranked
), quarantined as (
    insert into audit.quarantine (batch_id, file_name, line_no, table_name, column_name, value, reason, record)
    select {batch}, {file}, v._record + {hl}, {table_name},
        v.final_problems[1] ->> 'column', v.final_problems[1] ->> 'value',
        (select string_agg((p ->> 'column') || ': ' || (p ->> 'reason'), '; ') from unnest(v.final_problems) p),
        jsonb_object({header_keys}::text[], array[{header_values}]::text[])
    from verdict v join pg_temp.landing l on l._record = v._record
    where v.final_problems is not null
    returning 1
), loaded as (
    insert into {raw} ({typed_list}, _batch_id)
    select {typed_list}, {batch} from verdict where is_loaded
    on conflict ({key}) {on_conflict}
    returning 1
)
select (select count(*) from verdict), (select count(*) from loaded),
       (select count(*) from verdict where is_merged), (select count(*) from quarantined)
""").format(
        staged=staged,
        casts=casts,
        src_list=sql.SQL(", ").join(src),
        val_list=sql.SQL(", ").join(val),
        checks=sql.SQL(", ").join(checks),
        row_hash=row_hash,
        key=sql.SQL(", ").join(key),
        distinct=sql.Literal(target.distinct),
        key_names=sql.Literal(",".join(table.primary_key)),
        key_text=key_text,
        hl=sql.Literal(header_line),
        batch=sql.Literal(batch_id),
        file=sql.Literal(file_name),
        table_name=sql.Literal(table.name),
        header_keys=header_keys,
        header_values=header_values,
        raw=sql.Identifier("raw", table.name),
        typed_list=typed_list,
        on_conflict=on_conflict,
    )


# -- one file ------------------------------------------------------------------------------


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
    columns = [_landing_column(i + 1) for i in range(len(stream.header))]
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
        typed = _ColumnSql(column, name, name, None)
        problems += [p.condition for p in _checks(typed, name, name, name, table, column.name in required)]
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


def _check_header(stream, mapping: Mapping) -> str:
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


def _copy_error(path: Path, exc: psycopg.Error, header_line: int) -> FileRefused:
    context = (exc.diag.context or "") if exc.diag else ""
    line = None
    marker = "line "
    if marker in context:
        digits = context.split(marker, 1)[1].split(",", 1)[0].split(":", 1)[0].strip()
        line = int(digits) + header_line if digits.isdigit() else None
    detail = (exc.diag.message_primary if exc.diag else None) or str(exc).splitlines()[0]
    return FileRefused(path, f"{detail}; nothing from this file was loaded; fix or re-export it", line)


# -- one batch: the steps files and database extracts share ---------------------------------


def lock_batch_key(conn: psycopg.Connection, batch_key: str) -> None:
    """One loader at a time per batch key. Holding the lock, a batch still 'loading' is one
    whose loader died mid-way: it is marked failed."""
    conn.execute("select pg_advisory_lock(hashtext(%s))", (batch_key,))
    conn.execute(
        "update audit.batches set status = 'failed', finished_at = now(), message = 'interrupted: the "
        "loader stopped before it finished; nothing of this batch was kept' "
        "where batch_key = %s and status = 'loading'",
        (batch_key,),
    )


def unlock_batch_key(conn: psycopg.Connection, batch_key: str) -> None:
    conn.execute("select pg_advisory_unlock(hashtext(%s))", (batch_key,))


def begin_batch(
    conn: psycopg.Connection,
    batch_key: str,
    origin: str,
    name: str,
    mapping: Mapping,
    checksum: str,
    size: int | None,
) -> int:
    """Record a batch as 'loading' (outside the load's transaction, so a failure stays on record)."""
    return conn.execute(
        "insert into audit.batches (batch_key, file_path, file_name, mapping, target_tables, checksum,"
        " file_bytes, status) values (%s, %s, %s, %s, %s, %s, %s, 'loading') returning batch_id",
        (batch_key, origin, name, mapping.name, mapping.table_names, checksum, size),
    ).fetchone()[0]


def load_in_batch(conn: psycopg.Connection, result: BatchResult, what: str, work: Callable[[], None]) -> None:
    """Run `work` as the batch's one transaction: it is loaded whole, or (refused, with the
    reason, or failing in the warehouse) not at all and recorded as failed."""
    try:
        with conn.transaction():
            work()
        result.status = "loaded"
    except (FileRefused, MappingError) as exc:
        result.message = str(exc)
    except psycopg.Error as exc:
        result.message = f"{what}: the warehouse refused the load: {exc}".strip()
    if result.status == "failed":
        conn.execute(
            "update audit.batches set status = 'failed', message = %s, finished_at = now() where batch_id = %s",
            (result.message, result.batch_id),
        )


def load_landing(
    conn: psycopg.Connection,
    mapping: Mapping,
    stream: TabularStream,
    batch_id: int,
    landed: int,
    result: BatchResult,
    notes: str = "",
) -> None:
    """Validate, quarantine and upsert what landed, per target table, and mark the batch loaded."""
    for target in mapping.targets:
        produced, loaded, merged, quarantined = conn.execute(
            target_statement(target, stream.header, batch_id, stream.path.name, stream.header_line)
        ).fetchone()
        result.tables[target.table.name] = TableCounts(produced, loaded, merged, quarantined)
        conn.execute(
            "insert into audit.batch_tables values (%s, %s, %s, %s, %s, %s)",
            (batch_id, target.table.name, produced, loaded, merged, quarantined),
        )
    _finish_loaded(conn, batch_id, landed, result, notes)


def _finish_loaded(
    conn: psycopg.Connection, batch_id: int, landed: int, result: BatchResult, notes: str
) -> None:
    quarantined_records = conn.execute(
        "select count(distinct line_no) from audit.quarantine where batch_id = %s", (batch_id,)
    ).fetchone()[0]
    result.rows_landed = landed
    result.rows_quarantined = quarantined_records
    result.rows_loaded = landed - quarantined_records
    result.message = notes
    conn.execute(
        "update audit.batches set status = 'loaded', rows_landed = %s, rows_loaded = %s, rows_quarantined = %s,"
        " message = nullif(%s, ''), finished_at = now() where batch_id = %s",
        (landed, result.rows_loaded, quarantined_records, notes, batch_id),
    )


@dataclass(frozen=True)
class _PlannedFile:
    number: int
    path: Path
    mapping: Mapping


def _groups_by_table(planned: list[_PlannedFile]) -> list[list[_PlannedFile]]:
    """Files that share a raw table, in their given order (a later file's rows update an
    earlier file's keys); groups share no table, so they load side by side. Largest first,
    which keeps the connections evenly busy."""
    groups: list[tuple[set[str], list[_PlannedFile]]] = []
    for item in planned:
        tables, members = set(item.mapping.table_names), [item]
        for group in [g for g in groups if g[0] & tables]:
            groups.remove(group)
            tables |= group[0]
            members = group[1] + members
        groups.append((tables, sorted(members, key=lambda m: m.number)))
    return sorted((g[1] for g in groups), key=lambda g: -sum(m.path.stat().st_size for m in g))


class Loader:
    """Loads files into one warehouse, reporting progress through `progress`: files of
    different raw tables on LOAD_CONNECTIONS connections at once, those of one table in order."""

    def __init__(self, url: str, progress: Callable[[str], None] = log.info):
        self.url = url
        self.progress = progress

    def load_paths(
        self, paths: Iterable[Path], mapping: Mapping | None = None, table: Table | None = None
    ) -> list[BatchResult]:
        try:
            files = expand_paths(paths)
        except FileRefused as exc:
            return [
                BatchResult(
                    file=exc.path,
                    mapping=mapping.name if mapping else "contract",
                    status="failed",
                    message=str(exc),
                )
            ]
        self.progress(f"loading {len(files)} file(s)")
        results: dict[int, BatchResult] = {}
        planned: list[_PlannedFile] = []
        for number, path in enumerate(files, start=1):
            try:
                planned.append(
                    _PlannedFile(number, path, mapping or contract_layout(table or infer_table(path)))
                )
            except FileRefused as exc:
                results[number] = BatchResult(
                    file=str(path), mapping="contract", status="failed", message=str(exc)
                )
                self.progress(f"[{number}/{len(files)}] FAILED {exc}")

        def load_in_order(group: list[_PlannedFile]) -> None:
            for item in group:
                results[item.number] = self.load_file(item.path, item.mapping)
                self.progress(f"[{item.number}/{len(files)}] {describe(results[item.number])}")

        with ThreadPoolExecutor(max_workers=LOAD_CONNECTIONS, thread_name_prefix="load") as pool:
            for future in [pool.submit(load_in_order, group) for group in _groups_by_table(planned)]:
                future.result()
        return [results[number] for number in sorted(results)]

    def load_file(self, path: Path, mapping: Mapping) -> BatchResult:
        started = time.monotonic()
        path = Path(path).resolve()
        result = BatchResult(file=str(path), mapping=mapping.name, status="failed")
        checksum, size = file_checksum(path)
        batch_key = f"{mapping.name}:{path}"
        with connect(self.url, autocommit=True) as conn:
            lock_batch_key(conn, batch_key)
            previous = conn.execute(
                "select batch_id, checksum from audit.batches where batch_key = %s and status in ('loaded', 'rejected') "
                "order by batch_id desc limit 1",
                (batch_key,),
            ).fetchone()
            same = conn.execute(
                "select batch_id, file_path from audit.batches where checksum = %s and mapping = %s "
                "and status = 'loaded' order by batch_id desc limit 1",
                (checksum, mapping.name),
            ).fetchone()
            if same:
                result.status, result.batch_id = "skipped", same[0]
                result.message = f"unchanged: identical content already loaded as batch {same[0]} ({same[1]})"
                result.seconds = time.monotonic() - started
                return result
            batch_id = begin_batch(conn, batch_key, str(path), path.name, mapping, checksum, size)
            result.batch_id = batch_id
            load_in_batch(
                conn,
                result,
                str(path),
                lambda: self._load_batch(
                    conn, path, mapping, batch_id, previous[0] if previous else None, result
                ),
            )
            unlock_batch_key(conn, batch_key)
        result.seconds = time.monotonic() - started
        return result

    def _load_batch(
        self,
        conn: psycopg.Connection,
        path: Path,
        mapping: Mapping,
        batch_id: int,
        previous_batch: int | None,
        result: BatchResult,
    ) -> None:
        notes = ""
        if previous_batch is not None:
            for target in mapping.targets:
                conn.execute(
                    sql.SQL("delete from {} where _batch_id = %s").format(
                        sql.Identifier("raw", target.table.name)
                    ),
                    (previous_batch,),
                )
            conn.execute(
                "update audit.batches set status = 'superseded', finished_at = coalesce(finished_at, now()) "
                "where batch_id = %s",
                (previous_batch,),
            )
            notes = f"replaces batch {previous_batch}"
        table = mapping.targets[0].table
        if mapping.is_contract_layout:
            with open(path, "rb") as handle:
                stream = open_tabular(
                    path, handle, mapping.encoding, mapping.delimiter, mapping.sheet, table.name
                )
                mapping = mapping.for_header(stream.header)
                notes = "; ".join(filter(None, [_check_header(stream, mapping), notes]))
                copied = copy_straight_into_raw(conn, stream, table, batch_id, self.progress)
            if copied is not None:
                result.tables[table.name] = TableCounts(copied, copied, 0, 0)
                conn.execute(
                    "insert into audit.batch_tables values (%s, %s, %s, %s, %s, %s)",
                    (batch_id, table.name, copied, copied, 0, 0),
                )
                _finish_loaded(conn, batch_id, copied, result, notes)
                return
        with open(path, "rb") as handle:
            stream = open_tabular(
                path, handle, mapping.encoding, mapping.delimiter, mapping.sheet, table.name
            )
            mapping = mapping.for_header(stream.header)
            header_notes = _check_header(stream, mapping)
            try:
                landed = copy_into_landing(conn, stream, self.progress)
            except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as exc:
                raise _copy_error(path, exc, stream.header_line) from exc
        if not mapping.is_contract_layout:
            notes = "; ".join(filter(None, [header_notes, notes]))
        load_landing(conn, mapping, stream, batch_id, landed, result, notes)


def describe(result: BatchResult) -> str:
    name = Path(result.file).name
    if result.status == "skipped":
        return f"{name}: skipped, {result.message}"
    if result.status == "failed":
        return f"FAILED {result.message}"
    tables = ", ".join(
        f"{t} {c.loaded}" + (f" (+{c.merged} merged)" if c.merged else "") for t, c in result.tables.items()
    )
    return (
        f"{name}: {result.rows_landed} landed = {result.rows_loaded} loaded + {result.rows_quarantined} "
        f"quarantined [{tables}] in {result.seconds:.1f}s" + (f"; {result.message}" if result.message else "")
    )
