"""
### kam_daily — the nightly warehouse build

For the data interval's day (the as-of date) it:

1. **extract** — lists the files waiting in `KAM_HOME/landing` (ERP and billing exports);
2. **load_raw** — COPYs them into `raw`, one audited batch per file; bad rows go to
   `audit.quarantine` (file, line, column, reason), unchanged files are skipped;
3. **dbt_build** — builds staging, intermediate and the marts into the build schema and
   runs every dbt test;
4. **publish** — swaps the build schema in as `marts` in one transaction and emits the
   `kam_marts` asset, which schedules `kam_alerts`.

Every task is idempotent: rerunning a day changes nothing; a failure before publish leaves
yesterday's marts in place. The warehouse is the `kam_warehouse` Airflow connection.
Run one day by hand: `kam run --date YYYY-MM-DD`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from kam.dag_support import MARTS_ASSET, RETRY_DELAY, WAREHOUSE_CONN_ID, fail_fast_on_bad_data


def _as_of_date():
    from kam.pipeline import as_of_date_from_context

    return as_of_date_from_context(get_current_context())


@dag(
    dag_id="kam_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["kam", "warehouse", "daily"],
    doc_md=__doc__,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": RETRY_DELAY},
)
def kam_daily():
    @task
    def extract() -> list[dict]:
        from kam.pipeline import landing_files
        from kam.settings import load_settings

        return landing_files(load_settings())

    @task
    @fail_fast_on_bad_data
    def load_raw(files: list[dict]) -> dict:
        from kam.pipeline import load_files, warehouse_url_from_connection
        from kam.settings import load_settings

        summary = load_files(warehouse_url_from_connection(WAREHOUSE_CONN_ID), load_settings(), files)
        return {k: v for k, v in summary.items() if k != "batches"}

    @task
    @fail_fast_on_bad_data
    def dbt_build(load_summary: dict) -> dict:
        from kam.pipeline import build_marts, warehouse_url_from_connection
        from kam.settings import load_settings

        return build_marts(warehouse_url_from_connection(WAREHOUSE_CONN_ID), load_settings(), _as_of_date())

    @task(outlets=[MARTS_ASSET])
    def publish(build_summary: dict) -> dict:
        from kam.pipeline import publish_marts, warehouse_url_from_connection

        context = get_current_context()
        published = publish_marts(
            warehouse_url_from_connection(WAREHOUSE_CONN_ID),
            _as_of_date(),
            context["run_id"],
            build_summary["invocation_id"],
        )
        context["outlet_events"][MARTS_ASSET].extra = {"as_of_date": published["as_of_date"]}
        return published

    publish(dbt_build(load_raw(extract())))


kam_daily()
