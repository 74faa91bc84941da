"""The main job end to end: `kam-dev demo` through Airflow on its own KAM_HOME, twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from kam.contract import load_contract
from tests.conftest import rows, run_kam, scalar

pytestmark = pytest.mark.slow


def outbox(kam_env) -> list:
    folder = Path(kam_env["KAM_HOME"]) / "outbox"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def test_demo_runs_the_whole_pipeline_and_a_rerun_duplicates_nothing(kam_env, warehouse):
    first = run_kam("demo", "--scale", "0.1", "--date", "2026-09-30", env=kam_env, program="kam-dev")
    assert first.returncode == 0, first.stdout[-4000:]
    assert "=== KAM demo: done ===" in first.stdout
    assert "raw rows:" in first.stdout and "tests passed" in first.stdout and "quality gates:" in first.stdout
    assert rows(warehouse, "select bool_and(success), count(*) > 300 from audit.validation_results") == [
        (True, True)
    ]
    assert "****" in first.stdout
    password_in_url = warehouse.split(":")[2].split("@")[0]
    assert password_in_url not in first.stdout
    before = {
        t: scalar(warehouse, f"select count(*) from raw.{t}") for t in ("invoices", "payments", "customers")
    }  # noqa: S608
    assert before["invoices"] > 4000
    marts_before = scalar(warehouse, "select count(*) from marts.ar_open_items")
    assert marts_before > 0
    sent = scalar(warehouse, "select count(*) from audit.alert_ledger where status = 'sent'")
    managers = scalar(
        warehouse,
        """select count(distinct lower(account_manager_email)) from (
               select account_manager_email from marts.overdue_invoices
               union all select account_manager_email from marts.stop_shipments
               union all select account_manager_email from marts.credit_grades where is_review_due) lists""",
    )
    assert (
        scalar(warehouse, "select count(*) from audit.alert_ledger where alert_type = 'manager_daily'")
        == managers
    )
    assert len(outbox(kam_env)) == sent
    assert (
        len(outbox(kam_env)) == sent > managers + 1
    )  # + finance summary, escalations, stop list, reviews due

    second = run_kam("demo", "--scale", "0.1", "--date", "2026-09-30", env=kam_env, program="kam-dev")
    assert second.returncode == 0, second.stdout[-4000:]
    after = {t: scalar(warehouse, f"select count(*) from raw.{t}") for t in before}  # noqa: S608
    assert after == before
    assert scalar(warehouse, "select count(*) from marts.ar_open_items") == marts_before
    # one batch per generated file, the generator writing one file per raw table
    assert scalar(warehouse, "select count(*) from audit.batches where status = 'loaded'") == len(
        load_contract()
    )
    assert rows(warehouse, "select count(*), count(distinct as_of_date) from audit.publications") == [(2, 1)]
    assert scalar(warehouse, "select count(*) from marts.ar_aging_daily") == scalar(
        warehouse, "select count(*) from marts.ar_aging"
    )
    assert len(outbox(kam_env)) == sent
    leaked = [
        str(path)
        for path in Path(kam_env["KAM_HOME"]).rglob("*")
        if path.is_file() and "warehouse" not in path.parts and password_in_url.encode() in path.read_bytes()
    ]
    assert leaked == [], "the warehouse password is written in these files"
    assert password_in_url not in second.stdout + second.stderr
