"""Open a landing file (CSV, XLSX or Parquet) as a header plus a CSV byte stream for COPY.

The format is recognised from the content, not the file name, so a renamed file is read
for what it is or refused with what it looks like. CSV bytes pass through untouched
(PostgreSQL decodes them), so memory does not grow with the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

CHUNK_BYTES = 1 << 20
ROWS_PER_CHUNK = 5000
DELIMITERS = (",", ";", "\t", "|")
UTF8_BOM = codecs.BOM_UTF8
NOT_TABULAR_MAGIC = {
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\xd0\xcf\x11\xe0": "an old binary Office file (.xls/.doc); save it as .xlsx or CSV",
    b"SQLite format 3": "an SQLite database",
}
PG_ENCODINGS = {"utf-8": "UTF8", "utf8": "UTF8", "gb18030": "GB18030", "gbk": "GBK", "latin-1": "LATIN1"}


class FileRefused(ValueError):
    """A file that cannot be loaded at all. The message names the file and says why."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None):
        where = f"{path}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {reason}")
        self.path, self.reason, self.line = str(path), reason, line


@dataclass
class TabularStream:
    path: Path
    file_format: str
    header: list[str]
    header_line: int
    delimiter: str
    pg_encoding: str
    chunks: Iterator[bytes]


def _sniff_format(path: Path, head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"PAR1"):
        return "parquet"
    for magic, what in NOT_TABULAR_MAGIC.items():
        if head.startswith(magic):
            raise FileRefused(path, f"this is {what}, not a CSV, XLSX or Parquet file")
    return "csv"


