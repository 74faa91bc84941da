"""The SQL that turns landed text into contract rows: one set-based statement per raw
table that casts every value to its contract type, quarantines the rows that break the
contract (file, line, column, value, reason) and upserts the rest by key."""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from kam.contract import Column, Table
from kam.ingest.mappings import ISO_DATE_FORMAT, ColumnSource, NumberFormat, Target, date_pattern

QUARANTINED_VALUE_CHARS = 200
PLAIN_DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"


def landing_column(position: int) -> sql.Identifier:
    return sql.Identifier(f"c{position}")


def _source_text(source: ColumnSource, positions: dict[str, int], trim: bool = True) -> sql.Composable:
    """The column's value as text, NULL when blank; trimmed unless `trim` is off (a number
    or a date must be written as it is, whole)."""

    def file_value(name: str) -> sql.Composable:
        cell = landing_column(positions[name])
        if trim:
            return sql.SQL("nullif(btrim(l.{}), '')").format(cell)
        return sql.SQL("case when btrim(l.{c}) <> '' then l.{c} end").format(c=cell)

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
class ColumnSql:
    column: Column
    source: sql.Composable  # text as it came
    value: sql.Composable  # text ready to cast (dates reformatted to ISO, numbers to plain decimals)
    date_format: str | None
    number_pattern: str = PLAIN_DECIMAL
    number_notation: str = "digits with an optional sign and one decimal point; no spaces, exponents, hex, underscores, NaN or Infinity"


def _number_sql(text: sql.Composable, number_format: NumberFormat) -> tuple[sql.Composable, str, str]:
    """A declared number format: its pattern, and the text as a plain decimal."""
    decimal, thousands = re.escape(number_format.decimal), number_format.thousands
    grouped = f"|[0-9]{{1,3}}({re.escape(thousands)}[0-9]{{3}})+" if thousands else ""
    pattern = f"^[+-]?([0-9]+{grouped})({decimal}[0-9]+)?$"
    value = sql.SQL("replace({}, {}, '.')").format(
        sql.SQL("replace({}, {}, '')").format(text, sql.Literal(thousands)) if thousands else text,
        sql.Literal(number_format.decimal),
    )
    notation = (
        f"digits with an optional sign, {number_format.decimal!r} before decimals"
        + (f" and {thousands!r} between thousands" if thousands else "")
        + " as the mapping declares; no exponents, hex, underscores, NaN or Infinity"
    )
    return value, pattern, notation


def column_sql(column: Column, source: ColumnSource | None, positions: dict[str, int]) -> ColumnSql:
    text = (
        _source_text(source, positions, trim=column.data_type == "text") if source else sql.SQL("null::text")
    )
    if (
        source
        and source.number_format
        and (column.data_type == "integer" or column.data_type.startswith("numeric"))
    ):
        value, pattern, notation = _number_sql(text, source.number_format)
        return ColumnSql(column, text, value, None, pattern, notation)
    if column.data_type != "date":
        return ColumnSql(column, text, text, None)
    date_format = (source.date_format if source else None) or ISO_DATE_FORMAT
    regex, replacement = date_pattern(date_format)
    value = sql.SQL("case when {src} ~ {rx} then regexp_replace({src}, {rx}, {rep}) end").format(
        src=text, rx=sql.Literal(regex), rep=sql.Literal(replacement)
    )
    return ColumnSql(column, text, value, date_format)


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


