"""`kam-dev bench --scale N`: measure the pipeline against its limits on a fresh instance.

Stages (seconds, rows, rows/s, peak memory of the pipeline's own processes): generate,
load, raw gate, dbt build (per model), marts gate, publish, alerts, then the next day's run:
the generated data's last day is held back from the full run and arrives as that day's
files, as a daily feed brings them; then, with a year of published history added, the day
after that.
References, each printed as a ratio: psql \\copy of the same files, kam_daily through
Airflow vs the same steps bare (run before and after it: the machine's speed drifts), the
next day vs the full run, the next day's fixed cost (from its times at scale N and N/10)
vs the full run, the day with a year of history vs the next day, the dbt build vs one
aggregate scan of the largest raw table, and scale N vs N/10. Figures also go to
KAM_HOME/bench/<run>/bench.json. A command, not a test: a smoke run of it is in the tests.
"""

from __future__ import annotations

import contextlib
import csv
import json
import resource
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from psycopg import sql

from kam import pipeline, transform
from kam.constants import HISTORY_SCHEMA
from kam.contract import Table, load_contract
from kam.ingest.files import expand_paths
from kam.local.embedded_server import EmbeddedServer, pg_bin
from kam.local.mail_catcher import MailCatcher
from kam.quality.suites import EVENT_DATE_EXCLUSIONS
from kam.settings import Settings
from kam.warehouse.bootstrap import bootstrap
from kam.warehouse.connect import connect
from kam.warehouse.publish import history_tables
from kam.warehouse.roles import ensure_bi_role
from tools.synthetic import generate

NEXT_DAY = date(2026, 6, 30)  # the generated data's last day: its rows arrive for the next day's run
FULL_RUN_DAY = NEXT_DAY - timedelta(days=1)
HISTORY_DAYS = 365  # published days added before the full run's, for a day run on a year of history
A_YEAR_ON = NEXT_DAY + timedelta(days=1)
HISTORY_STAGES = ("dbt build", "marts gate", "publish")  # the stages that read history
SEED = 42
KAM_DAILY_STAGES = ("load", "raw gate", "dbt build", "marts gate", "publish")  # kam_alerts sends
PIPELINE_STAGES = (*KAM_DAILY_STAGES, "alerts")
BARE_AGAIN = "kam_daily steps bare, again"
COPY_REFERENCE = "reference: psql \\copy"
COPY_BEFORE = "reference: psql \\copy, before the load"
NEXT_DAY_STAGE = "next day (bare)"


def peak_memory_mb() -> float:
    """Peak resident memory of this process and of its finished children (dbt, airflow)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


@dataclass
class Stage:
    name: str
    seconds: float
    rows: int | None = None
    peak_memory_mb: float = 0.0

    @property
    def rows_per_second(self) -> float | None:
        return round(self.rows / self.seconds) if self.rows and self.seconds else None


@dataclass
class Measurement:
    scale: float
    stages: list[Stage] = field(default_factory=list)
    models: dict[str, float] = field(default_factory=dict)
    next_day: Measurement | None = None  # the following as-of date's run (full scale only)
    a_year_on: Measurement | None = None  # the day after, with a year of published history

    def timed(self, name: str, work: Callable[[], int | None]) -> Stage:
        started = time.monotonic()
        rows = work()
        stage = Stage(name, round(time.monotonic() - started, 2), rows, peak_memory_mb())
        self.stages.append(stage)
        return stage

    def seconds(self, *names: str) -> float:
        return round(sum(s.seconds for s in self.stages if s.name in names), 2)


def _admin(server_state):
    url = server_state.url(role="postgres", password=server_state.superuser_password, database="postgres")
    return connect(url, autocommit=True)


def _database(server_state, name: str) -> str:
    with _admin(server_state) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {} owner kam").format(sql.Identifier(name)))
    url = server_state.url(database=name)
    bootstrap(url)
    return url


def _settled(server_state, carried_over: str | None = None) -> None:
    """Write out what earlier measurements left dirty, so that no measurement pays for the
    checkpoint of the one before it. A warehouse `carried_over` to a later day is vacuumed
    and analyzed first, as autovacuum leaves it long before that day's run; otherwise
    autovacuum works on the last run's tables during the measured one."""
    if carried_over:
        with connect(carried_over, autocommit=True) as conn:
            conn.execute("vacuum (analyze)")
    with _admin(server_state) as conn:
        conn.execute("checkpoint")


