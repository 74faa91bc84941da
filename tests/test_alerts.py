"""Alert emails: only each manager's customers, hostile data neutralised, every message
delivered exactly once through the ledger (SMTP down included)."""

from __future__ import annotations

import smtplib
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import psycopg
import pytest

from kam.alerts.delivery import Smtp, deliver
from kam.alerts.finance_summary import finance_summary_message, gate_failure_message
from kam.alerts.manager_daily import manager_daily_messages
from kam.alerts.reviews_due import reviews_due_message
from kam.alerts.stop_shipments import stop_shipment_messages
from kam.local.embedded_server import free_port
from kam.local.mail_catcher import MailCatcher
from kam.pipeline import StepFailed, send_alerts
from kam.settings import Recipients
from tests.browser import Browser
from tests.conftest import make_settings, rows, scalar

AS_OF = date(2026, 6, 30)
RECIPIENTS = Recipients()


def publish_overdue(url: str, items: list[tuple]) -> None:
    """A hand-made published marts.overdue_invoices, empty stop and review lists, and the
    headline figures (the alert side only reads these marts)."""
    with psycopg.connect(url) as conn:
        conn.execute("create schema marts")
        conn.execute("""create table marts.overdue_invoices (
            as_of_date date, invoice_id text, invoice_number text, customer_id text, customer_name text,
            account_manager text, account_manager_email text, contact_name text, contact_phone text,
            contact_email text, last_payment_date date, last_payment_amount numeric(18,2), invoice_date date,
            installment_no int, due_date date, invoice_amount numeric(18,2), open_amount numeric(18,2),
            company_currency text, days_past_due int, aging_bucket text, escalation_level int,
            escalation_label text, copy_finance_manager boolean)""")
        for n, (customer, name, manager, manager_email, days, amount) in enumerate(items):
            conn.execute(
                "insert into marts.overdue_invoices values (%s, %s, %s, %s, %s, %s, %s, %s, '+86 21 5555 0000',"
                " %s, '2026-05-01', 12.50, '2026-01-01', 1, '2026-02-01', %s, %s, 'CNY', %s, '1_30', %s, 'level', %s)",
                (
                    AS_OF,
                    f"I{n}",
                    f"N{n}",
                    customer,
                    name,
                    manager,
                    manager_email,
                    f"Contact of {customer}",
                    f"ap.{customer.lower()}@example.com",
                    amount,
                    amount,
                    days,
                    1 if days < 61 else 3,
                    days >= 61,
                ),
            )
        conn.execute("""create table marts.stop_shipments (
            account_manager text, account_manager_email text, customer_id text, customer_name text,
            stop_reason text, stop_reason_detail text, credit_grade text, credit_limit numeric(18,2),
            exposure numeric(18,2), amount_over_limit numeric(18,2), oldest_overdue_invoice_number text,
            oldest_days_past_due int, stop_since_date date)""")
        conn.execute("""create table marts.credit_grades (
            account_manager text, account_manager_email text, customer_id text, customer_name text,
            credit_grade text, is_key_account boolean, last_review_date date, next_review_date date,
            is_review_due boolean, is_review_overdue boolean, credit_limit numeric(18,2))""")
        # the headline figures the finance summary opens with, as the finance_kpis_daily mart holds them
        conn.execute(
            """create table marts.finance_kpis_daily as
            select %s::date as as_of_date, 'main' as company_id, 'Main' as company_name, 'CNY' as company_currency,
                   sum(open_amount) as total_receivables, sum(open_amount) as overdue_receivables,
                   1.0 as overdue_share, 90.0 as dso_days, 0.8 as collection_rate_12m,
                   0.0 as recoverable_fees_12m, 0 as customers_on_stop, 0.5 as key_account_revenue_share
            from marts.overdue_invoices""",
            (AS_OF,),
        )
        conn.execute("insert into audit.publications (as_of_date, run_id) values (%s, 'test')", (AS_OF,))


LOOKALIKES = [
    ("C1", "Acme Trading Ltd", "Ann", "ann@example.com", 10, 100),
    ("C2", "Acme Trading Ltd.", "Bob", "bob@example.com", 70, 200),  # looks like C1, belongs to Bob
    ("C3", "ACME TRADING LTD", "Ann", "ann@example.com", 40, 50),
]
HOSTILE = [
    (
        "C9",
        "<script>alert(1)</script>\r\nBcc: victim@example.com",
        "Eve\nBcc: x@example.com",
        "eve@example.com\r\nBcc: x@example.com",
        5,
        10,
    ),
    ("C8", '=HYPERLINK("http://evil","click")', "Ann", "ann@example.com", 3, 20),
    ("C7", "x" * 5000, "Ann", "ann@example.com", 2, 30),
]