def column_checks(
    c: ColumnSql, s: sql.Identifier, v: sql.Identifier, t: sql.Identifier, table: Table, required: bool
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
    if col.data_type == "integer" or col.data_type.startswith("numeric"):
        scale = int(col.data_type.split(",")[1].rstrip(")")) if "," in col.data_type else 0
        checks.append(
            _Problem(
                col,
                sql.SQL("{} !~ {}").format(s, sql.Literal(c.number_pattern)),
                s,
                f"not a plain decimal number ({c.number_notation})",
            )
        )
        checks.append(
            _Problem(
                col,
                sql.SQL("{} ~ {}").format(v, sql.Literal(f"\\.[0-9]{{{scale}}}[0-9]*[1-9]")),
                s,
                f"more decimals than {col.data_type} keeps ({scale}): it would be rounded",
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


def _checked_rows(target: Target, header: list[str]) -> tuple[sql.Composed, dict]:
    """The CTEs every load statement starts with: the landing rows staged (text as it came,
    text ready to cast), typed, and checked against the contract (`problems`)."""
    table = target.table
    positions = {name: i + 1 for i, name in enumerate(header)}
    cols = [column_sql(col, target.columns.get(col.name), positions) for col in table.columns]
    src = [sql.Identifier(f"s_{c.column.name}") for c in cols]
    val = [sql.Identifier(f"v_{c.column.name}") for c in cols]
    typed = [sql.Identifier(c.column.name) for c in cols]
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
        checks += [problem.as_jsonb() for problem in column_checks(c, s, v, t, table, required)]
    ctes = sql.SQL("""
with staged as materialized (
    select l._record, {staged} from pg_temp.landing l
), typed as materialized (
    select _record, {casts}, {src_list}, {val_list} from staged
), checked as materialized (
    select *, array_remove(array[{checks}]::jsonb[], null) as problems from typed
)""").format(
        staged=staged,
        casts=casts,
        src_list=sql.SQL(", ").join(src),
        val_list=sql.SQL(", ").join(val),
        checks=sql.SQL(", ").join(checks),
    )
    return ctes, {
        "typed": typed,
        "typed_list": sql.SQL(", ").join(typed),
        "raw": sql.Identifier("raw", table.name),
    }


def clean_insert_statement(target: Target, header: list[str], batch_id: int) -> sql.Composed:
    """The fast way in for a clean file: insert the landing rows that break no rule, all of
    them when the file is clean. Returns one row: inserted, landed. Fewer inserted than
    landed, or a key that is already there (an IntegrityError), means the file needs the
    full statement (target_statement) and its quarantine."""
    ctes, names = _checked_rows(target, header)
    return sql.SQL("""{ctes}, inserted as (
    insert into {raw} ({typed_list}, _batch_id)
    select {typed_list}, {batch} from checked where cardinality(problems) = 0
    returning 1
)
select (select count(*) from inserted), (select count(*) from checked)""").format(
        ctes=ctes, raw=names["raw"], typed_list=names["typed_list"], batch=sql.Literal(batch_id)
    )


def row_key(parts: list[sql.Composable]) -> sql.Composed:
    """A row's key as one text ('/' between its parts), as the audit tables keep it."""
    return sql.SQL(" || '/' || ").join(sql.SQL("{}::text").format(part) for part in parts)


def row_key_text(table: Table, alias: str | None = None) -> sql.Composed:
    return row_key([sql.Identifier(alias, k) if alias else sql.Identifier(k) for k in table.primary_key])


def target_statement(
    target: Target, header: list[str], batch_id: int, file_name: str, header_line: int
) -> sql.Composed:
    """One statement: validate, quarantine and upsert the landing rows for one raw table.
    Returns one row: produced, loaded, merged, quarantined."""
    table = target.table
    ctes, names = _checked_rows(target, header)
    typed, typed_list = names["typed"], names["typed_list"]
    key = [sql.Identifier(k) for k in table.primary_key]
    row_hash = sql.SQL("md5(row({})::text)").format(typed_list) if target.distinct else sql.SQL("''::text")
    key_text = row_key_text(table)
    header_keys = sql.Literal(header)
    header_values = sql.SQL(", ").join(
        sql.SQL("l.{}").format(landing_column(i + 1)) for i in range(len(header))
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
    return sql.SQL("""{ctes}, ranked as (
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
), shared as (
    insert into audit.shared_rows (table_name, row_key, batch_id, holder_batch_id)
    select distinct {table_name}, {raw_key_text}, {batch}, r._batch_id
    from {raw} r join verdict v on ({raw_key}) = ({verdict_key})
    where v.is_loaded and r._batch_id <> {batch}
    on conflict do nothing
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
        ctes=ctes,
        row_hash=row_hash,
        key=sql.SQL(", ").join(key),
        distinct=sql.Literal(target.distinct),
        key_names=sql.Literal(",".join(table.primary_key)),
        key_text=key_text,
        raw_key_text=row_key_text(table, "r"),
        raw_key=sql.SQL(", ").join(sql.SQL("r.{}").format(k) for k in key),
        verdict_key=sql.SQL(", ").join(sql.SQL("v.{}").format(k) for k in key),
        hl=sql.Literal(header_line),
        batch=sql.Literal(batch_id),
        file=sql.Literal(file_name),
        table_name=sql.Literal(table.name),
        header_keys=header_keys,
        header_values=header_values,
        raw=names["raw"],
        typed_list=typed_list,
        on_conflict=on_conflict,
    )
