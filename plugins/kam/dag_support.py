"""What every KAM DAG shares: the published-marts asset, connection ids, retry policy and
the fail-fast rule. Light on purpose: DAG files import it at parse time."""

from __future__ import annotations

import functools
import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

MARTS_ASSET = Asset(name="kam_marts", uri="kam://warehouse/marts")
WAREHOUSE_CONN_ID = "kam_warehouse"
SMTP_CONN_ID = "kam_smtp"
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