@contextlib.contextmanager
def _empty_raw_copies(url: str) -> Iterator[None]:
    """Empty copies of the raw tables in schema bench_copy, dropped afterwards."""
    with connect(url) as conn:
        conn.execute("drop schema if exists bench_copy cascade; create schema bench_copy")
        for table in load_contract().values():
            conn.execute(
                sql.SQL("create table {} as select {} from {} with no data").format(
                    sql.Identifier("bench_copy", table.name),
                    sql.SQL(", ").join(map(sql.Identifier, table.column_names)),
                    sql.Identifier("raw", table.name),
                )
            )
    try:
        yield
    finally:
        with connect(url) as conn:
            conn.execute("drop schema bench_copy cascade")


def _raw_copy_reference(url: str, landing: Path) -> int:
    """psql \\copy of every landing file into its empty copy of the raw table."""
    rows = 0
    for path in expand_paths([landing]):
        table = load_contract()[path.parent.name]
        command = f"\\copy bench_copy.{table.name} ({', '.join(table.column_names)}) from '{path}' csv header"
        output = subprocess.run(
            [pg_bin("psql"), url, "-c", command], capture_output=True, text=True, check=True
        )
        rows += int(output.stdout.strip().split()[-1])
    return rows


def _copy_reference(measure: Measurement, server_state, url: str, landing: Path, name: str) -> Stage:
    with _empty_raw_copies(url):
        _settled(server_state)
        return measure.timed(name, lambda: _raw_copy_reference(url, landing))


def _event_date_column(table: Table) -> str | None:
    return next(
        (c.name for c in table.columns if c.data_type == "date" and c.name not in EVENT_DATE_EXCLUSIONS), None
    )


def hold_back_day(landing: Path, day: date, into: Path) -> int:
    """Move `day`'s rows out of the landing files into files of their own under `into` (same
    layout), as a daily feed delivers them: the full run is then the day before, and the
    next day's run loads that day's files. A table without an event date goes with the
    first of its columns that keys a dated table (invoice lines with their invoice).
    Returns the rows held back."""
    tables = load_contract()
    dated = {name: column for name, table in tables.items() if (column := _event_date_column(table))}
    keys = {
        table.primary_key[0]: name
        for name, table in tables.items()
        if name in dated and len(table.primary_key) == 1
    }
    held_keys: dict[str, set[str]] = {}
    held = 0
    # dated tables first: their held keys decide their dependants' rows
    for path in sorted(expand_paths([landing]), key=lambda p: p.parent.name not in dated):
        name = path.parent.name
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            if name in dated:
                position, wanted = header.index(dated[name]), {day.isoformat()}
            else:
                parent = next((c for c in header if c in keys and keys[c] != name), None)
                if parent is None:
                    continue
                position, wanted = header.index(parent), held_keys.get(keys[parent], set())
            kept_path = path.with_suffix(".kept")
            day_path = into / path.relative_to(landing).parent / f"{name}_{day.isoformat()}.csv"
            day_path.parent.mkdir(parents=True, exist_ok=True)
            with (
                open(kept_path, "w", newline="", encoding="utf-8") as kept,
                open(day_path, "w", newline="", encoding="utf-8") as day_rows,
            ):
                kept_writer, day_writer = csv.writer(kept), csv.writer(day_rows)
                kept_writer.writerow(header)
                day_writer.writerow(header)
                key_position = header.index(tables[name].primary_key[0])
                keys_of_day = held_keys.setdefault(name, set())
                rows_of_day = 0
                for row in reader:
                    if row[position] in wanted:
                        day_writer.writerow(row)
                        keys_of_day.add(row[key_position])
                        rows_of_day += 1
                    else:
                        kept_writer.writerow(row)
        if rows_of_day:
            kept_path.replace(path)
            held += rows_of_day
        else:  # nothing that day: no file
            kept_path.unlink()
            day_path.unlink()
    return held