def test_each_manager_gets_only_their_customers_even_with_lookalike_names(warehouse, smtp_server):
    inbox, smtp = smtp_server
    publish_overdue(warehouse, LOOKALIKES)
    with psycopg.connect(warehouse) as conn:
        messages = manager_daily_messages(conn, AS_OF, RECIPIENTS)
    deliver(warehouse, messages, smtp, RECIPIENTS.mail_from)
    by_recipient = {m["To"]: m for m in inbox.messages}
    assert set(by_recipient) == {"ann@example.com", "bob@example.com", "finance.manager@example.com"}
    ann_csv = by_recipient["ann@example.com"].get_payload()[1].get_content()
    bob_csv = by_recipient["bob@example.com"].get_payload()[1].get_content()
    assert "C1" in ann_csv and "C3" in ann_csv and "C2" not in ann_csv
    assert "C2" in bob_csv and "C1" not in bob_csv and "C3" not in bob_csv
    assert by_recipient["bob@example.com"]["Cc"] is None and by_recipient["ann@example.com"]["Cc"] is None
    # the finance manager sees only the customer at the escalation level that needs them (70 days)
    escalated = by_recipient["finance.manager@example.com"].get_payload()[1].get_content()
    assert "C2" in escalated and "C1" not in escalated and "C3" not in escalated
    assert "2 overdue invoices, 150.00 overdue" in by_recipient["ann@example.com"]["Subject"]
    ann = by_recipient["ann@example.com"].get_body(("html",)).get_content()
    # grouped by customer, the largest amount first, each with its contact and a subtotal
    assert ann.index("data-customer='C1'") < ann.index("data-subtotal='C1'") < ann.index("data-customer='C3'")
    assert "Contact of C1, +86 21 5555 0000, ap.c1@example.com" in ann
    assert "CNY 100.00" in ann and "CNY 50.00" in ann and "last paid 2026-05-01: CNY 12.50" in ann


def test_a_managers_daily_message_reads_as_groups_with_subtotals_in_a_browser(warehouse, tmp_path):
    """Rendered in Chromium as a mail client would show it, and photographed."""
    publish_overdue(warehouse, LOOKALIKES + [("C4", "Dalian Ocean Foods", "Ann", "ann@example.com", 95, 800)])
    with psycopg.connect(warehouse) as conn:
        messages = manager_daily_messages(conn, AS_OF, RECIPIENTS)
    for message in messages:
        page = tmp_path / f"{message.alert_type}_{message.to[0]}.html"
        page.write_text(message.html, encoding="utf-8")
        with Browser(tmp_path / f"profile-{page.stem}", width=1000, height=800) as browser:
            browser.open(page.as_uri())
            groups = browser.evaluate(
                "[...document.querySelectorAll('tr[data-customer]')].map(r => r.dataset.customer)"
            )
            subtotals = browser.evaluate(
                "[...document.querySelectorAll('tr[data-subtotal]')].map(r => [r.dataset.subtotal, r.innerText])"
            )
            contacts = browser.evaluate(
                "[...document.querySelectorAll('[data-contact]')].map(c => c.innerText)"
            )
            browser.screenshot(tmp_path / "screenshots" / f"{page.stem}.png")
        assert groups and [g for g, _ in subtotals] == groups  # every group closes with its subtotal
        assert all(c.startswith("Contact of ") for c in contacts)
        if message.to == ("ann@example.com",):
            assert groups == ["C4", "C1", "C3"]  # the largest amount first
            assert "CNY 800.00" in subtotals[0][1]
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == len(messages) == 3


