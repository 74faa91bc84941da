"""Mapping files: how a file whose layout is not the contract becomes raw rows.

A mapping names, per raw table, where each contract column comes from: a file column, a
constant, or a template over file columns, with a date format where the file does not use
ISO dates. One input row can feed several raw tables; `distinct: true` collapses the
identical rows a derived entity (a customer repeated on each invoice row) produces.

Every table and column name is checked against the contract, and file column names only
ever become bind values or generated positional identifiers: a mapping cannot inject SQL.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from kam.contract import Table, get_table

DATE_TOKENS = {"yyyy": r"(\d{4})", "mm": r"(\d{1,2})", "dd": r"(\d{1,2})"}
ISO_DATE_FORMAT = "yyyy-mm-dd"


class MappingError(ValueError):
    """A mapping file (or a file's header against it) is not usable; the message says why."""


@dataclass(frozen=True)
class NumberFormat:
    """How a file writes numbers: the decimal separator, and the thousands separator if any."""

    decimal: str = "."
    thousands: str | None = None


@dataclass(frozen=True)
class ColumnSource:
    """Where one contract column's value comes from. Exactly one of column/value/template."""

    column: str | None = None
    value: str | None = None
    template: str | None = None
    date_format: str | None = None
    number_format: NumberFormat | None = None

    def file_columns(self) -> list[str]:
        if self.column is not None:
            return [self.column]
        if self.template is not None:
            return [name for _, name, _, _ in string.Formatter().parse(self.template) if name]
        return []


@dataclass(frozen=True)
class Target:
    table: Table
    columns: dict[str, ColumnSource]
    distinct: bool = False


@dataclass(frozen=True)
class Mapping:
    name: str
    targets: tuple[Target, ...]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    description: str = ""
    is_contract_layout: bool = field(default=False)

    def file_columns(self) -> set[str]:
        return {name for t in self.targets for src in t.columns.values() for name in src.file_columns()}

    def for_header(self, header: list[str]) -> Mapping:
        """The contract layout of a file made before optional columns joined the contract:
        the ones its header lacks are left out (loaded as null). Other mappings as they are."""
        if not self.is_contract_layout:
            return self
        target = self.targets[0]
        absent = {c.name for c in target.table.columns if c.optional} - set(header)
        if not absent:
            return self
        columns = {name: source for name, source in target.columns.items() if name not in absent}
        return replace(self, targets=(replace(target, columns=columns),))

    @property
    def table_names(self) -> list[str]:
        return [t.table.name for t in self.targets]


ISO_TIME_OF_DAY = r"([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?"


def date_pattern(date_format: str) -> tuple[str, str]:
    """A regex and a replacement that turn a date in `date_format` into ISO yyyy-mm-dd.

    ISO input may carry a time part (ERP timestamps); it is dropped."""
    tokens = re.split(r"(yyyy|mm|dd)", date_format.lower())
    order = [t for t in tokens if t in DATE_TOKENS]
    if sorted(order) != sorted(DATE_TOKENS):
        raise MappingError(f"date format {date_format!r} must contain yyyy, mm and dd once each")
    regex = "".join(DATE_TOKENS.get(t, re.escape(t)) for t in tokens)
    groups = {token: i + 1 for i, token in enumerate(order)}
    # an ISO date may carry its time of day (a timestamp's date is the day); nothing else may follow
    suffix = ISO_TIME_OF_DAY if date_format.lower() == ISO_DATE_FORMAT else ""
    return f"^{regex}{suffix}$", f"\\{groups['yyyy']}-\\{groups['mm']}-\\{groups['dd']}"


def _column_source(
    spec: object, where: str, default_date_format: str | None, number_format: NumberFormat | None = None
) -> ColumnSource:
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: expected a file column name or a mapping, got {spec!r}")
    unknown = set(spec) - {"column", "value", "template", "format"}
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
    kinds = [k for k in ("column", "value", "template") if k in spec]
    if len(kinds) != 1:
        raise MappingError(f"{where}: give exactly one of column, value or template")
    template = spec.get("template")
    if template is not None:
        try:
            fields = list(string.Formatter().parse(str(template)))
        except ValueError as exc:
            raise MappingError(f"{where}: bad template {template!r}: {exc}") from exc
        for _, name, format_spec, conversion in fields:
            if name is not None and (format_spec or conversion or not name):
                raise MappingError(
                    f"{where}: template {template!r}: write {{column}} only; formats and conversions "
                    "(!r, :>10) are not applied, and an empty {} names no column"
                )
    return ColumnSource(
        column=None if spec.get("column") is None else str(spec["column"]),
        value=None if spec.get("value") is None else str(spec["value"]),
        template=None if template is None else str(template),
        date_format=spec.get("format", default_date_format),
        number_format=number_format,
    )


def find_mapping(name_or_path: str, mappings_dir: Path) -> Path:
    """A mapping by its name in mappings/ (`erpnext`) or by path; an unknown one lists the
    mappings there are."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    named = mappings_dir / f"{path.stem if path.suffix in ('.yml', '.yaml') else name_or_path}.yml"
    if named.is_file():
        return named
    available = ", ".join(sorted(p.stem for p in mappings_dir.glob("*.yml"))) or "none"
    raise MappingError(
        f"no mapping {name_or_path!r}: neither a file nor a name in {mappings_dir}. "
        f"Available: {available} (or give the path of a mapping YAML)"
    )


MAPPING_MAX_BYTES = 1 << 20  # a mapping is a page of YAML; anything near this is not one
# the encodings a file may declare, as the loader's readers name them
DECLARABLE_ENCODINGS = ("utf-8", "utf8", "gb18030", "gbk", "latin-1")
FILE_MAPPING_KEYS = {
    "name",
    "description",
    "date_format",
    "decimal_separator",
    "thousands_separator",
    "encoding",
    "delimiter",
    "sheet",
    "targets",
}
# what a file may declare it writes numbers with (a space is a thin or a plain one)
DECIMAL_SEPARATORS = (".", ",")
THOUSANDS_SEPARATORS = (",", ".", " ", "\u00a0", "\u202f", "'")
TARGET_KEYS = {"columns", "distinct"}


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a mapping needs none, and aliases nested in aliases
    expand exponentially (a few hundred bytes can take gigabytes)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: an alias (*{event.anchor}); mappings do not use anchors or aliases"
            )
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> object:
    """A mapping file's YAML, bounded in size and without aliases; MappingError says why not."""
    try:
        size = Path(path).stat().st_size
        if size > MAPPING_MAX_BYTES:
            raise MappingError(
                f"mapping {path}: {size} bytes, more than a mapping file can be ({MAPPING_MAX_BYTES})"
            )
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MappingError(f"mapping {path}: cannot read it: {exc}") from exc


def _checked_options(path: Path, document: dict) -> dict:
    """The file-level options, each checked: unknown keys, delimiters and encodings are refused by name."""
    if unknown := sorted(set(document) - FILE_MAPPING_KEYS):
        raise MappingError(
            f"mapping {path}: unknown key(s) {unknown}; known: {', '.join(sorted(FILE_MAPPING_KEYS))}"
        )
    delimiter = document.get("delimiter")
    if delimiter is not None and (
        not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"'"
    ):
        raise MappingError(
            f"mapping {path}: delimiter {delimiter!r} must be one character (not a quote or line break)"
        )
    encoding = document.get("encoding")
    if encoding is not None and str(encoding).lower() not in DECLARABLE_ENCODINGS:
        raise MappingError(
            f"mapping {path}: unknown encoding {encoding!r}; use one of {', '.join(DECLARABLE_ENCODINGS)}"
        )
    date_format = document.get("date_format")
    if date_format is not None:
        date_pattern(str(date_format))  # says what is wrong with it
    number_format(path, document)  # says what is wrong with it
    for key in ("name", "description", "sheet"):
        if document.get(key) is not None and not isinstance(document[key], str | int):
            raise MappingError(f"mapping {path}: {key} must be text, not {type(document[key]).__name__}")
    return document


def number_format(path: Path, document: dict) -> NumberFormat | None:
    """The number format a mapping declares (decimal_separator, thousands_separator), checked;
    None when it declares none (plain decimal notation)."""
    decimal = document.get("decimal_separator", ".")
    thousands = document.get("thousands_separator")
    if decimal not in DECIMAL_SEPARATORS:
        raise MappingError(
            f"mapping {path}: decimal_separator {decimal!r} must be one of {DECIMAL_SEPARATORS}"
        )
    if thousands is not None and (thousands not in THOUSANDS_SEPARATORS or thousands == decimal):
        raise MappingError(
            f"mapping {path}: thousands_separator {thousands!r} must be one of {THOUSANDS_SEPARATORS} "
            "and differ from the decimal separator"
        )
    if decimal == "." and thousands is None:
        return None
    return NumberFormat(decimal=decimal, thousands=thousands)


def load_mapping(path: Path) -> Mapping:
    document = read_yaml(path)
    if not isinstance(document, dict) or not isinstance(document.get("targets"), dict):
        raise MappingError(f"mapping {path}: needs a `targets:` section (raw table -> columns)")
    _checked_options(path, document)
    default_date_format = document.get("date_format")
    numbers = number_format(path, document)
    targets = []
    for table_name, spec in document["targets"].items():
        try:
            table = get_table(str(table_name))
        except KeyError as exc:
            raise MappingError(f"mapping {path}: {exc.args[0]}") from exc
        spec = spec or {}
        where = f"mapping {path}, table {table.name}"
        if not isinstance(spec, dict) or set(spec) - TARGET_KEYS:
            raise MappingError(f"{where}: expected `columns:` (and `distinct:`), got {spec!r}")
        if not isinstance(spec.get("distinct", False), bool):
            raise MappingError(f"{where}: distinct must be true or false, not {spec['distinct']!r}")
        columns_spec = spec.get("columns") or {}
        if not isinstance(columns_spec, dict):
            raise MappingError(f"{where}: columns must map contract columns to sources")
        columns = {}
        for column_name, column_spec in columns_spec.items():
            if column_name not in table.column_index:
                raise MappingError(
                    f"{where}: {column_name!r} is not a column of raw.{table.name}; "
                    f"known: {', '.join(table.column_names)}"
                )
            data_type = table.column(column_name).data_type
            is_number = data_type == "integer" or data_type.startswith("numeric")
            columns[column_name] = _column_source(
                column_spec,
                f"{where}, column {column_name}",
                default_date_format if data_type == "date" else None,
                numbers if is_number else None,
            )
        if missing := [k for k in table.primary_key if k not in columns]:
            raise MappingError(f"{where}: the key column(s) {missing} must be mapped")
        targets.append(Target(table=table, columns=columns, distinct=spec.get("distinct", False)))
    if not targets:
        raise MappingError(f"mapping {path}: no targets")
    return Mapping(
        name=str(document.get("name") or Path(path).stem),
        targets=tuple(targets),
        encoding=str(document["encoding"]).lower() if document.get("encoding") else None,
        delimiter=document.get("delimiter"),
        sheet=document.get("sheet"),
        description=str(document.get("description", "")),
    )


def contract_layout(table: Table) -> Mapping:
    """The identity mapping: a file whose header is the contract's column names."""
    columns = {c.name: ColumnSource(column=c.name) for c in table.columns}
    return Mapping(name="contract", targets=(Target(table=table, columns=columns),), is_contract_layout=True)
