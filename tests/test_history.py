"""History across runs: tier and grade changes against the previous published run, and a
backfill of a past day that reproduces its history without replacing the current marts."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from kam.alerts.delivery import Smtp
from kam.ingest.files import Loader
from kam.local.embedded_server import free_port
from kam.pipeline import build_marts, publish_marts, send_alerts
from tests.conftest import make_settings, rows
from tools.bench import add_published_history

FIRST, SECOND = date(2026, 5, 31), date(2026, 6, 30)
AGING = (
    "select customer_id, open_amount, overdue_amount, oldest_days_past_due from marts.ar_aging_daily "
    "where as_of_date = %s order by customer_id"
)


def loaded(tmp_path, warehouse):
    """The settings of a warehouse loaded with a small synthetic ERP up to SECOND."""
    from tools.synthetic import generate

    settings = make_settings(tmp_path, warehouse)
    generate(settings.landing_dir, scale=0.05, seed=9, end_date=SECOND, progress=lambda m: None)
    Loader(warehouse, progress=lambda m: None).load_paths([settings.landing_dir])
    return settings


def run_day(url, settings, day, run_id):
    build = build_marts(url, settings, day, progress=lambda m: None, run_id=run_id)
    publish_marts(url, day, run_id, build["invocation_id"])


@pytest.mark.slow
def test_changes_follow_the_previous_run_and_a_backfill_reproduces_its_day(tmp_path, warehouse):
    settings = loaded(tmp_path, warehouse)
    run_day(warehouse, settings, FIRST, "first")
    first_aging = rows(warehouse, AGING, (FIRST,))
    run_day(warehouse, settings, SECOND, "second")

    changes = dict(rows(warehouse, "select tier_change, count(*) from marts.customer_tiers group by 1"))
    assert "new" not in changes and sum(changes.values()) == len(first_aging)
    assert rows(warehouse, "select count(*) from marts.customer_tiers where previous_tier is null") == [(0,)]
    assert rows(warehouse, "select count(*) from marts.credit_grades where previous_grade is null") == [(0,)]
    transitions = rows(
        warehouse, "select count(*) from marts.credit_grade_history where as_of_date = %s", (SECOND,)
    )
    assert transitions == [(len(first_aging),)]

    run_day(warehouse, settings, FIRST, "backfill")
    assert rows(warehouse, "select distinct as_of_date from marts.ar_aging") == [(SECOND,)]
    assert rows(warehouse, AGING, (FIRST,)) == first_aging
    assert rows(warehouse, "select as_of_date, count(*) from marts.ar_aging_daily group by 1 order by 1") == [
        (FIRST, len(first_aging)),
        (SECOND, len(first_aging)),
    ]
    skipped = send_alerts(
        warehouse, settings, FIRST, Smtp("127.0.0.1", free_port(), timeout=1), progress=lambda m: None
    )
    assert skipped["skipped"] == "backfill" and skipped["sent"] == 0


# What the marts read of their earlier runs, computed over every published day: the day the
# stop that is on began, when the current grade began, and each customer's latest tier.
STOPS_FROM_ALL_HISTORY = """
    with today as (select * from marts.credit_grades where is_stop_shipment),
    last_shipping as (
        select customer_id, max(as_of_date) as day from marts.credit_grade_history
        where not is_stop_shipment and as_of_date < %(day)s group by customer_id
    )
    select today.customer_id, coalesce(min(history.as_of_date), %(day)s)
    from today
    left join last_shipping on today.customer_id = last_shipping.customer_id
    left join marts.credit_grade_history as history
        on history.customer_id = today.customer_id and history.as_of_date < %(day)s
        and history.as_of_date > coalesce(last_shipping.day, date '0001-01-01')
    group by today.customer_id order by 1"""
REVIEWS_FROM_ALL_HISTORY = """
    with runs as (
        select customer_id, as_of_date, credit_grade,
            credit_grade is distinct from lag(credit_grade) over (partition by customer_id order by as_of_date)
                as starts_run
        from marts.credit_grade_history where as_of_date < %(day)s
    ),
    latest as (select distinct on (customer_id) * from runs order by customer_id, as_of_date desc),
    began as (select customer_id, max(as_of_date) filter (where starts_run) as day from runs group by customer_id)
    select today.customer_id,
        case when latest.credit_grade is distinct from today.credit_grade and latest.credit_grade is not null
            then %(day)s else coalesce(began.day, customers.created_date, %(day)s) end
    from marts.credit_grades as today
    join staging.stg_erp__customers as customers on today.customer_id = customers.customer_id
    left join latest on today.customer_id = latest.customer_id
    left join began on today.customer_id = began.customer_id
    order by 1"""
PREVIOUS_TIERS_FROM_ALL_HISTORY = """
    select distinct on (customer_id) customer_id, tier, as_of_date from marts.customer_tier_history
    where as_of_date < %(day)s order by customer_id, as_of_date desc"""


@pytest.mark.slow
def test_what_marts_carry_from_their_last_run_matches_all_of_history(tmp_path, warehouse):
    settings = loaded(tmp_path, warehouse)
    month_start, last_run, *days = date(2026, 6, 1), date(2026, 6, 28), date(2026, 6, 29), SECOND
    for day in (month_start, last_run):
        run_day(warehouse, settings, day, f"run-{day}")
    # A grade that holds keeps its review date: before any history, the account's opening.
    assert rows(
        warehouse,
        "select count(*) from marts.credit_grades today join marts.credit_grade_history first"
        " on first.customer_id = today.customer_id and first.as_of_date = %s"
        " where today.credit_grade = first.credit_grade and today.last_review_date <> first.last_review_date",
        (month_start,),
    ) == [(0,)]
    # History as written before it kept those dates (the next run reads them from all of it),
    # with stops and grades that came and went, and a day missing for some customers.
    with psycopg.connect(warehouse) as conn:
        for change, day, last_digits in (
            ("stop_since_date = null, last_review_date = null", None, None),
            ("is_stop_shipment = not is_stop_shipment", month_start, "123"),
            ("credit_grade = 'C'", month_start, "34"),
            ("is_stop_shipment = false", last_run, "0679"),  # a stop that begins on the next day
            ("credit_grade = 'C'", last_run, "8"),  # a new grade on the next day
        ):
            conn.execute(
                f"update snapshots.credit_grades_history set {change}"  # noqa: S608 - the test's constants
                " where (%(day)s::date is null or as_of_date = %(day)s)"
                " and (%(digits)s::text is null or strpos(%(digits)s, right(customer_id, 1)) > 0)",
                {"day": day, "digits": last_digits},
            )
        conn.execute(
            "delete from snapshots.customer_tiers_history where as_of_date = %s and right(customer_id, 1) = '5'",
            (last_run,),
        )
    for day in days:  # the first run reads all of history, the next carries what it wrote
        run_day(warehouse, settings, day, f"run-{day}")
        on_day = {"day": day}
        stops = rows(warehouse, "select customer_id, stop_since_date from marts.stop_shipments order by 1")
        assert stops == rows(warehouse, STOPS_FROM_ALL_HISTORY, on_day)
        reviews = rows(warehouse, "select customer_id, last_review_date from marts.credit_grades order by 1")
        assert reviews == rows(warehouse, REVIEWS_FROM_ALL_HISTORY, on_day)
        previous = rows(
            warehouse,
            "select customer_id, previous_tier, previous_as_of_date from marts.customer_tiers"
            " where previous_tier is not null order by 1",
        )
        assert previous == rows(warehouse, PREVIOUS_TIERS_FROM_ALL_HISTORY, on_day)
        if day == days[0]:  # the cases above all occur
            assert {since for _, since in stops} >= {month_start, last_run, day}
            assert {reviewed for _, reviewed in reviews} >= {last_run, day}
            assert {as_of for _, _, as_of in previous} == {month_start, last_run}
    # each history table is read through its two indexes (dbt's on-run-start makes them)
    indexed = rows(
        warehouse, "select tablename, count(*) from pg_indexes where schemaname = 'snapshots' group by 1"
    )
    assert sorted(indexed) == [
        (t, 2) for t in ("ar_aging_history", "credit_grades_history", "customer_tiers_history")
    ]


@pytest.mark.slow
def test_the_latest_formal_evaluation_is_the_published_month_start_of_the_cadence(tmp_path, warehouse):
    """Tiers are formally evaluated on the first day of the months their cadence names (the
    year's first month for every cadence); the mart reads only those published days."""
    settings = loaded(tmp_path, warehouse)
    last_run, new_year = date(2026, 6, 28), date(2026, 1, 1)
    run_day(warehouse, settings, last_run, "last")
    add_published_history(warehouse, last_run, (last_run - date(2025, 12, 1)).days)  # every day since
    with psycopg.connect(warehouse) as conn:  # the new year's evaluation, told apart from every other day
        conn.execute(
            "update snapshots.customer_tiers_history set tier = 'X' where as_of_date = %s", (new_year,)
        )
    run_day(warehouse, settings, date(2026, 6, 29), "next")
    assert rows(
        warehouse, "select distinct last_evaluated_date, evaluated_tier from marts.customer_tiers"
    ) == [(new_year, "X")]
