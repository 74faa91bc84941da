"""History across runs: tier and grade changes against the previous published run, and a
backfill of a past day that reproduces its history without replacing the current marts."""

from __future__ import annotations

from datetime import date

from kam.alerts import Smtp
from kam.embedded_server import free_port
from kam.loading import Loader
from kam.pipeline import build_marts, publish_marts, send_alerts
from tests.conftest import make_settings, rows

FIRST, SECOND = date(2026, 5, 31), date(2026, 6, 30)
AGING = (
    "select customer_id, open_amount, overdue_amount, oldest_days_past_due from marts.ar_aging_daily "
    "where as_of_date = %s order by customer_id"
)


def run_day(url, settings, day, run_id):
    build = build_marts(url, settings, day, progress=lambda m: None, run_id=run_id)
    publish_marts(url, day, run_id, build["invocation_id"])


def test_changes_follow_the_previous_run_and_a_backfill_reproduces_its_day(tmp_path, warehouse):
    from kam.sources.synthetic import generate

    settings = make_settings(tmp_path, warehouse)
    generate(settings.landing_dir, scale=0.05, seed=9, end_date=SECOND, progress=lambda m: None)
    Loader(warehouse, progress=lambda m: None).load_paths([settings.landing_dir])
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
