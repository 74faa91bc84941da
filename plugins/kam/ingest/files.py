"""Load landing files into `raw` with COPY: one file, one batch, one transaction.

A file's bytes stream into a temporary landing table through COPY (memory does not grow
with the file). One set-based statement per target table then casts every value to its
contract type, quarantines the rows that break the contract (with file, line, column,
value and reason) and upserts the rest by key. Landed = loaded + quarantined, always: the
audit tables enforce it with CHECK constraints.

Idempotent: an unchanged file (same checksum) is skipped; a changed file replaces the rows
its earlier batch loaded, except rows another current file also holds (they go back to that
file's batch); a failed file leaves nothing behind but a `failed` batch row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql

from kam.contract import Table, load_contract
from kam.ingest.batches import (
    BatchResult,
    TableCounts,
    begin_batch,
    describe,
    file_checksum,
    finish_loaded,
    load_in_batch,
    load_landing,
    lock_batch_key,
    unlock_batch_key,
)
from kam.ingest.contract_sql import row_key_text
from kam.ingest.copy import check_header, copy_error, copy_into_landing, insert_clean
from kam.ingest.mappings import Mapping, contract_layout
from kam.ingest.readers import FileRefused, open_tabular
from kam.warehouse.connect import connect

log = logging.getLogger(__name__)
LOADABLE_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".parquet"}
# COPY is bound by the server's CPU parsing rows, one core per connection; two keep a 2-core
# machine busy without starving dbt or Airflow running beside.
LOAD_CONNECTIONS = 2


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


def scan_paths(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]], list[tuple[Path, str]]]:
    """The files to load under `paths`, and, with the reason, the ones refused without being
    read (a link to a file outside the folder: its content is not ours to print or load) and
    the ones ignored (hidden folders and files, other suffixes, links to folders)."""
    files: list[Path] = []
    refused: list[tuple[Path, str]] = []
    ignored: list[tuple[Path, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            root = path.resolve()
            for found in sorted(path.rglob("*")):
                relative = found.relative_to(path).parts
                if any(part.startswith(".") for part in relative[:-1]):
                    continue  # inside a hidden folder: the folder itself is listed once
                if found.name.startswith("."):
                    ignored.append((found, "hidden (its name starts with a dot)"))
                elif found.is_symlink() and found.is_dir():
                    ignored.append((found, "a link to a folder: links are not followed"))
                elif found.is_dir():
                    continue
                elif found.is_symlink() and not found.resolve().is_relative_to(root):
                    refused.append(
                        (found, f"a link to {found.resolve()}, outside {path}: copy the file in instead")
                    )
                elif found.suffix.lower() not in LOADABLE_SUFFIXES:
                    ignored.append((found, f"not a loadable file ({', '.join(sorted(LOADABLE_SUFFIXES))})"))
                else:
                    files.append(found)
        elif path.exists():
            files.append(path)
        else:
            raise FileRefused(path, "no such file or folder")
    return files, refused, ignored


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """The files to load under `paths` (see scan_paths for what is left out, and why)."""
    return scan_paths(paths)[0]


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
        self,
        paths: Iterable[Path],
        mapping: Mapping | None = None,
        table: Table | None = None,
        encoding: str | None = None,
    ) -> list[BatchResult]:
        """Load files or folders: contract-layout files by their table (folder or name, or
        `table`), others through `mapping`; `encoding` declares the files' text encoding."""
        try:
            files, refused, ignored = scan_paths(paths)
        except FileRefused as exc:
            return [
                BatchResult(
                    file=exc.path,
                    mapping=mapping.name if mapping else "contract",
                    status="failed",
                    message=str(exc),
                )
            ]
        for path, reason in ignored:
            self.progress(f"ignored {path}: {reason}")
        self.progress(f"loading {len(files)} file(s)")
        results: dict[int, BatchResult] = {
            -number: BatchResult(
                file=str(path),
                mapping=mapping.name if mapping else "contract",
                status="failed",
                message=f"{path}: refused without reading it: {reason}",
            )
            for number, (path, reason) in enumerate(refused, start=1)
        }
        for result in results.values():
            self.progress(f"FAILED {result.message}")
        planned: list[_PlannedFile] = []
        for number, path in enumerate(files, start=1):
            try:
                chosen = mapping or contract_layout(table or infer_table(path))
                planned.append(
                    _PlannedFile(number, path, replace(chosen, encoding=encoding) if encoding else chosen)
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
                raw = sql.Identifier("raw", target.table.name)
                # rows another current file held before this one loaded them go back to it
                conn.execute(
                    sql.SQL("""
update {raw} r set _batch_id = holder.batch_id
from (
    select distinct on (s.row_key) s.row_key, s.holder_batch_id as batch_id
    from audit.shared_rows s join audit.batches b on b.batch_id = s.holder_batch_id
    where s.batch_id = %(previous)s and s.table_name = %(table)s and b.status = 'loaded'
    order by s.row_key, s.holder_batch_id desc
) holder
where r._batch_id = %(previous)s and {key} = holder.row_key""").format(
                        raw=raw, key=row_key_text(target.table, "r")
                    ),
                    {"previous": previous_batch, "table": target.table.name},
                )
                conn.execute(sql.SQL("delete from {} where _batch_id = %s").format(raw), (previous_batch,))
            conn.execute("delete from audit.shared_rows where batch_id = %s", (previous_batch,))
            conn.execute(
                "update audit.batches set status = 'superseded', finished_at = coalesce(finished_at, now()) "
                "where batch_id = %s",
                (previous_batch,),
            )
            notes = f"replaces batch {previous_batch}"
        table = mapping.targets[0].table
        with open(path, "rb") as handle:
            stream = open_tabular(
                path, handle, mapping.encoding, mapping.delimiter, mapping.sheet, table.name
            )
            mapping = mapping.for_header(stream.header)
            notes = "; ".join(filter(None, [check_header(stream, mapping), notes]))
            try:
                landed = copy_into_landing(conn, stream, self.progress)
            except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as exc:
                raise copy_error(path, exc, stream.header_line) from exc
        if mapping.is_contract_layout:
            loaded = insert_clean(conn, mapping.targets[0], stream.header, batch_id)
            if loaded is not None:
                result.tables[table.name] = TableCounts(loaded, loaded, 0, 0)
                conn.execute(
                    "insert into audit.batch_tables values (%s, %s, %s, %s, %s, %s)",
                    (batch_id, table.name, loaded, loaded, 0, 0),
                )
                finish_loaded(conn, batch_id, loaded, result, notes)
                return
        load_landing(conn, mapping, stream, batch_id, landed, result, notes)