def _bare_pipeline(
    measure: Measurement,
    url: str,
    settings: Settings,
    day: date,
    run_id: str,
    progress: Callable[[str], None],
    alerts: bool = True,
) -> None:
    """The kam_daily steps without Airflow, then (with `alerts`) kam_alerts' sending."""
    quiet = lambda message: None  # noqa: E731 - the stage table is the output
    loads: dict = {}
    measure.timed(
        "load",
        lambda: (
            loads.update(pipeline.load_files(url, settings, pipeline.landing_files(settings), quiet))
            or loads["rows_landed"]
        ),
    )
    measure.timed(
        "raw gate",
        lambda: pipeline.validate_raw(url, settings, day, run_id, day, progress=quiet)["expectations"],
    )
    build: dict = {}

    def dbt_build() -> int:
        build.update(pipeline.build_marts(url, settings, day, progress=quiet, run_id=run_id))
        measure.models = {
            k.split(".")[-1]: v
            for k, v in transform.read_run_results(settings.dbt_target_dir).timings.items()
            if k.startswith("model.")
        }
        return sum(n for key, n in build["counts"].items() if key.startswith("model"))

    measure.timed("dbt build", dbt_build)
    measure.timed(
        "marts gate",
        lambda: (
            pipeline.validate_marts(url, settings, day, run_id, build["invocation_id"], progress=quiet)
            and None
        ),
    )
    measure.timed(
        "publish", lambda: pipeline.publish_marts(url, day, run_id, build["invocation_id"]) and None
    )
    if alerts:
        with MailCatcher(settings.outbox_dir, own_process=True) as catcher:
            from kam.alerts.delivery import Smtp

            measure.timed(
                "alerts",
                lambda: pipeline.send_alerts(
                    url, settings, day, Smtp("127.0.0.1", catcher.port), progress=quiet
                )["sent"],
            )
    stages = PIPELINE_STAGES if alerts else KAM_DAILY_STAGES
    progress(f"  scale {measure.scale}, {day}: bare {', '.join(stages)} {measure.seconds(*stages)}s")


def measure_scale(
    scale: float, root: Path, server_state, progress: Callable[[str], None], references: bool
) -> tuple[Measurement, dict]:
    settings = Settings(
        home=root / f"scale-{scale:g}",
        project_dir=Path(transform.__file__).resolve().parents[2],
        warehouse_url=None,
        warehouse_port=None,
    )
    measure = Measurement(scale)
    counts: dict = {}
    measure.timed(
        "generate",
        lambda: sum(generate(settings.landing_dir, scale, SEED, NEXT_DAY, progress=lambda m: None).values()),
    )
    next_day_files = settings.home / "next-day-landing"
    counts["next_day_rows"] = hold_back_day(settings.landing_dir, NEXT_DAY, next_day_files)
    url = _database(server_state, f"bench_{str(scale).replace('.', '_')}")
    settings = replace(settings, warehouse_url=url)
    ensure_bi_role(url, settings)
    if references:  # before the load and after it, as the machine's speed drifts
        _copy_reference(measure, server_state, url, settings.landing_dir, COPY_BEFORE)
    _settled(server_state)
    _bare_pipeline(measure, url, settings, FULL_RUN_DAY, "bench-full", progress)
    if not references:
        _next_day(measure, server_state, url, settings, next_day_files, progress)
        return measure, counts
    largest = max(load_contract(), key=lambda t: _count(url, t))
    _settled(server_state)
    scan = measure.timed("scan largest raw table", lambda: _scan(url, largest))
    copy = _copy_reference(measure, server_state, url, settings.landing_dir, COPY_REFERENCE)
    airflow_settings = _beside(server_state, settings, "airflow-run")
    airflow_url = airflow_settings.warehouse_url
    from kam.local.runner import airflow_env, ensure_airflow_db, run_dag

    # Airflow's metadata database is made once per installation, not by a run
    ensure_airflow_db(airflow_settings, airflow_env(airflow_settings, airflow_url), lambda m: None)
    _settled(server_state)
    measure.timed(
        "kam_daily (Airflow)",
        lambda: (
            run_dag("kam_daily", FULL_RUN_DAY, airflow_settings, airflow_url, progress=lambda m: None)
            and None
        ),
    )
    # The machine's speed drifts by several per cent over minutes, so the bare steps run
    # again after Airflow, on a warehouse of their own: Airflow is compared with their mean.
    again_settings = _beside(server_state, settings, "bare-again")
    again = Measurement(scale)
    _settled(server_state)
    _bare_pipeline(
        again,
        again_settings.warehouse_url,
        again_settings,
        FULL_RUN_DAY,
        "bench-full-again",
        progress,
        alerts=False,
    )
    measure.stages.append(Stage(BARE_AGAIN, again.seconds(*KAM_DAILY_STAGES), None, peak_memory_mb()))
    _next_day(measure, server_state, url, settings, next_day_files, progress)
    # A year of daily runs on: the same warehouse with a year of published history before it.
    history = measure.timed(
        f"history: {HISTORY_DAYS} published days added",
        lambda: add_published_history(url, FULL_RUN_DAY, HISTORY_DAYS),
    )
    a_year_on = Measurement(scale)
    _settled(server_state, carried_over=url)
    _bare_pipeline(a_year_on, url, settings, A_YEAR_ON, "bench-a-year-on", progress, alerts=False)
    measure.a_year_on = a_year_on
    counts["history_rows_added"] = history.rows
    counts.update({"largest_raw_table": largest, "scan_rows": scan.rows, "copy_rows": copy.rows})
    return measure, counts


