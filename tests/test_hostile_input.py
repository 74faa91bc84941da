"""Hostile input and faults, grouped by kind: mapping files that would hang or mislead the
loader, files that would leave a batch stuck, links out of landing, and addresses from ERP
data that would break an email or its ledger. Each was a probe that did not hold."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller

from kam.alerts.delivery import Smtp, deliver
from kam.alerts.manager_daily import manager_daily_messages
from kam.ingest.files import Loader
from kam.ingest.mappings import MappingError, load_mapping
from kam.local.embedded_server import free_port
from kam.settings import BiLimits, Recipients
from kam.warehouse.publish import publish
from kam.warehouse.roles import bi_url, ensure_bi_role
from tests.conftest import Inbox, make_settings, rows, run_kam
from tests.test_alerts import AS_OF, publish_overdue
from tests.test_loading import INVOICE_HEADER

MAPPING_HEAD = "name: probe\ntargets:\n  billing.payments:\n"
PAYMENT_COLUMNS = (
    "    columns:\n      payment_id: id\n      customer_id: c\n      payment_date: d\n      amount: a\n"
)


# -- mapping files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (MAPPING_HEAD + '    distinct: "false"\n' + PAYMENT_COLUMNS, "distinct must be true or false"),
        (
            MAPPING_HEAD
            + PAYMENT_COLUMNS.replace("payment_id: id", "payment_id: {template: 'P-{id!r:>10}'}"),
            "formats and conversions",
        ),
        ("delimiter: ';;'\n" + MAPPING_HEAD + PAYMENT_COLUMNS, "must be one character"),
        ('delimiter: "\\n"\n' + MAPPING_HEAD + PAYMENT_COLUMNS, "must be one character"),
        ("encoding: klingon\n" + MAPPING_HEAD + PAYMENT_COLUMNS, "unknown encoding 'klingon'"),
        ("date_fromat: dd/mm/yyyy\n" + MAPPING_HEAD + PAYMENT_COLUMNS, "unknown key(s) ['date_fromat']"),
    ],
    ids=[
        "distinct-as-text",
        "template-format-spec",
        "two-char-delimiter",
        "newline-delimiter",
        "encoding",
        "typo",
    ],
)
def test_a_mapping_option_that_would_be_misread_is_refused_with_the_reason(tmp_path, text, says):
    path = tmp_path / "probe.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as refused:
        load_mapping(path)
    assert says in str(refused.value) and str(path) in str(refused.value)


def test_a_yaml_alias_bomb_is_refused_at_once_not_expanded(tmp_path, kam_env):
    bomb = tmp_path / "bomb.yml"
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    levels += [
        f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)}" + f",*{chr(97 + n)}" * 8 + "]" for n in range(8)
    ]
    bomb.write_text("\n".join(levels) + "\ntargets: *i\n", encoding="utf-8")
    started = time.monotonic()
    result = run_kam("load", "--mapping", str(bomb), str(tmp_path), env=kam_env)
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    assert "an alias (*a)" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_a_huge_mapping_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yml"
    path.write_text(MAPPING_HEAD + PAYMENT_COLUMNS + "#" * (2 << 20) + "\n", encoding="utf-8")
    with pytest.raises(MappingError, match="more than a mapping file can be"):
        load_mapping(path)


# -- files that left a batch stuck -----------------------------------------------------------


def test_old_mac_line_breaks_load_and_every_batch_ends_loaded_or_failed(tmp_path, warehouse):
    path = tmp_path / "invoices.csv"
    lines = [",".join(INVOICE_HEADER)] + [
        f"I{n},N{n},C1,,2026-01-05,2026-02-04,CNY,10,posted" for n in (1, 2)
    ]
    path.write_bytes(("\r".join(lines) + "\r").encode())
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path])
    assert result.status == "loaded" and result.rows_loaded == 2, result.message
    assert rows(warehouse, "select invoice_id from raw.invoices order by 1") == [("I1",), ("I2",)]
    assert rows(warehouse, "select count(*) from audit.batches where status = 'loading'") == [(0,)]


# -- links out of landing, hidden folders ----------------------------------------------------


def test_a_link_out_of_landing_is_refused_by_name_and_never_read(tmp_path, warehouse):
    secret = tmp_path / "elsewhere" / "secrets.csv"
    secret.parent.mkdir()
    secret.write_text("password=hunter2-do-not-print\n", encoding="utf-8")
    landing = tmp_path / "landing" / "billing" / "invoices"
    landing.mkdir(parents=True)
    os.symlink(secret, landing / "invoices.csv")
    hidden = tmp_path / "landing" / ".drafts" / "invoices.csv"
    hidden.parent.mkdir()
    hidden.write_text(",".join(INVOICE_HEADER) + "\n", encoding="utf-8")
    said: list[str] = []
    (result,) = Loader(warehouse, progress=said.append).load_paths([tmp_path / "landing"])
    assert result.status == "failed" and "refused without reading it" in result.message
    assert str(landing / "invoices.csv") in result.message
    everything = "\n".join(said) + result.message
    assert "hunter2" not in everything
    assert rows(warehouse, "select count(*) from audit.batches where message like '%%hunter2%%'") == [(0,)]
    assert any(".drafts" in line and "hidden" in line for line in said)


# -- addresses from ERP data ---------------------------------------------------------------------


class RefusingInbox(Inbox):
    """A mail server that refuses one mailbox for good (550), as a real one does."""

    refuse = "gone@example.com"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() == self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_addresses_are_normalised_and_a_broken_one_never_reaches_a_header(warehouse, smtp_server):
    inbox, smtp = smtp_server
    publish_overdue(
        warehouse,
        [
            ("C1", "Upper case", "Ann", "AM03@Example.com", 40, 10),
            ("C2", "Lower case", "Ann", "am03@example.com", 40, 20),
            ("C3", "Injected", "Eve", "eve@example.com\r\nBcc: everyone@example.com", 40, 30),
        ],
    )
    recipients = Recipients()
    with psycopg.connect(warehouse) as conn:
        messages = manager_daily_messages(conn, AS_OF, recipients)
    deliver(warehouse, messages, smtp, recipients.mail_from)
    by_to = {m["To"]: m for m in inbox.messages}
    assert set(by_to) == {"am03@example.com", "finance@example.com"}
    assert "2 overdue invoices" in by_to["am03@example.com"]["Subject"]
    finance = by_to["finance@example.com"]
    assert finance["Cc"] == "data.engineering@example.com" and finance["Bcc"] is None
    assert "addresses to fix" in finance.get_body(("plain",)).get_content()
    assert all("everyone@example.com" not in (m["To"] or "") + (m["Cc"] or "") for m in inbox.messages)


def test_a_recipient_the_server_refuses_is_recorded_as_refused_not_sent(warehouse):
    inbox = RefusingInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        # a manager address that is not one address: the list goes to finance (here the refused
        # mailbox), copied to data engineering with the address to fix
        publish_overdue(warehouse, [("C1", "Gone", "Gone", "not an address", 20, 10)])
        recipients = Recipients(finance=("gone@example.com",))
        with psycopg.connect(warehouse) as conn:
            messages = manager_daily_messages(conn, AS_OF, recipients)
        report = deliver(warehouse, messages, Smtp("127.0.0.1", controller.port), recipients.mail_from)
    finally:
        controller.stop()
    assert report.failed == [] and len(report.refused) == 1 and "gone@example.com (550" in report.refused[0]
    assert rows(
        warehouse, "select recipient, accepted, smtp_code from audit.alert_recipients order by recipient"
    ) == [("data.engineering@example.com", True, 250), ("gone@example.com", False, 550)]
    assert rows(warehouse, "select last_error from audit.alert_ledger") == [("refused: gone@example.com",)]
    assert [m["To"] for m in inbox.messages] == [
        "gone@example.com"
    ]  # headers as written; delivered to the Cc only


# -- values that would change without a word ---------------------------------------------------

INVOICE_ROW = {
    "invoice_id": "I1",
    "invoice_number": "N1",
    "customer_id": "C1",
    "order_id": "",
    "invoice_date": "2026-10-05",
    "due_date": "2026-11-04",
    "currency": "CNY",
    "amount": "10.00",
    "status": "posted",
}


def _load_one_invoice(tmp_path, warehouse, **changes) -> tuple:
    """A file with one clean invoice and one with `changes`: the clean row always loads."""
    path = tmp_path / "invoices.csv"
    bad = {**INVOICE_ROW, "invoice_id": "I2", **changes}
    lines = [",".join(INVOICE_HEADER)] + [
        ",".join(f'"{row[c]}"' if "," in row[c] else row[c] for c in INVOICE_HEADER)
        for row in (INVOICE_ROW, bad)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path])
    return result, rows(warehouse, "select column_name, value, reason from audit.quarantine")


@pytest.mark.parametrize(
    "amount", ["0x1F", "1_000", "1e3", "10.005", " +7 ", "NaN", "Infinity", "-inf", "1,5"]
)
def test_a_number_that_is_not_plain_decimal_or_would_round_is_quarantined(tmp_path, warehouse, amount):
    result, quarantined = _load_one_invoice(tmp_path, warehouse, amount=amount)
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("loaded", 1, 1)
    ((column, value, reason),) = quarantined
    assert column == "amount" and value == amount
    assert "plain decimal" in reason or "would be rounded" in reason
    assert rows(warehouse, "select invoice_id, amount from raw.invoices") == [("I1", Decimal("10.00"))]


@pytest.mark.parametrize(
    "day",
    ["today", "yesterday", "Oct 31 2026", "2026.10.31", "20261031", "2026-10-31 not a date", "2026-10-31 BC"],
)
def test_a_date_not_in_iso_form_whole_is_quarantined(tmp_path, warehouse, day):
    result, quarantined = _load_one_invoice(tmp_path, warehouse, invoice_date=day)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    ((column, value, reason),) = quarantined
    assert column == "invoice_date" and value == day and "not a date" in reason


def test_plain_numbers_and_iso_timestamps_still_load(tmp_path, warehouse):
    result, quarantined = _load_one_invoice(
        tmp_path, warehouse, amount="+12.5", invoice_date="2026-10-05 13:45:00"
    )
    assert (result.rows_loaded, quarantined) == (2, [])
    assert rows(warehouse, "select amount, invoice_date from raw.invoices where invoice_id = 'I2'") == [
        (Decimal("12.50"), date(2026, 10, 5))
    ]


def test_latin1_that_also_reads_as_gb18030_is_refused_until_the_encoding_is_said(
    tmp_path, warehouse, kam_env
):
    path = tmp_path / "customers.csv"
    header = (
        "customer_id,customer_name,customer_type,parent_customer_id,region,territory,channel,account_manager,"
    )
    header += "account_manager_email,payment_terms_days,influence_rating,created_date,is_active\n"
    path.write_bytes(
        (header + "C1,Müller GmbH,direct,,EU,DE,direct,Ann,ann@example.com,30,3,2020-01-01,true\n").encode(
            "latin-1"
        )
    )
    result = run_kam("load", str(path), env=kam_env)
    assert result.returncode == 1 and "not clearly GB18030" in result.stdout and "Müller" in result.stdout
    assert rows(kam_env["KAM_WAREHOUSE_URL"], "select count(*) from raw.customers") == [(0,)]
    result = run_kam("load", "--encoding", "latin-1", str(path), env=kam_env)
    assert result.returncode == 0, result.stdout
    assert rows(warehouse, "select customer_name from raw.customers") == [("Müller GmbH",)]


# -- the BI role and publish -------------------------------------------------------------------


def _publish_copy_of_marts(url: str, day: date, run: str) -> None:
    """Publish a copy of the current marts again, as a day's run does."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists marts_build cascade")
        conn.execute("create schema marts_build")
        conn.execute("create table marts_build.ar_aging as select * from marts.ar_aging")
    publish(url, "marts_build", day, run)


