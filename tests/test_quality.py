"""Quality gates: the raw and marts gates on a real warehouse, results stored, and a failed
gate that leaves the published marts readable and unchanged."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import warnings
from datetime import date

import psycopg
import pytest

from kam.alerts.delivery import Smtp
from kam.contract import load_contract
from kam.ingest.files import Loader
from kam.local.embedded_server import free_port
from kam.pipeline import StepFailed, build_marts, publish_marts, validate_marts, validate_raw
from kam.quality import gates as quality
from kam.quality.suites import contract_suite, suite_path
from tests.conftest import Inbox, create_database, drop_database, make_settings, rows, scalar
from tests.test_loading import invoice, write_invoices

AS_OF = date(2026, 8, 31)


@pytest.fixture(scope="module")
def published(server, tmp_path_factory):
    """Scale-0.1 data through load, both gates and publish, once for the module."""
    from tools.synthetic import generate

    home = tmp_path_factory.mktemp("quality-home")
    url = create_database(server, "quality")
    settings = make_settings(home, url)
    generate(settings.landing_dir, scale=0.1, seed=11, end_date=AS_OF, progress=lambda m: None)
    Loader(url, progress=lambda m: None).load_paths([settings.landing_dir])
    validate_raw(url, settings, AS_OF, "run-1", AS_OF, progress=lambda m: None)
    build = build_marts(url, settings, AS_OF, progress=lambda m: None)
    validate_marts(url, settings, AS_OF, "run-1", build["invocation_id"], progress=lambda m: None)
    publish_marts(url, AS_OF, "run-1", build["invocation_id"])
    yield url, settings
    drop_database(server, "quality")


def test_committed_raw_suites_are_the_ones_the_contract_implies():
    settings = make_settings(__import__("pathlib").Path("/tmp"), None)
    for table in load_contract().values():
        assert json.loads(suite_path(settings, "raw", table.name).read_text()) == contract_suite(table), (
            f"expectations/raw/{table.name}.json differs from the contract: run `kam expectations generate`"
        )


def test_a_clean_run_publishes_and_records_every_result(published):
    url, settings = published
    assert rows(
        url,
        "select gate, bool_and(success), count(*) > 0 from audit.validation_results "
        "where run_id = 'run-1' group by 1 order by 1",
    ) == [("marts", True, True), ("raw", True, True)]
    suites = {
        r[0] for r in rows(url, "select distinct suite from audit.validation_results where gate = 'marts'")
    }
    assert suites == {f"marts.{p.stem}" for p in (settings.expectations_dir / "marts").glob("*.json")}
    assert (settings.home / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()
    assert scalar(url, "select count(*) from marts.ar_aging") > 0


def test_a_gate_logs_what_it_found_not_gx_chatter(published, caplog):
    url, settings = published
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")  # shown however often an earlier test showed them
        result = quality.validate_marts(settings, url, "marts", AS_OF, "run-quiet", None)
    assert result.ok and result.expectations > 0
    assert [r.getMessage() for r in caplog.records if r.name.startswith("great_expectations")] == []
    # nor its advice on the datasource kind, chosen on purpose (warnings reach task logs too)
    assert [str(w.message) for w in warned if "SQLDatasource" in str(w.message)] == []
    assert any(r.name == "kam.quality.gates" and "expectations" in r.getMessage() for r in caplog.records)


def test_a_wrong_mart_blocks_publishing_while_readers_keep_the_old_marts(published):
    url, settings = published
    before = rows(url, "select customer_id, open_amount, bucket_1_30 from marts.ar_aging order by 1")
    relations = "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
    published_relations = rows(url, relations)
    errors: list[str] = []
    counts: list[int] = []
    stop = threading.Event()

    def reader():
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    counts.append(conn.execute("select count(*) from marts.ar_aging").fetchone()[0])
                except psycopg.Error as exc:
                    errors.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    inbox = Inbox()
    from aiosmtpd.controller import Controller

    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        build = build_marts(url, settings, AS_OF, progress=lambda m: None)
        with psycopg.connect(url) as conn:  # the fixture breaks one identity in the build, not the model:
            conn.execute(  # total open AR no longer equals the open invoices (a cross-mart identity)
                "update marts_build.ar_aging set open_amount = open_amount + 100 "
                "where customer_id = (select min(customer_id) from marts_build.ar_aging)"
            )
        with pytest.raises(StepFailed, match="ar_aging: unexpected_rows_expectation"):
            validate_marts(
                url,
                settings,
                AS_OF,
                "run-broken",
                build["invocation_id"],
                smtp=Smtp("127.0.0.1", controller.port),
                progress=lambda m: None,
            )
    finally:
        stop.set()
        thread.join()
        controller.stop()
    assert errors == [] and counts and min(counts) == len(before)
    assert rows(url, "select customer_id, open_amount, bucket_1_30 from marts.ar_aging order by 1") == before
    assert rows(url, relations) == published_relations  # dbt rebuilding staging must not drop published views
    (alert,) = inbox.messages
    assert alert["To"] == "data.engineering@example.com" and "Marts gate failed" in alert["Subject"]
    assert "ar_aging" in alert.get_body(("plain",)).get_content()
    # the broken identity, and the headline figures that no longer agree with the aging
    assert rows(
        url,
        "select suite from audit.validation_results where run_id = 'run-broken' and not success order by 1",
    ) == [("marts.ar_aging",), ("marts.finance_kpis",)]


def test_bad_raw_rows_are_stopped_before_anything_is_published(published, tmp_path):
    url, settings = published
    published_before = scalar(url, "select count(*) from audit.publications")
    bad = [
        invoice(1, invoice_id="BAD-1", customer_id=""),  # null key part: quarantined
        invoice(2, invoice_id="BAD-2", amount="-50"),  # negative amount: quarantined
        invoice(3, invoice_id="BAD-3", invoice_date="2026-05-10", due_date="2026-04-01"),
    ]  # due before invoice
    path = write_invoices(tmp_path / "invoices_patch.csv", bad)
    (result,) = Loader(url, progress=lambda m: None).load_paths([path])
    reasons = dict(
        rows(url, "select line_no, reason from audit.quarantine where batch_id = %s", (result.batch_id,))
    )
    assert (
        "customer_id: missing required value" in reasons[2]
        and "amount: outside the plausible range" in reasons[3]
    )
    with pytest.raises(StepFailed) as failure:
        validate_raw(url, settings, AS_OF, "run-bad-raw", AS_OF, progress=lambda m: None)
    assert "expect_column_pair_values_a_to_be_greater_than_b" in str(failure.value) and "invoices" in str(
        failure.value
    )
    assert rows(url, "select status from audit.batches where batch_id = %s", (result.batch_id,)) == [
        ("rejected",)
    ]
    assert scalar(url, "select count(*) from audit.publications") == published_before
    with psycopg.connect(url) as conn:  # put the module's warehouse back for the other tests
        conn.execute("delete from raw.invoices where invoice_id = 'BAD-3'")


def test_the_raw_gate_checks_each_batch_once_and_a_rejected_one_until_it_is_fixed(published, tmp_path):
    url, settings = published

    def value_suites(run_id: str) -> set[str]:
        return {
            r[0]
            for r in rows(
                url,
                "select distinct suite from audit.validation_results where run_id = %s and suite like '%%.rows'",
                (run_id,),
            )
        }

    # The first load: every row is new, so values are checked on the whole tables.
    invoices = load_contract()["invoices"]
    assert value_suites("run-1") == set()
    assert scalar(
        url,
        "select count(*) from audit.validation_results where run_id = 'run-1' and suite = 'raw.invoices' "
        "and expectation_type = 'expect_column_values_to_not_be_null'",
    ) == sum(c.not_null or c.name in invoices.primary_key for c in invoices.columns)
    validate_raw(url, settings, AS_OF, "run-settle", AS_OF, progress=lambda m: None)  # what other tests left
    again = validate_raw(url, settings, AS_OF, "run-again", AS_OF, progress=lambda m: None)
    # nothing new: GX does not run at all
    assert again["expectations"] == 0 and "no batch is waiting" in again["summary"]
    assert scalar(url, "select count(*) from audit.validation_results where run_id = 'run-again'") == 0

    bad = [invoice(1, invoice_id="LATE-1", invoice_date="2026-05-10", due_date="2026-04-01")]
    (result,) = Loader(url, progress=lambda m: None).load_paths(
        [write_invoices(tmp_path / "invoices_late.csv", bad)]
    )
    for attempt in ("run-late-1", "run-late-2"):  # rejected, it is checked again until it is fixed
        with pytest.raises(StepFailed, match="invoices"):
            validate_raw(url, settings, AS_OF, attempt, AS_OF, progress=lambda m: None)
        assert value_suites(attempt) == {"raw.invoices.rows"}
        # the gate read a copy of the batch's rows, and dropped it, failing or not
        assert scalar(url, "select count(*) from pg_tables where schemaname = 'gate_rows'") == 0
        # the other tables have nothing new
        assert rows(
            url, "select distinct table_name from audit.validation_results where run_id = %s", (attempt,)
        ) == [("invoices",)]
    with psycopg.connect(url) as conn:
        conn.execute("update raw.invoices set due_date = invoice_date where invoice_id = 'LATE-1'")
    validate_raw(url, settings, AS_OF, "run-late-fixed", AS_OF, progress=lambda m: None)
    assert rows(url, "select raw_gate_run_id from audit.batches where batch_id = %s", (result.batch_id,)) == [
        ("run-late-fixed",)
    ]
    with psycopg.connect(url) as conn:  # put the module's warehouse back for the other tests
        conn.execute("delete from raw.invoices where invoice_id = 'LATE-1'")


def test_gx_keeps_a_month_of_its_result_files_and_audit_keeps_every_result(published):
    url, settings = published
    gx_root = settings.home / "gx" / "gx"
    results = gx_root / "uncommitted" / "validations" / "marts" / "ar_aging"
    pages = gx_root / "uncommitted" / "data_docs" / "local_site" / "validations" / "marts" / "ar_aging"
    two_months_ago = time.time() - 60 * 86400
    planted = []
    for folder in (results, pages):  # a result and its page as a deployment running since spring has them
        run = next(p for p in folder.iterdir() if p.is_dir())
        old = folder / "run-in-spring"
        shutil.copytree(run, old)
        for path in old.rglob("*"):
            os.utime(path, (two_months_ago, two_months_ago))
        planted.append(old)

    said: list[str] = []
    quality.validate_marts(settings, url, "marts", AS_OF, "run-today", None, progress=said.append)

    assert not any(p.exists() for p in planted)
    assert any("removed 2 GX result files older than 14 days" in line for line in said), said
    assert (results / "run-today").is_dir() and (pages / "run-today").is_dir()
    index = (gx_root / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text()
    assert "run-today" in index and "run-in-spring" not in index
    assert scalar(url, "select count(*) from audit.validation_results where run_id = 'run-1'") > 0
    # the project no longer names a variables file (GX re-read it on every look-up) and its
    # docs index lists only the latest results
    project = (gx_root / "great_expectations.yml").read_text()
    assert "config_variables_file_path:\n" in project
    assert f"validation_results_limit: {quality.DATA_DOCS_INDEX_RESULTS}" in project


def test_the_marts_gate_reads_the_history_rows_of_its_own_run(published):
    url, settings = published
    build = build_marts(url, settings, AS_OF, progress=lambda m: None)
    duplicate_one = (
        "insert into snapshots.credit_grades_history select * from snapshots.credit_grades_history"
        " where dbt_invocation_id {} %s limit 1"
    )
    try:
        with psycopg.connect(url) as conn:
            # a published run's rows passed that run's gate: a key broken there since is not read again
            conn.execute(duplicate_one.format("<>"), (build["invocation_id"],))
        validate_marts(
            url, settings, AS_OF, "run-history-old", build["invocation_id"], progress=lambda m: None
        )
        with psycopg.connect(url) as conn:
            conn.execute(duplicate_one.format("="), (build["invocation_id"],))
        with pytest.raises(StepFailed, match="credit_grade_history: expect_compound_columns_to_be_unique"):
            validate_marts(
                url, settings, AS_OF, "run-history-new", build["invocation_id"], progress=lambda m: None
            )
    finally:
        with psycopg.connect(url) as conn:
            conn.execute(
                "delete from snapshots.credit_grades_history as later using snapshots.credit_grades_history as first"
                " where later.ctid > first.ctid and (later.as_of_date, later.customer_id, later.dbt_invocation_id)"
                " = (first.as_of_date, first.customer_id, first.dbt_invocation_id)"
            )
    # the copies the gate read are gone
    assert scalar(url, "select count(*) from pg_tables where schemaname = 'gate_rows'") == 0