def _next_day(
    measure: Measurement,
    server_state,
    url: str,
    settings: Settings,
    next_day_files: Path,
    progress: Callable[[str], None],
) -> None:
    """The next day: that day's files land beside the ones loaded already, and the same steps
    run for it on the same warehouse, its history kept."""
    for path in expand_paths([next_day_files]):
        target = settings.landing_dir / path.relative_to(next_day_files)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
    next_day = Measurement(measure.scale)
    _settled(server_state, carried_over=url)
    _bare_pipeline(next_day, url, settings, NEXT_DAY, "bench-next-day", progress)
    measure.stages.append(Stage(NEXT_DAY_STAGE, next_day.seconds(*PIPELINE_STAGES), None, peak_memory_mb()))
    measure.next_day = next_day


def add_published_history(url: str, day: date, days: int) -> int:
    """`days` published days of history before `day`, as a year of daily runs leaves them:
    each history table's rows of `day`'s published run, copied to each earlier date under a
    publication of its own. Returns the rows added."""
    added = 0
    with connect(url) as conn:
        (invocation,) = conn.execute(
            "select dbt_invocation_id from audit.publications where as_of_date = %s"
            " order by publication_id desc limit 1",
            (day,),
        ).fetchone()
        past = [day - timedelta(days=n) for n in range(days, 0, -1)]
        conn.cursor().executemany(
            "insert into audit.publications (as_of_date, run_id, dbt_invocation_id, is_current_marts)"
            " values (%s, 'bench-history', 'bench-history-' || %s, false)",
            [(d, d) for d in past],
        )
        copied = {  # what differs from `day`'s rows; every other column is copied as it is
            "as_of_date": sql.SQL("past.as_of_date"),
            "dbt_invocation_id": sql.SQL("'bench-history-' || past.as_of_date"),
        }
        for table in history_tables(conn):
            columns = [
                name
                for (name,) in conn.execute(
                    "select column_name from information_schema.columns where table_schema = %s"
                    " and table_name = %s order by ordinal_position",
                    (HISTORY_SCHEMA, table),
                )
            ]
            added += conn.execute(
                sql.SQL(
                    "insert into {table} ({columns}) select {values} from {table} as history"
                    " cross join unnest(%s::date[]) as past (as_of_date)"
                    " where history.as_of_date = %s and history.dbt_invocation_id = %s"
                ).format(
                    table=sql.Identifier(HISTORY_SCHEMA, table),
                    columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
                    values=sql.SQL(", ").join(
                        copied.get(c, sql.SQL("history.{}").format(sql.Identifier(c))) for c in columns
                    ),
                ),
                (past, day, invocation),
            ).rowcount
    return added


def _beside(server_state, settings: Settings, name: str) -> Settings:
    """A second instance on a fresh database of the same server, reading the same landing files."""
    database = f"bench_{name}_{settings.home.name}".replace("-", "_").replace(".", "_")
    beside = replace(settings, warehouse_url=_database(server_state, database), home=settings.home / name)
    beside.home.mkdir(parents=True, exist_ok=True)
    (beside.home / "landing").symlink_to(settings.landing_dir, target_is_directory=True)
    return beside


def _count(url: str, table: str) -> int:
    with connect(url) as conn:
        return conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier("raw", table))
        ).fetchone()[0]


def _scan(url: str, table: str) -> int:
    with connect(url) as conn:
        columns = [c.name for c in load_contract()[table].columns if c.data_type.startswith("numeric")]
        sums = (
            sql.SQL(", ").join(sql.SQL("sum({})").format(sql.Identifier(c)) for c in columns)
            if columns
            else sql.SQL("1")
        )
        conn.execute(sql.SQL("select count(*), {} from {}").format(sums, sql.Identifier("raw", table)))
        return _count(url, table)


