"""The gates' suites: reviewed JSON files in expectations/. The raw suites are generated
from the raw contract (`kam expectations generate`) and kept in step with it by a test;
expectations/marts/<mart>.json hold what dbt cannot say about each mart."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from kam.contract import Table, load_contract
from kam.settings import Settings

BUILD_SCHEMA_PLACEHOLDER = "{build_schema}"
EVENT_DATE_EXCLUSIONS = {"due_date", "valid_to", "valid_from"}  # dates that are legitimately in the future


def policy_value(settings: Settings, parameter: str) -> float:
    """A knob from the dbt policy seed (business numbers live there, not in code)."""
    with open(settings.dbt_project_dir / "seeds" / "policy_parameters.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["parameter"] == parameter:
                return float(row["value"])
    raise KeyError(f"policy parameter {parameter!r} is not in dbt/seeds/policy_parameters.csv")


def row_count_parameter(table: str) -> str:
    return f"min_row_count_{table}"


def contract_suite(table: Table) -> dict:
    """The raw suite the contract implies: columns and types, keys, enums, ranges, dates."""
    expectations: list[dict] = [
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": [*table.column_names, "_batch_id", "_loaded_at"], "exact_match": True},
        },
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": {"$PARAMETER": row_count_parameter(table.name)}},
            "meta": {"why": "volume check: a feed that suddenly drops fails (raw_max_volume_drop_share)"},
        },
    ]
    pg_types = {"text": "TEXT", "integer": "INTEGER", "boolean": "BOOLEAN", "date": "DATE"}
    for column in table.columns:
        type_name = pg_types.get(column.data_type) or column.data_type.upper().replace(",", ", ")
        expectations.append(
            {
                "type": "expect_column_values_to_be_of_type",
                "kwargs": {"column": column.name, "type_": type_name},
            }
        )
        if column.not_null or column.name in table.primary_key:
            expectations.append(
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column.name}}
            )
        if column.accepted_values:
            expectations.append(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": column.name, "value_set": list(column.accepted_values)},
                }
            )
        if column.min_value is not None or column.max_value is not None:
            expectations.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {
                        "column": column.name,
                        "min_value": column.min_value,
                        "max_value": column.max_value,
                    },
                }
            )
        if column.data_type == "date":
            latest = (
                {"$PARAMETER": "latest_plausible_date"}
                if column.name not in EVENT_DATE_EXCLUSIONS
                else table.plausible_dates[1].isoformat()
            )
            expectations.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {
                        "column": column.name,
                        "min_value": table.plausible_dates[0].isoformat(),
                        "max_value": latest,
                    },
                }
            )
    if len(table.primary_key) == 1:
        expectations.append(
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": table.primary_key[0]}}
        )
    else:
        expectations.append(
            {
                "type": "expect_compound_columns_to_be_unique",
                "kwargs": {"column_list": list(table.primary_key)},
            }
        )
    for earlier, later in table.date_order:
        expectations.append(
            {
                "type": "expect_column_pair_values_a_to_be_greater_than_b",
                "kwargs": {
                    "column_A": later,
                    "column_B": earlier,
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
            }
        )
    key_of = {t.name: t.primary_key[0] for t in load_contract().values() if len(t.primary_key) == 1}
    for column, other in table.references:
        expectations.append(
            {
                "type": "unexpected_rows_expectation",
                "kwargs": {
                    "unexpected_rows_query": f"select * from {{batch}} where {column} is not null and not exists "  # noqa: S608 - the contract's own names
                    f"(select 1 from raw.{other} o where o.{key_of[other]} = subselect.{column})"
                },
                "meta": {"why": f"{column} names a loaded {other} row (else what it settles is unknown)"},
            }
        )
    for column, per, within, plus in table.totals_within:
        other, limit = within.split(".")
        allowance = ""
        if plus:
            extra_table, extra_column = plus.split(".")
            # the contract's own names, never data: no injection
            allowance = f" + coalesce((select sum(e.{extra_column}) from raw.{extra_table} e where e.{per} = b.{per}), 0)"  # noqa: S608
        expectations.append(
            {
                "type": "unexpected_rows_expectation",
                "kwargs": {
                    "unexpected_rows_query": (
                        f"select b.{per}, totals.total_{column}, o.{limit} as {other}_{limit} "  # noqa: S608
                        f"from (select distinct {per} from {{batch}}) b "
                        f"cross join lateral (select sum(x.{column}) as total_{column} from raw.{table.name} x "
                        f"where x.{per} = b.{per}) totals "
                        f"join raw.{other} o on o.{key_of[other]} = b.{per} "
                        f"where totals.total_{column} > o.{limit}{allowance} + {{policy:amount_tolerance}}"
                    )
                },
                "meta": {
                    "why": f"the {column} of a {per} adds up to no more than its {other}.{limit}"
                    + (f" and its {plus}" if plus else "")
                },
            }
        )
    return {
        "name": f"raw.{table.name}",
        "meta": {"generated_from": f"the raw contract, source {table.source}"},
        "expectations": expectations,
    }


def suite_path(settings: Settings, gate: str, table: str) -> Path:
    return settings.expectations_dir / gate / f"{table}.json"


def write_raw_suites(settings: Settings) -> list[Path]:
    paths = []
    for table in load_contract().values():
        path = suite_path(settings, "raw", table.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(contract_suite(table), indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


POLICY_PLACEHOLDER = re.compile(r"\{policy:(\w+)\}")  # a policy seed value inside a query


def read_suite(path: Path, build_schema: str | None = None, settings: Settings | None = None) -> dict:
    text = path.read_text(encoding="utf-8")
    if build_schema:
        text = text.replace(BUILD_SCHEMA_PLACEHOLDER, build_schema)
    if settings is not None:
        text = POLICY_PLACEHOLDER.sub(lambda m: repr(policy_value(settings, m[1])), text)
    return json.loads(text)
