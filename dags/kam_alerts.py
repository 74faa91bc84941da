"""
### kam_alerts — the emails people act on

Runs when `kam_daily` publishes the marts (the `kam_marts` asset), for the as-of date of
that publication. Sends, from the published marts only:

- to each account manager, the overdue invoices of **their own** customers (HTML table and
  a CSV attachment), copying the finance manager once an invoice reaches that escalation;
- to the finance list, the overdue summary by account manager.

A ledger in `audit.alert_ledger` makes every message go out once: a retry or a rerun for the
same date sends only what has not been sent. SMTP is the `kam_smtp` Airflow connection.
Run one day by hand: `kam run --dag kam_alerts --date YYYY-MM-DD`.
"""

from __future__ import annotations

from datetime import date

from airflow.sdk import dag, get_current_context, task

from kam.on_airflow.tasks import (
    MARTS_ASSET,
    RETRY_DELAY,
    START_DATE,
    as_of_date_from_context,
    fail_fast_on_bad_data,
    task_inputs,
)


def _as_of_date() -> date:
    """The as-of date of the publication that triggered the run, else the run's logical date."""
    context = get_current_context()
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            if (event.extra or {}).get("as_of_date"):
                return date.fromisoformat(event.extra["as_of_date"])
    return as_of_date_from_context(context)


@dag(
    dag_id="kam_alerts",
    schedule=[MARTS_ASSET],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["kam", "alerts", "email"],
    doc_md=__doc__,
    default_args={"owner": "finance-operations", "retries": 3, "retry_delay": RETRY_DELAY},
)
def kam_alerts():
    @task
    @fail_fast_on_bad_data
    def overdue_lists() -> dict:
        from kam.pipeline import send_alerts

        run = task_inputs(_as_of_date())
        return send_alerts(run.url, run.settings, run.as_of_date, run.smtp())

    overdue_lists()


kam_alerts()
