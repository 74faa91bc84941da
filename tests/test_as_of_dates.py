"""What an as-of date means: any day from the earliest data on runs every task (2012 too),
a day after today is refused, a wrong day can be withdrawn, a backfill is true to its date
and restates the day after it, cash is never lost, and an empty start says what to do."""

from __future__ import annotations

import csv
import getpass
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from kam.ingest.files import Loader
from kam.local.embedded_server import free_port
from kam.local.runner import airflow_env
from kam.pipeline import build_marts, publish_marts, send_alerts, validate_marts
from kam.settings import load_settings
from tests.conftest import make_settings, rows, run_kam, scalar
from tests.test_loading import IBM_CSV
from tests.test_marts_aging import _independent_ibm_aging

needs_ibm = pytest.mark.skipif(not IBM_CSV.exists(), reason="shared/data/real is not beside the repository")
IBM_DAY = date(2013, 3, 15)


def run_day(url, settings, day, run_id):
    build = build_marts(url, settings, day, progress=lambda m: None, run_id=run_id)
    validate_marts(url, settings, day, run_id, build["invocation_id"], progress=lambda m: None)
    return publish_marts(url, day, run_id, build["invocation_id"])


@pytest.mark.slow
@needs_ibm
def test_the_real_ibm_ledger_runs_through_airflow_at_a_2013_date(kam_env, warehouse):
    run_kam("load", "--mapping", "ibm_late_payment_histories", str(IBM_CSV), env=kam_env, check=True)
    result = run_kam("run", "--date", IBM_DAY.isoformat(), env=kam_env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "success" in result.stdout.splitlines()[-1]

    aged = dict(rows(warehouse, "select customer_id, open_amount from marts.ar_aging where open_amount <> 0"))
    assert aged == _independent_ibm_aging(IBM_DAY)
    assert rows(warehouse, "select distinct as_of_date from marts.ar_aging") == [(IBM_DAY,)]

    status = run_kam("status", env=kam_env)
    assert status.returncode == 0, status.stdout
    assert f"published marts: as of {IBM_DAY}" in status.stdout
    for task in ("extract", "load_raw", "validate_raw", "dbt_build", "validate_marts", "publish"):
        line = next(line for line in status.stdout.splitlines() if line.strip().startswith(task + " "))
        assert "success" in line and line.rstrip().endswith(" s"), line
    # a day's run is stamped with that day as its start by Airflow; the durations are the tasks' own
    took = float(status.stdout.split("kam_daily: last run")[1].split(" s (run")[0].rsplit(", ", 1)[1])
    assert 0 < took < 3600

    # Airflow's own backfill makes a run for every day of 2012 too (none before the start date)
    settings = load_settings()
    backfill = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "backfill", "create", "--dag-id", "kam_daily"]
        + ["--from-date", "2012-06-01", "--to-date", "2012-06-03", "--dry-run"],
        env=airflow_env(settings, warehouse),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    assert [
        day for day in ("2012-06-01", "2012-06-02", "2012-06-03") if f"| {day} 00:00:00" in backfill.stdout
    ] == [
        "2012-06-01",
        "2012-06-02",
        "2012-06-03",
    ]

    # A day the ledger owed nothing (before its first invoice) is published: every customer at zero.
    # (It is older than the current marts, so it is a backfill: its day shows in the history.)
    nothing = run_kam("run", "--date", "2011-12-31", env=kam_env)
    assert nothing.returncode == 0, nothing.stdout[-3000:]
    assert rows(
        warehouse,
        "select count(*), sum(open_amount) from marts.ar_aging_daily where as_of_date = '2011-12-31'",
    ) == [(100, Decimal("0.00"))]


