"""The raw contract, read from the one place it is declared: the dbt source files.

dbt/models/staging/<source>/_<source>__sources.yml declares every raw table's columns,
types, key, required columns, enums and plausible ranges. This module turns them into
Python objects for the loader (validation, DDL) and for the raw GX suites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import yaml

from kam.constants import RAW_SCHEMA
from kam.settings import PROJECT_DIR

SOURCES = ("erp", "billing")
ALLOWED_TYPES = ("text", "integer", "boolean", "date") + tuple(
    f"numeric({p},{s})" for p in (18,) for s in (2, 3, 4, 9)
)


class ContractError(ValueError):
    """The contract file itself is malformed."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    not_null: bool = False
    accepted_values: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""
    optional: bool = False  # added to the contract later: a contract-layout file may leave it out


@dataclass(frozen=True)
class Table:
    source: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    plausible_dates: tuple[date, date]
    description: str = ""
    date_order: tuple[tuple[str, str], ...] = ()  # (earlier, later) pairs: later may not be before earlier
    references: tuple[tuple[str, str], ...] = ()  # (column, table): the row it names must be loaded
    # (column, per, table.column, also): this column's sum per `per` may not exceed that row's
    # amount, plus the sum of `also` (table.column, same `per`) when given
    totals_within: tuple[tuple[str, str, str, str | None], ...] = ()
    column_index: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return self.column_index[name]


def _test_name_and_args(test: object) -> tuple[str, dict]:
    if isinstance(test, str):
        return test, {}
    if isinstance(test, dict) and len(test) == 1:
        name, body = next(iter(test.items()))
        body = body or {}
        return name, dict(body.get("arguments", body))
    raise ContractError(f"unreadable data test {test!r}")


def _column(spec: dict, where: str) -> Column:
    name = spec.get("name")
    data_type = spec.get("data_type")
    if not name or data_type not in ALLOWED_TYPES:
        raise ContractError(f"{where}: column {name!r} needs a data_type in {ALLOWED_TYPES}")
    kwargs: dict = {}
    for test in spec.get("data_tests", []):
        test_name, args = _test_name_and_args(test)
        if test_name == "not_null":
            kwargs["not_null"] = True
        elif test_name == "accepted_values":
            kwargs["accepted_values"] = tuple(str(v) for v in args["values"])
        elif test_name == "value_between":
            kwargs["min_value"] = args.get("min_value")
            kwargs["max_value"] = args.get("max_value")
    optional = bool(((spec.get("config") or {}).get("meta") or {}).get("optional", False))
    return Column(
        name=name, data_type=data_type, description=spec.get("description", ""), optional=optional, **kwargs
    )


def _table(source: str, spec: dict, plausible_dates: tuple[date, date]) -> Table:
    where = f"source {source}, table {spec.get('name')}"
    columns = tuple(_column(c, where) for c in spec.get("columns", []))
    keys = [
        args["columns"]
        for name, args in map(_test_name_and_args, spec.get("data_tests", []))
        if name == "primary_key"
    ]
    if len(keys) != 1:
        raise ContractError(f"{where}: exactly one primary_key test is required")
    names = {c.name for c in columns}
    if unknown := set(keys[0]) - names:
        raise ContractError(f"{where}: primary key names unknown columns {sorted(unknown)}")
    date_order = tuple(
        tuple(pair) for pair in (spec.get("config") or {}).get("meta", {}).get("date_order", [])
    )
    if unknown := {c for pair in date_order for c in pair} - names:
        raise ContractError(f"{where}: date_order names unknown columns {sorted(unknown)}")
    meta = (spec.get("config") or {}).get("meta", {})
    references = tuple((column, table) for column, table in (meta.get("references") or {}).items())
    totals_within = tuple(
        (rule["sum"], rule["per"], rule["within"], rule.get("plus"))
        for rule in meta.get("totals_within") or []
    )
    if unknown := ({c for c, _ in references} | {c for rule in totals_within for c in rule[:2]}) - names:
        raise ContractError(f"{where}: references/totals_within name unknown columns {sorted(unknown)}")
    return Table(
        source=source,
        name=spec["name"],
        columns=columns,
        primary_key=tuple(keys[0]),
        plausible_dates=plausible_dates,
        description=spec.get("description", ""),
        date_order=date_order,
        references=references,
        totals_within=totals_within,
        column_index={c.name: c for c in columns},
    )


def sources_file(source: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / "dbt" / "models" / "staging" / source / f"_{source}__sources.yml"


@cache
def load_contract(project_dir: Path = PROJECT_DIR) -> dict[str, Table]:
    """All raw tables by name. Table names are unique across sources (they share `raw`)."""
    tables: dict[str, Table] = {}
    for source in SOURCES:
        document = yaml.safe_load(sources_file(source, project_dir).read_text(encoding="utf-8"))
        (spec,) = [s for s in document["sources"] if s["name"] == source]
        bounds = spec["config"]["meta"]["plausible_dates"]
        plausible = (date.fromisoformat(str(bounds["min"])), date.fromisoformat(str(bounds["max"])))
        for table_spec in spec["tables"]:
            table = _table(source, table_spec, plausible)
            if table.name in tables:
                raise ContractError(f"table {table.name} is declared in two sources")
            tables[table.name] = table
    return tables


def get_table(name: str) -> Table:
    """A contract table by `name` or `source.name`; a clear error for anything else."""
    bare = name.split(".", 1)[1] if "." in name else name
    tables = load_contract()
    if bare not in tables or ("." in name and name.split(".", 1)[0] not in (tables[bare].source, RAW_SCHEMA)):
        raise KeyError(f"{name!r} is not a raw table of the contract; known: {', '.join(sorted(tables))}")
    return tables[bare]
