"""A smoke run of `kam-dev bench` so it cannot rot: every stage and every reference measured."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import run_kam

pytestmark = pytest.mark.slow


def test_bench_measures_every_stage_and_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("KAM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KAM_WAREHOUSE_URL", raising=False)
    result = run_kam("bench", "--scale", "0.04", check=True, program="kam-dev")
    (figures,) = (tmp_path / "home" / "bench").glob("*/bench.json")
    report = json.loads(figures.read_text())
    stages = {s["name"]: s for s in report["stages"]}
    for name in (
        "generate",
        "load",
        "raw gate",
        "dbt build",
        "marts gate",
        "publish",
        "alerts",
        "next day (bare)",
        "reference: psql \\copy",
        "reference: psql \\copy, before the load",
        "kam_daily (Airflow)",
        "kam_daily steps bare, again",
        "history: 365 published days added",
        "scan largest raw table",
    ):
        assert stages[name]["seconds"] > 0, name
    assert stages["load"]["rows"] == stages["reference: psql \\copy"]["rows"] > 0
    assert stages["reference: psql \\copy, before the load"]["rows"] == stages["load"]["rows"]
    assert len(report["ratios"]) == 9 and all(value is not None for value in report["ratios"].values())
    # the next day runs at scale N/10 too, for its fixed cost: the line through both at no data
    small_next_day = sum(s["seconds"] for s in report["next_day_at_a_tenth_stages"])
    assert [s["name"] for s in report["next_day_at_a_tenth_stages"]] == [
        s["name"] for s in report["next_day_stages"]
    ]
    assert report["next_day_fixed_seconds"] == pytest.approx(
        (10 * small_next_day - stages["next day (bare)"]["seconds"]) / 9, abs=0.01
    )
    assert report["next_day_fixed_seconds"] > 0
    assert report["slowest_models"] and "load throughput" in result.stdout
    # the mail catcher runs in its own process, as a mail server does, and received every message
    # sent (the monthly reviews-due list goes once a month, with the first day's run)
    next_day = {s["name"]: s for s in report["next_day_stages"]}
    delivered = list((tmp_path / "home" / "bench").glob("*/scale-0.04/outbox/*.eml"))
    assert len(delivered) == stages["alerts"]["rows"] + next_day["alerts"]["rows"] > 0
    # the next day loads the last generated day's rows, held back from the full run, and
    # the raw gate validates them
    assert next_day["load"]["rows"] == report["next_day_rows"] > 0
    assert stages["load"]["rows"] + next_day["load"]["rows"] == stages["generate"]["rows"]
    assert next_day["raw gate"]["rows"] > 0
    # a year of history: every history table gets a year of published days, and a day runs on it
    added = report["history_rows_added"]
    assert added > 0 and added % 365 == 0
    a_year_on = {s["name"]: s["seconds"] for s in report["a_year_on_stages"]}
    assert all(a_year_on[name] > 0 for name in ("dbt build", "marts gate", "publish"))
    (landing,) = (tmp_path / "home" / "bench").glob("*/scale-0.04/landing")
    with open(landing / "billing" / "payments" / "payments_2026-06-30.csv", newline="") as day:
        day_payments = {row["payment_id"]: row["payment_date"] for row in csv.DictReader(day)}
    assert set(day_payments.values()) == {"2026-06-30"}
    with open(landing / "billing" / "payments" / "payments.csv", newline="") as before:
        assert max(row["payment_date"] for row in csv.DictReader(before)) < "2026-06-30"
    with open(landing / "billing" / "payment_allocations" / "payment_allocations_2026-06-30.csv") as day:
        assert {row["payment_id"] for row in csv.DictReader(day)} <= set(day_payments)
