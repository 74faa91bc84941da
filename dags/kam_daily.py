"""
### kam_daily — the nightly warehouse build

For the data interval's day (the as-of date) it:

1. **extract** — pulls each database source (`KAM_DATABASE_SOURCES`, e.g. `erpnext=kam_erp`:
   a mapping in `mappings/` and an Airflow connection) into `raw`: only the rows changed since
   the last run, one audited batch per table, deletions in the source removed and recorded in
   `audit.source_deletions`; then lists the files waiting in `KAM_HOME/landing`. Trigger with
   `{"full_refresh": true}` to extract everything and reconcile every table's keys;
2. **load_raw** — COPYs the files into `raw`, one audited batch per file; bad rows go to
   `audit.quarantine` (file or source table, line, column, reason), unchanged files are skipped;
3. **validate_raw** — the raw gate: a GX suite per raw table (expectations/raw); a failure
   marks the batch rejected and stops the run;
4. **dbt_build** — builds staging, intermediate and the marts into the build schema and
   runs their dbt tests (the raw contract's tests are the raw gate's; unit tests run in CI);
5. **validate_marts** — the marts gate: a GX suite per mart (expectations/marts) with the
   accounting identities; a failure emails data engineering and publishes nothing;
6. **publish** — swaps the build schema in as `marts` in one transaction and emits the
   `kam_marts` asset, which schedules `kam_alerts`. A day older than the current marts (a
   backfill) publishes its history only;
7. **restate_later_day** — after a backfill, builds the next published day again, since what
   that day says changed (tiers, grades, since when) was computed without this one.

Any as-of date from the earliest data on can run; a date after today is refused.

Every task is idempotent: rerunning a day changes nothing; a failure before publish leaves
yesterday's marts in place. The warehouse is the `kam_warehouse` Airflow connection.
Run one day by hand: `kam run --date YYYY-MM-DD`.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from kam.dag_support import (
    MARTS_ASSET,
    RETRY_DELAY,
    SMTP_CONN_ID,
    START_DATE,
    WAREHOUSE_CONN_ID,
    fail_fast_on_bad_data,
)


def _as_of_date():
    from kam.pipeline import as_of_date_from_context

    return as_of_date_from_context(get_current_context())


@dag(
    dag_id="kam_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["kam", "warehouse", "daily"],
    doc_md=__doc__,
    params={
        "full_refresh": Param(
            False, type="boolean", description="extract every row of the database sources and reconcile keys"
        )
    },
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": RETRY_DELAY},
)
def kam_daily():
    @task
    @fail_fast_on_bad_data
    def extract() -> dict:
        from kam.pipeline import (
            extract_databases,
            landing_files,
            load_counts,
            refuse_future_date,
            require_data,
            url_from_connection,
        )
        from kam.settings import load_settings

        settings = load_settings()
        refuse_future_date(_as_of_date(), settings)
        url = url_from_connection(WAREHOUSE_CONN_ID)
        files = landing_files(settings)
        require_data(url, settings, files)
        database = extract_databases(
            url,
            settings,
            _as_of_date(),
            {mapping: url_from_connection(conn_id) for mapping, conn_id in settings.database_sources},
            full_refresh=bool(get_current_context()["params"]["full_refresh"]),
        )
        return {"database": load_counts(database), "files": files}

    @task
    @fail_fast_on_bad_data
    def load_raw(extracted: dict) -> dict:
        from kam.pipeline import combine_summaries, load_counts, load_files, url_from_connection
        from kam.settings import load_settings

        files = load_files(url_from_connection(WAREHOUSE_CONN_ID), load_settings(), extracted["files"])
        return combine_summaries(extracted["database"], load_counts(files))

    @task
    @fail_fast_on_bad_data
    def validate_raw(load_summary: dict) -> dict:  # after the load; the batches to check are in audit
        import pendulum as clock

        from kam.pipeline import url_from_connection
        from kam.pipeline import validate_raw as raw_gate
        from kam.settings import load_settings

        context = get_current_context()
        # Raw data may legitimately hold dates up to the day the run happens, whatever the as-of date.
        return raw_gate(
            url_from_connection(WAREHOUSE_CONN_ID),
            load_settings(),
            _as_of_date(),
            context["run_id"],
            clock.now("UTC").date(),
        )

    @task
    @fail_fast_on_bad_data
    def dbt_build(raw_gate: dict) -> dict:
        from kam.pipeline import build_marts, url_from_connection
        from kam.settings import load_settings

        run_id = get_current_context()["run_id"]
        return build_marts(
            url_from_connection(WAREHOUSE_CONN_ID), load_settings(), _as_of_date(), run_id=run_id
        )

    @task
    @fail_fast_on_bad_data
    def validate_marts(build_summary: dict) -> dict:
        from kam.pipeline import smtp_from_connection, url_from_connection
        from kam.pipeline import validate_marts as marts_gate
        from kam.settings import load_settings

        context = get_current_context()
        marts_gate(
            url_from_connection(WAREHOUSE_CONN_ID),
            load_settings(),
            _as_of_date(),
            context["run_id"],
            build_summary["invocation_id"],
            smtp_from_connection(SMTP_CONN_ID),
        )
        return build_summary

    @task(outlets=[MARTS_ASSET])
    def publish(build_summary: dict) -> dict:
        from kam.pipeline import publish_marts, url_from_connection

        context = get_current_context()
        published = publish_marts(
            url_from_connection(WAREHOUSE_CONN_ID),
            _as_of_date(),
            context["run_id"],
            build_summary["invocation_id"],
        )
        context["outlet_events"][MARTS_ASSET].extra = {"as_of_date": published["as_of_date"]}
        return published

    @task
    @fail_fast_on_bad_data
    def restate_later_day(published: dict) -> dict:
        """A backfill's next published day said what changed since *its* previous day, which
        this run has just replaced: that day is built again. Skipped while a queued run of a
        day in between will do it (a backfill of a range restates once, after its last day)."""
        from datetime import UTC, date, datetime, timedelta

        from kam.pipeline import rebuild_day, smtp_from_connection, url_from_connection
        from kam.settings import load_settings

        if not published["later_day"]:
            return {"restated": None}
        context = get_current_context()
        day, later = date.fromisoformat(published["as_of_date"]), date.fromisoformat(published["later_day"])
        between = [
            datetime.combine(day + timedelta(days=n), datetime.min.time(), UTC)
            for n in range(1, (later - day).days)
        ]
        if between and context["ti"].get_dr_count(
            dag_id=context["dag"].dag_id, logical_dates=between, states=["queued", "running"]
        ):
            return {"restated": None, "left_to": "a queued run of a later day"}
        rebuild_day(
            url_from_connection(WAREHOUSE_CONN_ID),
            load_settings(),
            later,
            f"{context['run_id']}__restate_{later}",
            smtp_from_connection(SMTP_CONN_ID),
        )
        return {"restated": later.isoformat()}

    restate_later_day(publish(validate_marts(dbt_build(validate_raw(load_raw(extract()))))))


kam_daily()
