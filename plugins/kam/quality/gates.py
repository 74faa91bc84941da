"""Great Expectations at every hand-over: the raw gate after loading, the marts gate
before publishing.

Suites are reviewed JSON files in expectations/: expectations/raw/<table>.json are
generated from the raw contract (`kam expectations generate`) and kept in step with it by a
test; expectations/marts/<mart>.json hold the accounting identities of each mart. Every
result is stored in audit.validation_results and rendered as GX data docs under
KAM_HOME/gx. A failed expectation fails the gate with the table, the expectation and a
sample of the offending values.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from psycopg import sql

from kam.constants import HISTORY_SCHEMA, RAW_SCHEMA, ROWS_UNDER_VALIDATION_SCHEMA
from kam.contract import load_contract
from kam.quality.suites import policy_value, read_suite, row_count_parameter, suite_path
from kam.settings import Settings
from kam.warehouse.connect import connect

log = logging.getLogger(__name__)
# GX logs about 850 INFO lines a gate (registering its own functions, parsing its models):
# nothing a reader of a run needs, and an orchestrator pays for every line it ships.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
DATA_DOCS_INDEX_RESULTS = 500  # about a week of daily runs, every suite of both gates
# GX's own files of each result (JSON and its data-docs page) are a working copy, kept this
# long; audit.validation_results keeps every result. GX lists them all on every build.
GX_RESULT_FILES_KEPT_DAYS = 14
GX_URL_VARIABLE = "KAM_GX_WAREHOUSE_URL"  # GX reads the URL from here: no password in its config files
# What the raw gate checks on the whole table; every other expectation checks values, and
# only on the rows of batches the gate has not passed yet.
UNVALIDATED_BATCHES = (
    "select batch_id from audit.batches where status in ('loaded', 'rejected') and raw_gate_run_id is null"
)
SHAPE_EXPECTATIONS = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_of_type",
        "expect_table_row_count_to_be_between",
    }
)


@dataclass(frozen=True)
class Scope:
    """What a gate validates of one table: the whole table; or (new_rows_only) its shape on
    the whole table and its values only on the rows of the batches no gate has passed yet;
    or (history_table) only the rows this dbt run added to that table in `snapshots`, which
    are what publishing adds to a history mart (a view over the published runs)."""

    batch_ids: tuple[int, ...] = ()  # the raw batches under validation, recorded with the results
    new_rows_only: bool = False
    history_table: str | None = None


@dataclass
class Failure:
    table: str
    expectation: str
    column: str | None
    observed: str
    sample: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.expectation} failed (observed {self.observed}; sample: {self.sample or '-'})"


@dataclass
class GateResult:
    gate: str
    expectations: int = 0
    failures: list[Failure] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    data_docs: str | None = None
    batch_ids: list[int] = field(default_factory=list)  # the raw batches whose values were checked
    skipped: str | None = None  # why GX did not run at all

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.skipped:
            return f"{self.gate} gate: {self.skipped}"
        return (
            f"{self.gate} gate: {self.expectations} expectations on {len(self.tables)} tables, "
            f"{len(self.failures)} failed"
        )


# -- running ---------------------------------------------------------------------------------


def prune_result_files(gx_root: Path, older_than: float) -> int:
    """Remove GX's result files (and their data-docs pages) last written before `older_than`
    (a Unix time), and the folders they leave empty; returns how many files went. Every data
    docs build lists all of them, so without this each gate grows slower with history."""
    removed = 0
    site = gx_root / "uncommitted" / "data_docs" / "local_site"  # the project's one docs site
    for results in (gx_root / "uncommitted" / "validations", site / "validations"):
        for path in [p for p in results.rglob("*") if p.is_file() and p.stat().st_mtime < older_than]:
            path.unlink()
            removed += 1
        for directory in sorted((p for p in results.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(directory.iterdir()):
                directory.rmdir()
    return removed


def _keeps_gates_fast(variables) -> bool:
    """Settle two defaults of GX's file project that slow every gate down, one more with every
    run kept; True when something changed (the caller saves and reopens the project)."""
    changed = False
    if variables.config_variables_file_path:
        # The project's one variable, the URL, comes from the environment. A variables file
        # named in the project makes GX re-read and parse it on every store look-up: hundreds
        # of times a gate, about 15 % of the marts gate.
        variables.config_variables_file_path = None
        changed = True
    sites = variables.data_docs_sites  # a copy: assigned back below
    for site in sites.values():
        # The docs index loads every stored validation result on every build (about 1.3 ms
        # each: a year of daily runs would add ~20 s to each gate). It lists the latest ones;
        # audit.validation_results keeps them all.
        index = site.setdefault("site_index_builder", {"class_name": "DefaultSiteIndexBuilder"})
        if index.get("validation_results_limit") != DATA_DOCS_INDEX_RESULTS:
            index["validation_results_limit"] = DATA_DOCS_INDEX_RESULTS
            variables.data_docs_sites = sites
            changed = True
    return changed


def _context(settings: Settings, url: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    os.environ[GX_URL_VARIABLE] = url
    project = str(settings.home / "gx")
    context = gx.get_context(mode="file", project_root_dir=project)
    if _keeps_gates_fast(context.variables):
        context.variables.save()
        context = gx.get_context(mode="file", project_root_dir=project)  # reopened as saved
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # The datasource names the URL variable, never the URL, so it is created once and kept:
    # re-creating it would rewrite the project's YAML and drop the assets stored definitions use.
    try:
        source = context.data_sources.get("warehouse")
    except KeyError:
        source = context.data_sources.add_sql(
            name="warehouse", connection_string="${" + GX_URL_VARIABLE + "}"
        )
    return context, source


def _batch_definition(source, schema: str, table: str, rows_under_validation: bool = False):
    """The whole table, or the copy of its rows under validation (the assets name tables
    that keep their names, so they never change)."""
    name = f"{schema}.{table}" if not rows_under_validation else f"{schema}.{table} rows under validation"
    if name in {asset.name for asset in source.assets}:
        asset = source.get_asset(name)
    else:
        asset = source.add_table_asset(
            name=name,
            table_name=table,
            schema_name=schema if not rows_under_validation else ROWS_UNDER_VALIDATION_SCHEMA,
        )
    try:
        return asset.get_batch_definition("whole_table")
    except KeyError:
        return asset.add_batch_definition_whole_table("whole_table")


@contextlib.contextmanager
def _rows_under_validation(
    url: str, scopes: dict[str, Scope], as_of: date, dbt_invocation_id: str | None
) -> Iterator[None]:
    """One gate at a time. The rows a scope validates (a raw table's batches under
    validation, a history table's rows of this run) are copied into
    ROWS_UNDER_VALIDATION_SCHEMA with one indexed read, so GX's queries (about 30 per
    table) read those rows rather than the whole table each time; dropped afterwards."""
    selections = {}
    for table, scope in scopes.items():
        if scope.new_rows_only:
            selections[table] = (
                sql.SQL("select * from {} where _batch_id = any(%s)").format(
                    sql.Identifier(RAW_SCHEMA, table)
                ),
                (list(scope.batch_ids),),
            )
        elif scope.history_table:
            selections[table] = (
                sql.SQL("select * from {} where as_of_date = %s and dbt_invocation_id = %s").format(
                    sql.Identifier(HISTORY_SCHEMA, scope.history_table)
                ),
                (as_of, dbt_invocation_id),
            )
    copies = {table: sql.Identifier(ROWS_UNDER_VALIDATION_SCHEMA, table) for table in selections}
    with connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext('kam.rows_under_validation'))")
        try:
            for table, (selection, parameters) in selections.items():
                conn.execute(sql.SQL("drop table if exists {}").format(copies[table]))
                conn.execute(
                    sql.SQL("create unlogged table {} as {}").format(copies[table], selection), parameters
                )
            yield
        finally:
            for copy in copies.values():
                conn.execute(sql.SQL("drop table if exists {}").format(copy))
            conn.execute("select pg_advisory_unlock(hashtext('kam.rows_under_validation'))")


def _validation(context, batch, suite_name: str, expectations: list[dict]):
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(
        name=suite_name,
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta")).to_domain_obj()
            for e in expectations
        ],
    )
    suite = context.suites.add_or_update(suite)
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )


def _sample(result: dict) -> str:
    values = result.get("partial_unexpected_list") or result.get("details", {}).get("unexpected_rows") or []
    return json.dumps(values[:5], default=str, ensure_ascii=False)[:500] if values else ""


def _unexpected_rows(url: str, query: str, relation: sql.Identifier) -> str:
    """A few of the rows an unexpected-rows query found, with their numbers (GX's summary
    counts them only)."""
    batch = sql.SQL("(select * from {}) as subselect").format(relation)
    with connect(url) as conn:
        statement = sql.SQL("select * from ({}) as found limit 5").format(
            sql.SQL(query.replace("{", "{{").replace("}", "}}").replace("{{batch}}", "{batch}")).format(
                batch=batch
            )
        )
        cursor = conn.execute(statement)
        names = [c.name for c in cursor.description]
        return json.dumps([dict(zip(names, row, strict=True)) for row in cursor.fetchall()], default=str)[
            :500
        ]


def _without_datasource_advice(gate: Callable[..., GateResult]) -> Callable[..., GateResult]:
    """GX advises its PostgreSQL datasource each time the generic one connects, into every
    task log. The gates use the generic one on purpose: the PostgreSQL one rejects a
    Unix-socket URL, which a deployment's warehouse may have."""

    @functools.wraps(gate)
    def run(*args, **kwargs) -> GateResult:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")
            return gate(*args, **kwargs)

    return run