def test_a_bi_session_cannot_hold_the_marts_or_the_publish_for_ever(tmp_path, warehouse):
    settings = replace(
        make_settings(tmp_path, warehouse),
        bi_limits=BiLimits(statement_timeout="5min", idle_in_transaction_timeout="2s", connection_limit=5),
    )
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("create schema marts_build")
        conn.execute(
            "create table marts_build.ar_aging as select 'C1'::text as customer_id, 10.0 as open_amount"
        )
    ensure_bi_role(warehouse, settings)
    publish(warehouse, "marts_build", AS_OF, "first")
    reader = psycopg.connect(bi_url(warehouse, settings))
    assert reader.execute("show idle_in_transaction_session_timeout").fetchone() == ("2s",)
    assert reader.execute("show statement_timeout").fetchone() == ("5min",)
    reader.execute(
        "select count(*) from marts.ar_aging"
    ).fetchone()  # ...and the session stays in its transaction
    _publish_copy_of_marts(warehouse, AS_OF, "second")  # its marts are now marts_previous
    started = time.monotonic()
    _publish_copy_of_marts(warehouse, AS_OF, "third")  # drops marts_previous: the idle reader is ended
    assert time.monotonic() - started < 25
    with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
        reader.execute("select 1")
    reader.close()

    with psycopg.connect(bi_url(warehouse, settings), autocommit=True) as bi:
        for statement in ("create temp table mine (a int)", "select * from marts_previous.ar_aging"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(statement)
        assert bi.execute("select rolconnlimit from pg_roles where rolname = current_user").fetchone() == (5,)


# -- processes ---------------------------------------------------------------------------------


def test_a_killed_kam_takes_its_children_with_it(kam_env):
    ui = subprocess.Popen(
        [str(Path(sys.executable).parent / "kam"), "ui", "--port", str(free_port())],
        env=kam_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert next(line for line in ui.stdout if "Airflow UI" in line)
        deadline = time.monotonic() + 60
        children: list[int] = []
        while not children and time.monotonic() < deadline:
            children = [int(p) for p in Path(f"/proc/{ui.pid}/task/{ui.pid}/children").read_text().split()]
            time.sleep(0.2)
        assert children, "kam ui started no server"
        ui.kill()  # SIGKILL: kam cannot clean up
        ui.wait(timeout=30)
        deadline = time.monotonic() + 60
        while any(Path(f"/proc/{c}").exists() and _state(c) != "Z" for c in children):
            assert time.monotonic() < deadline, f"children of the killed kam still run: {children}"
            time.sleep(0.5)
    finally:
        if ui.poll() is None:
            ui.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_lease_held_by_a_dead_run_is_taken_over_at_once_and_the_dead_run_publishes_nothing(warehouse):
    import socket

    from kam.pipeline import StepFailed, acquire_transform_lease, touch_transform_lease

    gone = subprocess.Popen(["true"])
    gone.wait()
    with psycopg.connect(warehouse) as conn:
        conn.execute(
            "insert into audit.transform_lease (lease_name, run_id, as_of_date, expires_at, holder_host, holder_pid,"
            " touched_at) values ('marts', 'killed-run', %s, now() + interval '3 hours', %s, %s, now() - interval '10 minutes')",
            (AS_OF, socket.gethostname(), gone.pid),
        )
    said: list[str] = []
    started = time.monotonic()
    acquire_transform_lease(warehouse, "next-run", AS_OF, wait_seconds=5, progress=said.append)
    assert time.monotonic() - started < 5
    assert any("killed-run" in line and "is gone" in line for line in said)
    with pytest.raises(StepFailed, match="no longer holds the marts lease"):
        touch_transform_lease(warehouse, "killed-run")

    # a live holder (this process) is waited for, then named
    with pytest.raises(StepFailed, match="another run \\(next-run"):
        acquire_transform_lease(warehouse, "third-run", AS_OF, wait_seconds=1, progress=lambda m: None)


# -- settlement that cannot be ---------------------------------------------------------------


def test_allocations_beyond_their_payment_or_to_unknown_invoices_fail_the_raw_gate_with_the_numbers(
    tmp_path, warehouse
):
    from kam.pipeline import StepFailed, validate_raw

    files = tmp_path / "landing" / "billing"
    for table, text in {
        "invoices": ",".join(INVOICE_HEADER) + "\nI1,N1,C1,,2026-05-05,2026-06-04,CNY,30000.00,posted\n",
        "payments": "payment_id,customer_id,payment_date,amount,method\nP1,C1,2026-06-20,1914.78,bank_transfer\n",
        "payment_allocations": "payment_id,invoice_id,amount\nP1,I1,21355.40\nP1,I404,5.00\n",
    }.items():
        (files / table).mkdir(parents=True)
        (files / table / f"{table}.csv").write_text(text, encoding="utf-8")
    results = Loader(warehouse, progress=lambda m: None).load_paths([tmp_path / "landing"])
    assert {r.status for r in results} == {"loaded"}
    settings = make_settings(tmp_path, warehouse)
    with pytest.raises(StepFailed) as failure:
        validate_raw(warehouse, settings, AS_OF, "run-settle", AS_OF, progress=lambda m: None)
    said = str(failure.value)
    assert "payment_allocations" in said and "unexpected_rows_expectation" in said
    assert "I404" in said and "21360.40" in said and "1914.78" in said
    assert rows(
        warehouse, "select status from audit.batches where 'payment_allocations' = any(target_tables)"
    ) == [("rejected",)]