def test_every_email_type_renders_with_its_structure_in_a_browser(built_warehouse, tmp_path):
    """Each kind of message the alerts send, from real marts, as a mail client shows it."""
    url, settings = built_warehouse["url"], built_warehouse["settings"]
    as_of = built_warehouse["as_of"]
    with psycopg.connect(url) as conn:
        daily = manager_daily_messages(conn, as_of, RECIPIENTS)
        messages = {
            "manager_daily": next(m for m in daily if m.alert_type == "manager_daily"),
            "escalations": next(m for m in daily if m.alert_type == "escalations"),
            "finance_summary": finance_summary_message(conn, as_of, RECIPIENTS),
            "stop_shipment": stop_shipment_messages(conn, as_of, RECIPIENTS)[0],
            "reviews_due": reviews_due_message(conn, as_of, RECIPIENTS),
            "gate_failure": gate_failure_message(
                as_of, "run-1", ["marts.ar_aging: a failed check"], RECIPIENTS
            ),
        }
    stops = scalar(url, "select count(*) from marts.stop_shipments")
    for kind, message in messages.items():
        page = tmp_path / f"{kind}.html"
        page.write_text(message.html, encoding="utf-8")
        with Browser(tmp_path / f"profile-{kind}", width=1200, height=900) as browser:
            browser.open(page.as_uri())
            tables = browser.evaluate(
                "[...document.querySelectorAll('table')].map(t => t.querySelectorAll('tr').length)"
            )
            text = browser.evaluate("document.body.innerText")
            browser.screenshot(settings.home / "screenshots" / f"email_{kind}.png")
            if kind in ("manager_daily", "escalations"):
                groups = browser.evaluate("document.querySelectorAll('tr[data-customer]').length")
                subtotals = browser.evaluate("document.querySelectorAll('tr[data-subtotal]').length")
                assert groups == subtotals > 0, kind
                assert browser.evaluate("document.querySelectorAll('[data-contact]').length") == groups
        assert tables and all(rows_ > 1 for rows_ in tables), kind  # every table has a header and rows
        if kind == "finance_summary":
            assert tables[0] == 1 + 8 and "Total receivables" in text  # the headline figures come first
        if kind == "stop_shipment":
            assert tables == [1 + stops] and "cash in advance" in text and "over credit limit" in text
    assert len(list((settings.home / "screenshots").glob("email_*.png"))) == 6


def test_hostile_data_cannot_inject_headers_markup_or_formulas(warehouse, smtp_server):
    inbox, smtp = smtp_server
    publish_overdue(warehouse, HOSTILE)
    with psycopg.connect(warehouse) as conn:
        messages = manager_daily_messages(conn, AS_OF, RECIPIENTS)
    deliver(warehouse, messages, smtp, RECIPIENTS.mail_from)
    for message in inbox.messages:
        assert message["Bcc"] is None
        assert "\n" not in message["Subject"] and "\n" not in message["To"]
    # the manager address with a line break is invalid: that list goes to finance instead
    unassigned = [m for m in inbox.messages if m["To"] == "finance@example.com"]
    assert len(unassigned) == 1
    body = unassigned[0].get_body(("html",)).get_content()
    assert "<script>" not in body and "&lt;script&gt;" in body
    ann = next(m for m in inbox.messages if m["To"] == "ann@example.com")
    ann_csv = ann.get_payload()[1].get_content()
    assert "'=HYPERLINK" in ann_csv and ",=HYPERLINK" not in ann_csv
    assert max(len(line) for line in ann.get_body(("html",)).get_content().splitlines()) < 20000
    assert ann.get_payload()[1].get_content_type() == "text/csv"
    assert ann.get_payload()[1].get_payload(decode=True).startswith(b"\xef\xbb\xbf")


def lookalike_lists(warehouse: str) -> list:
    """The managers' messages, the finance manager's escalations and the finance summary of
    the lookalike customers: four messages."""
    publish_overdue(warehouse, LOOKALIKES)
    with psycopg.connect(warehouse) as conn:
        return manager_daily_messages(conn, AS_OF, RECIPIENTS) + [
            finance_summary_message(conn, AS_OF, RECIPIENTS)
        ]


def test_smtp_down_then_up_delivers_every_message_exactly_once(warehouse, smtp_server):
    inbox, smtp = smtp_server
    messages = lookalike_lists(warehouse)
    down = deliver(warehouse, messages, Smtp("127.0.0.1", free_port(), timeout=2), RECIPIENTS.mail_from)
    assert down.sent == 0 and len(down.failed) == 4
    assert rows(warehouse, "select distinct status from audit.alert_ledger") == [("failed",)]
    up = deliver(warehouse, messages, smtp, RECIPIENTS.mail_from)
    again = deliver(warehouse, messages, smtp, RECIPIENTS.mail_from)
    assert (up.sent, again.sent, again.already_sent) == (4, 0, 4)
    assert len(inbox.messages) == 4
    assert len({m["Message-ID"] for m in inbox.messages}) == 4
    assert scalar(warehouse, "select sum(attempts) from audit.alert_ledger") == 8