@pytest.mark.slow
@needs_ibm
def test_kam_ui_serves_the_runs_with_their_durations_and_task_logs(kam_env, warehouse):
    run_kam("load", "--mapping", "ibm_late_payment_histories", str(IBM_CSV), env=kam_env, check=True)
    run_kam("run", "--date", "2012-06-30", env=kam_env, check=True)
    port = free_port()
    ui = subprocess.Popen(
        [str(Path(sys.executable).parent / "kam"), "ui", "--port", str(port)],
        env=kam_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        first = ui.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first, first
        password = first.split("login admin / ", 1)[1].split()[0]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/api/v2/monitor/health", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the UI did not come up"
                time.sleep(1)
        request = urllib.request.Request(
            base + "/auth/token",
            data=json.dumps({"username": "admin", "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.load(urllib.request.urlopen(request, timeout=30))["access_token"]

        def get(path):
            call = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
            return urllib.request.urlopen(call, timeout=30).read()

        runs = json.loads(get("/api/v2/dags/kam_daily/dagRuns"))["dag_runs"]
        assert [r["state"] for r in runs] == ["success"]
        run_id = runs[0]["dag_run_id"]
        tasks = json.loads(get(f"/api/v2/dags/kam_daily/dagRuns/{run_id}/taskInstances"))["task_instances"]
        durations = {t["task_id"]: t["duration"] for t in tasks}
        assert durations["dbt_build"] > 0 and all(d is not None and d < 3600 for d in durations.values())
        log = get(f"/api/v2/dags/kam_daily/dagRuns/{run_id}/taskInstances/dbt_build/logs/1?full_content=true")
        assert b"Completed successfully" in log
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)


def test_a_day_after_today_is_refused_and_nothing_is_touched(kam_env, warehouse):
    tomorrow = load_settings().today() + timedelta(days=1)
    result = run_kam("run", "--date", tomorrow.isoformat(), env=kam_env)
    assert result.returncode == 2
    assert f"{tomorrow} is after today" in result.stdout
    assert not (Path(kam_env["KAM_HOME"]) / "airflow").exists()
    assert rows(warehouse, "select count(*) from audit.batches") == [(0,)]


def test_an_empty_start_fails_at_once_and_says_what_to_do(kam_env):
    started = time.monotonic()
    result = run_kam("run", "--date", "2026-10-31", env=kam_env)
    assert result.returncode == 1
    assert "landing is empty and no database source is configured" in result.stdout
    assert "KAM_DATABASE_SOURCES" in result.stdout
    assert time.monotonic() - started < 30


@pytest.fixture
def small_book(tmp_path, warehouse):
    """A small synthetic ERP up to 2026-10-31, loaded (not in landing: a run loads nothing new)."""
    from tools.synthetic import generate

    files = tmp_path / "exports"
    generate(files, scale=0.05, seed=11, end_date=date(2026, 10, 31), progress=lambda m: None)
    Loader(warehouse, progress=lambda m: None).load_paths([files])
    return make_settings(tmp_path / "bare", warehouse)


@pytest.mark.slow
def test_a_wrong_date_is_withdrawn_and_the_next_day_sends_its_alerts(
    kam_env, warehouse, small_book, smtp_server
):
    inbox, smtp = smtp_server
    run_day(warehouse, small_book, date(2026, 10, 30), "right")
    wrong = date(2027, 10, 30)  # a year typed wrong; the refusal is bypassed as a scheduler's bug would
    run_day(warehouse, small_book, wrong, "wrong")
    assert scalar(warehouse, "select max(as_of_date) from marts.ar_aging") == wrong

    result = run_kam("withdraw", "--date", wrong.isoformat(), "--reason", "year typed wrong", env=kam_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(warehouse, "select distinct as_of_date from marts.ar_aging") == [(date(2026, 10, 30),)]
    assert rows(warehouse, "select distinct as_of_date from marts.ar_aging_daily") == [(date(2026, 10, 30),)]
    withdrawn = rows(
        warehouse,
        "select withdrawn_by, withdrawal_reason, withdrawn_at is not null from audit.publications "
        "where as_of_date = %s",
        (wrong,),
    )
    assert withdrawn == [(getpass.getuser(), "year typed wrong", True)]
    for table in ("ar_aging_history", "customer_tiers_history", "credit_grades_history"):
        assert (
            scalar(warehouse, f"select count(*) from snapshots.{table} where as_of_date = %s", (wrong,)) == 0
        )

    next_day = date(2026, 10, 31)
    run_day(warehouse, small_book, next_day, "next")
    sent = send_alerts(warehouse, small_book, next_day, smtp, progress=lambda m: None)
    assert sent["sent"] > 0 and len(inbox.messages) == sent["sent"]
    status = run_kam("status", env=kam_env)
    assert f"withdrawn: {wrong} by" in status.stdout and "year typed wrong" in status.stdout


def _independent_open_orders(raw: Path, day: date) -> dict[str, Decimal]:
    """Open orders + shipped-not-invoiced per customer on `day`, from the files' dates."""

    def read(name):
        return list(csv.DictReader(open(next(raw.rglob(f"{name}.csv")), encoding="utf-8")))

    first_invoice: dict[str, date] = {}
    for invoice in read("invoices"):
        if invoice["order_id"] and invoice["status"] == "posted":
            first = date.fromisoformat(invoice["invoice_date"])
            first_invoice[invoice["order_id"]] = min(first, first_invoice.get(invoice["order_id"], first))
    shipped: dict[str, Decimal] = defaultdict(Decimal)
    has_shipments = set()
    for shipment in read("shipments"):
        has_shipments.add(shipment["order_id"])
        if date.fromisoformat(shipment["ship_date"]) <= day:
            shipped[shipment["order_id"]] += Decimal(shipment["amount"])
    ordered: dict[str, Decimal] = defaultdict(Decimal)
    shipped_by_lines: dict[str, Decimal] = defaultdict(Decimal)
    for line in read("sales_order_lines"):
        ordered[line["order_id"]] += Decimal(line["quantity"]) * Decimal(line["unit_price"])
        shipped_by_lines[line["order_id"]] += Decimal(line["shipped_quantity"] or 0) * Decimal(
            line["unit_price"]
        )
    owed: dict[str, Decimal] = defaultdict(Decimal)
    for order in read("sales_orders"):
        order_id = order["order_id"]
        if date.fromisoformat(order["order_date"]) > day or order["status"] == "cancelled":
            continue
        invoiced = first_invoice.get(order_id)
        if (invoiced and invoiced <= day) or (not invoiced and order["status"] == "invoiced"):
            continue
        out = shipped[order_id] if order_id in has_shipments else shipped_by_lines[order_id]
        owed[order["customer_id"]] += max(ordered[order_id] - out, Decimal(0)) + out
    return {customer: amount.quantize(Decimal("0.01")) for customer, amount in owed.items() if amount}


@pytest.mark.slow
def test_a_backfill_is_true_to_its_date_and_restates_the_day_after(kam_env, warehouse, small_book, tmp_path):
    october, september = date(2026, 10, 31), date(2026, 9, 30)
    run_day(warehouse, small_book, october, "october")
    assert rows(warehouse, "select distinct tier_change from marts.customer_tiers") == [("new",)]

    result = run_kam("run", "--date", september.isoformat(), env=kam_env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert rows(warehouse, "select distinct as_of_date from marts.ar_aging") == [(october,)]

    # 09-30's exposure from the documents' dates: orders invoiced in October were open then
    exposure = dict(
        rows(
            warehouse,
            "select g.customer_id, g.exposure - a.open_amount from marts.credit_grade_history g"
            " join marts.ar_aging_daily a using (as_of_date, customer_id)"
            " where g.as_of_date = %s and g.exposure - a.open_amount <> 0",
            (september,),
        )
    )
    expected = _independent_open_orders(tmp_path / "exports", september)
    assert exposure == expected
    assert sum(expected.values()) > 0

    # 10-31 was restated: what changed is measured against 09-30, in the marts and the history
    changes = rows(
        warehouse,
        "select now.tier_change, now.previous_tier is not distinct from before.tier, now.previous_as_of_date"
        " from marts.customer_tiers now join marts.customer_tier_history before"
        " on before.customer_id = now.customer_id and before.as_of_date = %s",
        (september,),
    )
    assert changes and all(same and previous == september for _, same, previous in changes)
    assert "new" not in {change for change, _, _ in changes}
    assert rows(
        warehouse,
        "select count(*) from marts.customer_tier_history where as_of_date = %s and tier_change = 'new'",
        (october,),
    ) == [(0,)]
    assert rows(warehouse, "select count(*) from marts.credit_grades where previous_grade is null") == [(0,)]

    # unapplied cash per customer is what ar_unapplied_cash lists plus credit balances
    mismatched = scalar(
        warehouse,
        """select count(*) from marts.ar_aging a left join (
               select customer_id, sum(unapplied_amount) as listed from marts.ar_unapplied_cash group by 1) u
               using (customer_id)
           where a.unapplied_cash < coalesce(u.listed, 0)""",
    )
    assert mismatched == 0


def test_errors_say_what_is_wrong_and_what_to_do(kam_env, tmp_path):
    missing = tmp_path / "nowhere" / "invoices.csv"
    result = run_kam("load", str(missing), env=kam_env)
    assert result.returncode == 2 and f"{missing} does not exist" in result.stdout

    result = run_kam("load", "--mapping", "erpnxt", str(missing), env=kam_env)
    assert result.returncode == 2
    assert "no mapping 'erpnxt'" in result.stdout and "erpnext" in result.stdout and "odoo" in result.stdout

    result = run_kam("report", env=kam_env)
    assert (
        result.returncode == 1 and "nothing is published yet" in result.stdout and "kam run" in result.stdout
    )

    unreachable = dict(kam_env, KAM_WAREHOUSE_URL=f"postgresql://kam:secret@127.0.0.1:{free_port()}/kam")
    result = run_kam("warehouse", "status", env=unreachable)
    assert result.returncode == 3 and "cannot be reached" in result.stdout and "secret" not in result.stdout
