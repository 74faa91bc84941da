"""What every KAM DAG shares: the published-marts asset, the start date, retry policy, the
fail-fast rule and what each task reads from its context. Light on purpose: DAG files
import it at parse time; everything heavier is imported when a task runs."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pendulum
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from kam.constants import MARTS_ASSET_NAME, MARTS_ASSET_URI, WAREHOUSE_CONN_ID
from kam.settings import Settings

MARTS_ASSET = Asset(name=MARTS_ASSET_NAME, uri=MARTS_ASSET_URI)
# Airflow creates no task instance for a logical date before a DAG's start_date, so a run of
# an earlier day would "succeed" doing nothing. The start is the contract's earliest plausible
# date (meta.plausible_dates, checked by a test): every day data can hold can be run. With
# catchup off the scheduler still starts at the latest interval, never at 1990.
START_DATE = pendulum.datetime(1990, 1, 1, tz="UTC")
# `kam run` shortens the delay; production keeps five minutes for a flaky network or server.
RETRY_DELAY = timedelta(seconds=int(os.environ.get("KAM_RETRY_DELAY_SECONDS", "300")))


def fail_fast_on_bad_data(step):
    """Bad data or configuration (kam.pipeline.StepFailed) fails the task at once: a retry
    cannot fix it. Anything else (a server down, a timeout) is left to Airflow's retries."""

    @functools.wraps(step)
    def run(*args, **kwargs):
        from kam.pipeline import StepFailed

        try:
            return step(*args, **kwargs)
        except StepFailed as exc:
            raise AirflowFailException(str(exc)) from exc

    return run


def as_of_date_from_context(context) -> date:
    """The day a run is for: its logical date (the start of the daily data interval), so a
    backfill of a past day computes that day's marts."""
    logical = context.get("logical_date") or context["dag_run"].logical_date or context["data_interval_start"]
    return logical.date()


@dataclass(frozen=True)
class TaskInputs:
    """What a task body needs: the warehouse, the settings, the day and the run."""

    url: str
    settings: Settings
    as_of_date: date
    run_id: str
    context: dict

    def smtp(self):
        from kam.on_airflow.connections import smtp_from_connection

        return smtp_from_connection()


def task_inputs(as_of_date: date | None = None) -> TaskInputs:
    from airflow.sdk import get_current_context

    from kam.on_airflow.connections import url_from_connection
    from kam.settings import load_settings

    context = get_current_context()
    return TaskInputs(
        url=url_from_connection(WAREHOUSE_CONN_ID),
        settings=load_settings(),
        as_of_date=as_of_date or as_of_date_from_context(context),
        run_id=context["run_id"],
        context=context,
    )


def runs_waiting_between(context, day: date, later: date) -> int:
    """How many runs of this DAG for a day strictly between `day` and `later` are queued or
    running (a backfill of a range): the last of them restates `later`."""
    between = [
        datetime.combine(day + timedelta(days=n), datetime.min.time(), UTC)
        for n in range(1, (later - day).days)
    ]
    if not between:
        return 0
    return context["ti"].get_dr_count(
        dag_id=context["dag"].dag_id, logical_dates=between, states=["queued", "running"]
    )