def slowest(models: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(models.items(), key=lambda item: -item[1])[:10]


def fixed_cost(stage: str, larger: Measurement, smaller: Measurement) -> float:
    """What `stage` costs with no data: the line through its times at the two measurements'
    scales (seconds = fixed + per-scale * scale), at scale 0."""
    per_scale = (larger.seconds(stage) - smaller.seconds(stage)) / (larger.scale - smaller.scale)
    return round(smaller.seconds(stage) - per_scale * smaller.scale, 2)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def run_bench(settings: Settings, scale: float, progress: Callable[[str], None] = print) -> dict:
    root = settings.home / "bench" / time.strftime("%Y%m%dT%H%M%S")
    server = EmbeddedServer(root / "warehouse")
    state = server.start()
    try:
        progress(
            f"bench: scale {scale} (and {scale / 10:g} for growth and the next day's fixed cost) in {root}"
        )
        full, facts = measure_scale(scale, root, state, progress, references=True)
        small, _ = measure_scale(scale / 10, root, state, progress, references=False)
    finally:
        server.stop()
    facts["next_day_fixed_seconds"] = fixed_cost(NEXT_DAY_STAGE, full, small)
    bare = full.seconds(*PIPELINE_STAGES)
    load = next(s for s in full.stages if s.name == "load")
    copy_seconds = full.seconds(COPY_REFERENCE, COPY_BEFORE) / 2
    report = {
        "scale": scale,
        "stages": [asdict(s) | {"rows_per_second": s.rows_per_second} for s in full.stages],
        "next_day_stages": [asdict(s) for s in full.next_day.stages],
        "slowest_models": slowest(full.models),
        "next_day_slowest_models": slowest(full.next_day.models),
        "next_day_at_a_tenth_stages": [asdict(s) for s in small.next_day.stages],
        "a_year_on_stages": [asdict(s) for s in full.a_year_on.stages],
        "a_year_on_slowest_models": slowest(full.a_year_on.models),
        "ratios": {
            "load throughput / raw \\copy throughput, its mean before and after (target >= 0.7)": ratio(
                (load.rows or 0) / load.seconds, (facts["copy_rows"] or 0) / copy_seconds
            ),
            "kam_daily / the same steps bare, their mean before and after (target <= 1.25)": ratio(
                full.seconds("kam_daily (Airflow)"),
                (full.seconds(*KAM_DAILY_STAGES) + full.seconds(BARE_AGAIN)) / 2,
            ),
            "the same steps bare, after Airflow / before (the machine's drift)": ratio(
                full.seconds(BARE_AGAIN), full.seconds(*KAM_DAILY_STAGES)
            ),
            "next day / full run (target <= 0.1)": ratio(full.seconds(NEXT_DAY_STAGE), bare),
            "next day's fixed cost / full run (the lowest next day / full run these steps reach)": ratio(
                facts["next_day_fixed_seconds"], bare
            ),
            f"{' + '.join(HISTORY_STAGES)}: with {HISTORY_DAYS} days of history / with 1 (target: flat)": ratio(
                full.a_year_on.seconds(*HISTORY_STAGES), full.next_day.seconds(*HISTORY_STAGES)
            ),
            "dbt build / one aggregate scan of the largest raw table": ratio(
                full.seconds("dbt build"), full.seconds("scan largest raw table")
            ),
            f"time scale {scale} / scale {scale / 10:g} (target <= 12 for 10x)": ratio(
                bare, small.seconds(*PIPELINE_STAGES)
            ),
            f"peak memory scale {scale} / scale {scale / 10:g}": ratio(
                max(s.peak_memory_mb for s in full.stages), max(s.peak_memory_mb for s in small.stages)
            ),
        },
        "peak_memory_mb (target <= 1024)": max(s.peak_memory_mb for s in full.stages),
        **facts,
    }
    (root / "bench.json").write_text(json.dumps(report, indent=2, default=str))
    progress(format_report(report))
    progress(f"figures: {root / 'bench.json'}")
    return report


def format_report(report: dict) -> str:
    lines = [f"{'stage':<28}{'seconds':>10}{'rows':>12}{'rows/s':>10}{'peak MB':>10}"]
    for stage in report["stages"]:
        lines.append(
            f"{stage['name']:<28}{stage['seconds']:>10}{stage['rows'] or '':>12}"
            f"{stage['rows_per_second'] or '':>10}{stage['peak_memory_mb']:>10}"
        )
    for day, key in (
        ("next day", "next_day_stages"),
        (f"next day at scale {report['scale'] / 10:g}", "next_day_at_a_tenth_stages"),
        ("a year on", "a_year_on_stages"),
    ):
        lines.append(f"{day}: " + ", ".join(f"{s['name']} {s['seconds']}s" for s in report[key]))
    lines.append("")
    lines += [f"{name}: {value}" for name, value in report["ratios"].items()]
    for day, key in (
        ("", "slowest_models"),
        ("next day's ", "next_day_slowest_models"),
        ("a year on, ", "a_year_on_slowest_models"),
    ):
        lines.append(f"{day}slowest models: " + ", ".join(f"{m} {s:.2f}s" for m, s in report[key][:3]))
    return "\n".join(lines)