@_without_datasource_advice
def run_gate(
    settings: Settings,
    url: str,
    gate: str,
    schema: str,
    scopes: dict[str, Scope],
    as_of: date,
    run_id: str,
    parameters: dict,
    dbt_invocation_id: str | None = None,
    progress: Callable[[str], None] = log.info,
) -> GateResult:
    """Validate each table in `scopes` with its suite in one GX checkpoint, store every
    result, build data docs.

    A new_rows_only scope (the raw gate, after a table's first load) checks the shape
    (columns, types, row count) on the whole table and the values only on the rows of the
    batches not yet validated: rows already in the table passed an earlier gate and have not
    changed since (a changed row belongs to the batch that changed it). A first load is
    checked whole, which is faster than through a query. A history_table scope (the marts
    gate on a history mart) checks the rows of this run only."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    context, source = _context(settings, url)
    definitions = []
    suite_tables: dict[str, str] = {}
    suite_relations: dict[str, sql.Identifier] = {}
    for table, scope in scopes.items():
        expectations = read_suite(suite_path(settings, gate, table), build_schema=schema, settings=settings)[
            "expectations"
        ]
        if scope.history_table:
            rows_of_run = _batch_definition(source, schema, table, rows_under_validation=True)
            parts = [(f"{gate}.{table}", rows_of_run, expectations)]
        elif scope.new_rows_only:
            parts = [
                (
                    f"{gate}.{table}",
                    _batch_definition(source, schema, table),
                    [e for e in expectations if e["type"] in SHAPE_EXPECTATIONS],
                ),
                (
                    f"{gate}.{table}.rows",
                    _batch_definition(source, schema, table, rows_under_validation=True),
                    [e for e in expectations if e["type"] not in SHAPE_EXPECTATIONS],
                ),
            ]
        else:
            parts = [(f"{gate}.{table}", _batch_definition(source, schema, table), expectations)]
        for suite_name, batch, chosen in parts:
            suite_tables[suite_name] = table
            suite_relations[suite_name] = sql.Identifier(
                ROWS_UNDER_VALIDATION_SCHEMA
                if suite_name.endswith(".rows") or scope.history_table
                else schema,
                table,
            )
            definitions.append(_validation(context, batch, suite_name, chosen))
    # No UpdateDataDocsAction: it rebuilds the docs index once per table; they are built once below.
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{gate}_gate",
            validation_definitions=definitions,
            result_format={"result_format": "SUMMARY"},
        )
    )
    result = GateResult(
        gate=gate, tables=list(scopes), batch_ids=sorted({b for s in scopes.values() for b in s.batch_ids})
    )
    under_validation = (
        f" (the rows of {len(result.batch_ids)} batch(es) not yet validated)" if result.batch_ids else ""
    )
    progress(f"{gate} gate: validating {len(scopes)} tables in {schema}{under_validation}")
    outcome = checkpoint.run(expectation_parameters=parameters, run_id=RunIdentifier(run_name=run_id))
    records = []
    for validation in outcome.run_results.values():
        table = suite_tables[validation.suite_name]
        for item in validation.results:
            config = item.expectation_config
            details = item.result or {}
            observed = details.get("observed_value", details.get("unexpected_count"))
            raised = [
                info.get("exception_message")
                for info in (item.exception_info or {}).values()
                if isinstance(info, dict) and info.get("raised_exception")
            ]
            if raised and not item.success:
                observed = "error: " + str(raised[0])[:300]
            sample = _sample(details)
            if not item.success and not raised and config.type == "unexpected_rows_expectation":
                sample = _unexpected_rows(
                    url, config.kwargs["unexpected_rows_query"], suite_relations[validation.suite_name]
                )
            failure = Failure(table, config.type, config.kwargs.get("column"), str(observed), sample)
            result.expectations += 1
            if not item.success:
                result.failures.append(failure)
            records.append(
                (
                    run_id,
                    gate,
                    as_of,
                    validation.suite_name,
                    table,
                    config.type,
                    config.kwargs.get("column"),
                    json.dumps(config.kwargs, default=str),
                    bool(item.success),
                    failure.observed,
                    details.get("unexpected_count"),
                    failure.sample,
                    list(scopes[table].batch_ids) or None,
                    dbt_invocation_id,
                )
            )
    with connect(url) as conn:
        conn.cursor().executemany(
            "insert into audit.validation_results (run_id, gate, as_of_date, suite, table_name, expectation_type,"
            " column_name, kwargs, success, observed_value, unexpected_count, unexpected_sample, batch_ids,"
            " dbt_invocation_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            records,
        )
    pruned = prune_result_files(Path(context.root_directory), time.time() - GX_RESULT_FILES_KEPT_DAYS * 86400)
    if pruned:
        progress(
            f"{gate} gate: removed {pruned} GX result files older than {GX_RESULT_FILES_KEPT_DAYS} days"
            " (audit.validation_results keeps every result)"
        )
    context.build_data_docs(
        resource_identifiers=[
            *outcome.run_results,
            *map(ExpectationSuiteIdentifier, sorted({v.suite_name for v in outcome.run_results.values()})),
        ]
    )
    docs = context.get_docs_sites_urls()
    result.data_docs = docs[0]["site_url"] if docs else None
    progress(result.summary() + (f"; data docs: {result.data_docs}" if result.data_docs else ""))
    for failure in result.failures[:20]:
        progress(f"  FAILED {failure}")
    return result


def raw_gate_parameters(settings: Settings, url: str, run_date: date) -> dict:
    """Row-count floors from each table's last successful validation, and the latest
    plausible event date (the run date plus the seed's tolerance)."""
    drop = policy_value(settings, "raw_max_volume_drop_share")
    tolerance = int(policy_value(settings, "raw_future_date_tolerance_days"))
    parameters: dict = {"latest_plausible_date": (run_date + timedelta(days=tolerance)).isoformat()}
    with connect(url) as conn:
        previous = dict(
            conn.execute("""
            select distinct on (table_name) table_name, observed_value::bigint
            from audit.validation_results
            where gate = 'raw' and expectation_type = 'expect_table_row_count_to_be_between' and success
            order by table_name, validated_at desc""").fetchall()
        )
    for table in load_contract():
        parameters[row_count_parameter(table)] = int(previous.get(table, 0) * (1 - drop))
    return parameters


def validate_raw(
    settings: Settings,
    url: str,
    as_of: date,
    run_id: str,
    run_date: date,
    progress: Callable[[str], None] = log.info,
) -> GateResult:
    """The raw gate on the tables that have batches no gate has passed yet (result.batch_ids;
    the caller marks them passed when the gate is ok). A table without one is as the last
    passing gate left it, so it is not validated again; with none, GX does not run."""
    with connect(url) as conn:
        pending = conn.execute(f"""
            select
                target.table_name,
                array_agg(b.batch_id order by b.batch_id) filter (where b.batch_id in ({UNVALIDATED_BATCHES})),
                bool_or(b.status = 'loaded' and b.raw_gate_run_id is not null) as has_checked_rows
            from audit.batches b, unnest(b.target_tables) as target(table_name)
            group by target.table_name""").fetchall()  # noqa: S608 - a constant
    scopes = {
        table: Scope(tuple(batches), new_rows_only=has_checked_rows)
        for table, batches, has_checked_rows in sorted(pending)
        if batches and table in load_contract()
    }
    if not scopes:
        result = GateResult(
            gate="raw", skipped="no batch is waiting for validation; raw is as the last gate left it"
        )
        progress(result.summary())
        return result
    with _rows_under_validation(url, scopes, as_of, None):
        return run_gate(
            settings,
            url,
            "raw",
            RAW_SCHEMA,
            scopes,
            as_of,
            run_id,
            raw_gate_parameters(settings, url, run_date),
            progress=progress,
        )


def mart_suites(settings: Settings) -> list[str]:
    return sorted(p.stem for p in (settings.expectations_dir / "marts").glob("*.json"))


def validate_marts(
    settings: Settings,
    url: str,
    build_schema: str,
    as_of: date,
    run_id: str,
    dbt_invocation_id: str | None,
    progress: Callable[[str], None] = log.info,
) -> GateResult:
    """The marts gate on the marts dbt built (a run's, with its invocation id), or on
    published marts (without one: a history mart is then validated whole)."""
    scopes = {
        mart: Scope(
            history_table=read_suite(suite_path(settings, "marts", mart)).get("meta", {}).get("history_table")
        )
        if dbt_invocation_id
        else Scope()
        for mart in mart_suites(settings)
    }
    with _rows_under_validation(url, scopes, as_of, dbt_invocation_id):
        return run_gate(
            settings,
            url,
            "marts",
            build_schema,
            scopes,
            as_of,
            run_id,
            {"as_of_date": as_of.isoformat()},
            dbt_invocation_id=dbt_invocation_id,
            progress=progress,
        )
