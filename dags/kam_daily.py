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

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from kam.on_airflow.tasks import MARTS_ASSET, RETRY_DELAY, START_DATE, fail_fast_on_bad_data, task_inputs


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
        from kam.on_airflow.connections import url_from_connection
        from kam.pipeline import (
            extract_databases,
            landing_files,
            load_counts,
            refuse_future_date,
            require_data,
        )

        run = task_inputs()
        refuse_future_date(run.as_of_date, run.settings)
        files = landing_files(run.settings)
        require_data(run.url, run.settings, files)
        database = extract_databases(
            run.url,
            run.settings,
            run.as_of_date,
            {mapping: url_from_connection(conn_id) for mapping, conn_id in run.settings.database_sources},
            full_refresh=bool(run.context["params"]["full_refresh"]),
        )
        return {"database": load_counts(database), "files": files}

    @task
    @fail_fast_on_bad_data
    def load_raw(extracted: dict) -> dict:
        from kam.pipeline import combine_summaries, load_counts, load_files

        run = task_inputs()
        files = load_files(run.url, run.settings, extracted["files"])
        return combine_summaries(extracted["database"], load_counts(files))

    @task
    @fail_fast_on_bad_data
    def validate_raw(load_summary: dict) -> dict:  # after the load; the batches to check are in audit
        import pendulum

        from kam.pipeline import validate_raw as raw_gate

        run = task_inputs()
        # Raw data may legitimately hold dates up to the day the run happens, whatever the as-of date.
        return raw_gate(run.url, run.settings, run.as_of_date, run.run_id, pendulum.now("UTC").date())

    @task
    @fail_fast_on_bad_data
    def dbt_build(raw_gate: dict) -> dict:
        from kam.pipeline import build_marts

        run = task_inputs()
        return build_marts(run.url, run.settings, run.as_of_date, run_id=run.run_id)

    @task
    @fail_fast_on_bad_data
    def validate_marts(build_summary: dict) -> dict:
        from kam.pipeline import validate_marts as marts_gate

        run = task_inputs()
        marts_gate(
            run.url, run.settings, run.as_of_date, run.run_id, build_summary["invocation_id"], run.smtp()
        )
        return build_summary

    @task(outlets=[MARTS_ASSET])
    def publish(build_summary: dict) -> dict:
        from kam.pipeline import publish_marts

        run = task_inputs()
        published = publish_marts(run.url, run.as_of_date, run.run_id, build_summary["invocation_id"])
        run.context["outlet_events"][MARTS_ASSET].extra = {"as_of_date": published["as_of_date"]}
        return published

    @task
    @fail_fast_on_bad_data
    def restate_later_day(published: dict) -> dict:
        """A backfill's next published day said what changed since *its* previous day, which
        this run has just replaced: that day is built again. Skipped while a queued run of a
        day in between will do it (a backfill of a range restates once, after its last day)."""
        from datetime import date

        from kam.on_airflow.tasks import runs_waiting_between
        from kam.pipeline import rebuild_day

        if not published["later_day"]:
            return {"restated": None}
        run = task_inputs()
        day, later = date.fromisoformat(published["as_of_date"]), date.fromisoformat(published["later_day"])
        if runs_waiting_between(run.context, day, later):
            return {"restated": None, "left_to": "a queued run of a later day"}
        rebuild_day(run.url, run.settings, later, f"{run.run_id}__restate_{later}", run.smtp())
        return {"restated": later.isoformat()}

    restate_later_day(publish(validate_marts(dbt_build(validate_raw(load_raw(extract()))))))


kam_daily()