def test_two_deliveries_at_once_send_each_message_once(warehouse, smtp_server):
    inbox, smtp = smtp_server
    messages = lookalike_lists(warehouse)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda _: deliver(warehouse, messages, smtp, RECIPIENTS.mail_from), range(2)))
    assert sum(r.sent for r in reports) == 4 and sum(r.already_sent for r in reports) == 4
    assert sorted(m["Message-ID"] for m in inbox.messages) == sorted(m.message_id for m in messages)


def test_alerts_refuse_marts_not_published_for_the_date(tmp_path, warehouse, smtp_server):
    _, smtp = smtp_server
    publish_overdue(warehouse, LOOKALIKES)
    with pytest.raises(StepFailed, match="published marts are as of 2026-06-30, not 2026-07-01"):
        send_alerts(warehouse, make_settings(tmp_path, warehouse), date(2026, 7, 1), smtp)


@pytest.mark.slow
def test_generated_data_end_to_end_one_message_per_manager_and_rerun_sends_nothing(
    tmp_path, warehouse, smtp_server
):
    from kam.ingest.files import Loader
    from kam.pipeline import build_marts, publish_marts
    from tools.synthetic import generate

    inbox, smtp = smtp_server
    settings = make_settings(tmp_path, warehouse)
    generate(settings.landing_dir, scale=0.1, seed=3, end_date=AS_OF, progress=lambda m: None)
    Loader(warehouse, progress=lambda m: None).load_paths([settings.landing_dir])
    build = build_marts(warehouse, settings, AS_OF, progress=lambda m: None)
    publish_marts(warehouse, AS_OF, "e2e", build["invocation_id"])
    first = send_alerts(warehouse, settings, AS_OF, smtp, progress=lambda m: None)
    assert first["sent"] == len(inbox.messages)

    def listed_customers(message) -> set[str]:
        return {line.split(",")[1] for line in message.get_payload()[1].get_content().splitlines()[1:]}

    def attached_customers(message, prefix: str) -> set[str]:
        (part,) = [p for p in message.iter_attachments() if p.get_filename().startswith(prefix)]
        return {line.split(",")[0] for line in part.get_content().splitlines()[1:]}

    # one message per manager: their overdue customers and their customers on stop, nobody else's
    for prefix, mart in (("overdue_", "overdue_invoices"), ("stop_shipment_", "stop_shipments")):
        managers = rows(
            warehouse,
            f"select account_manager_email, array_agg(distinct customer_id) from marts.{mart} group by 1",
        )
        assert managers
        for manager_email, customers in managers:
            (message,) = [m for m in inbox.messages if m["To"] == manager_email]
            assert attached_customers(message, prefix) == set(customers)
    (credit_control,) = [
        m for m in inbox.messages if m["To"] == "credit.control@example.com" and "Stop" in m["Subject"]
    ]
    assert listed_customers(credit_control) == {
        r[0] for r in rows(warehouse, "select customer_id from marts.stop_shipments")
    }
    assert [m for m in inbox.messages if "credit reviews due" in m["Subject"]]
    assert len([m for m in inbox.messages if "Overdue summary" in m["Subject"]]) == 1

    second = send_alerts(warehouse, settings, AS_OF, smtp, progress=lambda m: None)
    assert second["sent"] == 0 and len(inbox.messages) == first["sent"]


def test_the_mail_catcher_in_its_own_process_delivers_and_stops(tmp_path):
    with MailCatcher(tmp_path / "outbox", own_process=True) as catcher:
        with smtplib.SMTP("127.0.0.1", catcher.port, timeout=10) as client:
            client.sendmail("kam@example.com", ["ann@example.com"], b"Subject: hello\r\n\r\nbody\r\n")
        process = catcher.process
    (received,) = (tmp_path / "outbox").glob("*.eml")
    assert b"Subject: hello" in received.read_bytes()
    assert process.returncode is not None  # stopped with the block
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", catcher.port, timeout=2)
