"""The batch ledger: every file or table extract is one batch in audit.batches, loaded
whole or not at all, its counts adding up (landed = loaded + quarantined)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from kam.ingest.contract_sql import target_statement
from kam.ingest.mappings import Mapping, MappingError
from kam.ingest.readers import FileRefused, TabularStream


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
    except Exception as exc:  # whatever else broke the read, the batch ends failed with it, never 'loading'
        result.message = f"{what}: could not be loaded ({type(exc).__name__}: {exc}); nothing of it was kept"
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
    finish_loaded(conn, batch_id, landed, result, notes)


def finish_loaded(
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