def _refuse_mixed_encodings(path: Path, sample: bytes) -> None:
    """UTF-8 text (with real multi-byte characters) followed by bytes that are not UTF-8 is
    a file assembled from two encodings: reading it as either would garble part of it."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError as exc:
        prefix = sample[: exc.start]
        if any(byte >= 0x80 for byte in prefix):
            raise FileRefused(
                path,
                "mixed encodings: UTF-8 text up to here, then bytes that are not UTF-8; "
                "re-export the file in one encoding",
                prefix.count(b"\n") + 1,
            ) from exc


def _refuse_if_it_may_be_latin1(path: Path, sample: bytes) -> None:
    """Any bytes are Latin-1, and many Latin-1 words are valid GB18030 too (Müller reads as
    M黮ler). Chinese text keeps to GB2312's rows (both bytes 0xA1-0xFE); a pair outside
    them is a rare character or, far more often, Latin-1: then the encoding must be said."""
    position = 0
    while position < len(sample) - 1:
        lead = sample[position]
        if lead < 0x80:
            position += 1
            continue
        trail = sample[position + 1]
        if 0x30 <= trail <= 0x39:  # a four-byte GB18030 sequence
            position += 4
            continue
        if lead < 0xA1 or trail < 0xA1:
            separators = b' ,;\t|\r\n"'
            start = max(sample.rfind(bytes([c]), 0, position) for c in separators) + 1
            ends = [i for i in (sample.find(bytes([c]), position) for c in separators) if i >= 0]
            word = sample[start : min(ends, default=len(sample))]
            raise FileRefused(
                path,
                f"the text is not UTF-8, and it is not clearly GB18030: {word.decode('gb18030', 'replace')!r} "
                f"as GB18030 is {word.decode('latin-1')!r} as Latin-1. Say which: `encoding:` in a mapping, "
                "or kam load --encoding latin-1 (or gb18030)",
            )
        position += 2


def _detect_encoding(path: Path, sample: bytes, declared: str | None) -> str:
    if not declared:
        _refuse_mixed_encodings(path, sample)
    candidates = [declared] if declared else ["utf-8", "gb18030"]
    for name in candidates:
        decoder = codecs.getincrementaldecoder(name)()
        try:
            decoder.decode(sample, final=False)
        except (UnicodeDecodeError, LookupError):
            continue
        pg_name = PG_ENCODINGS.get(name.lower())
        if pg_name is None:
            raise FileRefused(path, f"encoding {name!r} is not supported; use one of {sorted(PG_ENCODINGS)}")
        if not declared and name == "gb18030":
            _refuse_if_it_may_be_latin1(path, sample)
        return pg_name
    tried = " or ".join(candidates)
    raise FileRefused(
        path, f"the text is not valid {tried}; save it as UTF-8 (or declare `encoding:` in a mapping)"
    )


def _split_header(path: Path, head: bytes) -> tuple[bytes, bytes]:
    end = head.find(b"\n")
    if end < 0 and b"\r" in head:  # old Mac line breaks (CR alone): COPY reads them as such
        end = head.find(b"\r")
    if end < 0:
        if len(head) >= CHUNK_BYTES:
            raise FileRefused(path, "no line break in the first MiB: this is not a line-oriented CSV file", 1)
        return head, b""
    return head[:end], head[end + 1 :]


def _parse_header(path: Path, raw: bytes, pg_encoding: str, delimiter: str | None) -> tuple[list[str], str]:
    python_encoding = {"UTF8": "utf-8", "GB18030": "gb18030", "GBK": "gbk", "LATIN1": "latin-1"}[pg_encoding]
    text = raw.decode(python_encoding).rstrip("\r")
    if "\x00" in text:
        raise FileRefused(path, "the header contains NUL bytes: this is not a text CSV file", 1)
    if not text.strip():
        raise FileRefused(path, "the first line is empty: a CSV file must start with its header", 1)
    chosen = delimiter or max(DELIMITERS, key=text.count)
    header = [name.strip() for name in next(csv.reader([text], delimiter=chosen))]
    return header, chosen


def _check_header(path: Path, header: list[str], line: int) -> None:
    seen: set[str] = set()
    for name in header:
        if not name:
            raise FileRefused(path, "the header has an empty column name", line)
        if name in seen:
            raise FileRefused(path, f"the header names column {name!r} twice", line)
        seen.add(name)


def _csv_chunks(first: bytes, handle: io.BufferedReader) -> Iterator[bytes]:
    if first:
        yield first
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


def cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):  # plain notation: the shortest decimal that is this float
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):  # a database's numeric, in plain notation (never 0E-9)
        return format(value, "f")
    return str(value)


def rows_as_csv(rows: Iterator[list[str | None]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    count = 0
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
        count += 1
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def _open_xlsx(path: Path, sheet: str | None, table_hint: str | None) -> TabularStream:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise FileRefused(path, f"not a readable XLSX workbook ({exc})") from exc
    names = workbook.sheetnames
    chosen = sheet or (table_hint if table_hint in names else names[0])
    if chosen not in names:
        raise FileRefused(path, f"no sheet named {chosen!r}; sheets: {', '.join(names)}")
    rows = workbook[chosen].iter_rows(values_only=True)
    header_line = 0
    for header_line, values in enumerate(rows, start=1):  # noqa: B007 - the header's row number is kept
        if any(v is not None and str(v).strip() for v in values):
            header = [cell_text(v) or "" for v in values]
            break
    else:
        raise FileRefused(path, f"sheet {chosen!r} is empty")
    while header and not header[-1]:
        header.pop()
    _check_header(path, header, header_line)
    width = len(header)

    def data() -> Iterator[list[str | None]]:
        for values in rows:
            cells = [cell_text(v) for v in values[:width]]
            if any(c not in (None, "") for c in cells):
                yield cells + [None] * (width - len(cells))
        workbook.close()

    return TabularStream(path, "xlsx", header, header_line, ",", "UTF8", rows_as_csv(data()))


def _open_parquet(path: Path) -> TabularStream:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise FileRefused(path, f"not a readable Parquet file ({exc})") from exc
    header = list(parquet.schema_arrow.names)
    _check_header(path, header, 1)

    def data() -> Iterator[list[str | None]]:
        for batch in parquet.iter_batches(batch_size=ROWS_PER_CHUNK):
            for row in batch.to_pylist():
                yield [cell_text(row[name]) for name in header]

    return TabularStream(path, "parquet", header, 1, ",", "UTF8", rows_as_csv(data()))


def open_tabular(
    path: Path,
    handle: io.BufferedReader,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    table_hint: str | None = None,
) -> TabularStream:
    """Read the header and return the data as a stream of CSV bytes (after the header)."""
    head = handle.read(CHUNK_BYTES)
    if not head:
        raise FileRefused(path, "the file is empty (no header, no rows)")
    file_format = _sniff_format(path, head)
    if file_format == "xlsx":
        return _open_xlsx(path, sheet, table_hint)
    if file_format == "parquet":
        return _open_parquet(path)
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
        encoding = encoding or "utf-8"
    pg_encoding = _detect_encoding(path, head, encoding)
    header_bytes, rest = _split_header(path, head)
    header, chosen = _parse_header(path, header_bytes, pg_encoding, delimiter)
    _check_header(path, header, 1)
    return TabularStream(path, "csv", header, 1, chosen, pg_encoding, _csv_chunks(rest, handle))
