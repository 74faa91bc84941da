"""Alert emails built from the published marts, sent once each through a ledger.

Every value that came from data is escaped for HTML, kept out of headers, and neutralised
in CSV attachments (a cell starting with = + - @ would run as a spreadsheet formula).
Each account manager receives only their own customers.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import io
import logging
import re
import smtplib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate

import psycopg

from kam.settings import Recipients
from kam.warehouse import connect, current_as_of

log = logging.getLogger("kam.alerts")
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
LINE_BREAKS_AND_CONTROLS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CELL_CHARS = 300
UNASSIGNED = "(no account manager)"
RENDERED_AHEAD = 8  # messages rendered but not yet sent: enough to keep the sender busy


class MartsNotPublished(RuntimeError):
    """The marts are not published for the date the alerts are for."""


@dataclass
class Smtp:
    host: str
    port: int
    login: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0


@dataclass
class AlertMessage:
    alert_type: str
    as_of_date: date
    to: tuple[str, ...]
    subject: str
    html: str
    text: str
    cc: tuple[str, ...] = ()
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)  # (file name, bytes, mime type)
    occasion: str = ""  # set when one as-of date can warrant several messages (a run that failed)

    @property
    def key(self) -> str:
        return "/".join(
            filter(
                None, [self.alert_type, self.as_of_date.isoformat(), self.occasion, ",".join(sorted(self.to))]
            )
        )

    @property
    def message_id(self) -> str:
        # Deterministic: a message resent after a lost acknowledgement carries the same id.
        return f"<{hashlib.sha256(self.key.encode()).hexdigest()[:32]}@kam-warehouse>"

    def to_email(self, mail_from: str) -> EmailMessage:
        email = EmailMessage()
        email["From"] = mail_from
        email["To"] = ", ".join(self.to)
        if self.cc:
            email["Cc"] = ", ".join(self.cc)
        email["Subject"] = self.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = self.message_id
        # base64, not the quoted-printable Python picks for long non-ASCII lines: that is
        # encoded in pure Python and cost more than everything else about a long list
        email.set_content(self.text, cte="base64")
        email.add_alternative(self.html, subtype="html", cte="base64")
        for name, payload, mime in self.attachments:
            maintype, subtype = mime.split("/", 1)
            email.add_attachment(payload, maintype=maintype, subtype=subtype, filename=name)
        return email


# -- safe rendering ------------------------------------------------------------------------------


def single_line(value: object, limit: int = CELL_CHARS) -> str:
    """Text fit for one table cell or a subject: no line breaks, bounded length."""
    if value is None:
        return ""
    if not isinstance(value, str):
        text = str(value)  # numbers and dates are one line already
    elif value.isprintable():
        text = value.strip()  # no line breaks or controls: skip the substitution
    else:
        text = LINE_BREAKS_AND_CONTROLS.sub(" ", value).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def valid_address(address: str | None) -> bool:
    return bool(address) and EMAIL_PATTERN.match(address) is not None


def money(amount: Decimal | float | None) -> str:
    return f"{Decimal(amount or 0):,.2f}"


def cells(records: Iterable[Sequence[object]]) -> list[list[str]]:
    return [[single_line(v) for v in record] for record in records]


def html_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """`rows` as `cells` made them."""
    head = "".join(f"<th style='text-align:left;padding:4px 8px'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:4px 8px'>{html.escape(v)}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table style='border-collapse:collapse;font-family:sans-serif;font-size:13px'><tr>{head}</tr>{body}</table>"


def csv_attachment(columns: Sequence[str], records: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with BOM so Excel shows Chinese names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for record in records:
        writer.writerow([spreadsheet_safe(single_line(v, 2000) if isinstance(v, str) else v) for v in record])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def page(title: str, intro: str, table: str, note: str = "") -> str:
    return (
        f"<html><body style='font-family:sans-serif'><h2>{html.escape(title)}</h2><p>{html.escape(intro)}</p>"
        f"{table}<p style='color:#666'>{html.escape(note)}</p></body></html>"
    )


# -- reading the published marts -----------------------------------------------------------------


def require_published(conn: psycopg.Connection, as_of: date) -> None:
    published = current_as_of(conn)
    if published != as_of:
        raise MartsNotPublished(
            f"the published marts are as of {published or 'never'}, not {as_of}: alerts are only sent from "
            f"published marts. Run kam_daily for {as_of} first (kam run --date {as_of})."
        )


@dataclass(frozen=True)
class ListSpec:
    """One kind of list email: which mart rows, which columns, and how to word it."""

    alert_type: str
    title: str
    query: str  # rows with account_manager, account_manager_email, escalate, then the columns
    columns: tuple[str, ...]
    money_columns: tuple[int, ...]  # positions of amounts, shown with thousands separators
    subject: str  # .format(count=, total=, as_of=)
    intro: str  # .format(name=, count=, total=, as_of=)
    total_column: int


OVERDUE = ListSpec(
    alert_type="overdue",
    title="Overdue invoices",
    query="""
        select account_manager, account_manager_email, copy_finance_manager,
               customer_name, customer_id, invoice_number, invoice_date, due_date, days_past_due, open_amount,
               escalation_label
        from marts.overdue_invoices
        order by account_manager_email nulls last, days_past_due desc, invoice_id""",
    columns=(
        "Customer",
        "Customer ID",
        "Invoice",
        "Invoice date",
        "Due date",
        "Days past due",
        "Open amount",
        "Escalation",
    ),
    money_columns=(6,),
    subject="[KAM] {count} overdue invoices, {total} overdue, as of {as_of}",
    intro="{name}: {count} invoices of your customers are past due, {total} in total, as of {as_of}. "
    "The oldest come first; the CSV attachment has the same list.",
    total_column=6,
)

STOP_SHIPMENT = ListSpec(
    alert_type="stop_shipment",
    title="Stop shipment",
    query="""
        select account_manager, account_manager_email, false,
               customer_name, customer_id, credit_grade, credit_limit, exposure, amount_over_limit,
               oldest_overdue_invoice_number, oldest_days_past_due, stop_since_date
        from marts.stop_shipments
        order by account_manager_email nulls last, amount_over_limit desc, customer_id""",
    columns=(
        "Customer",
        "Customer ID",
        "Grade",
        "Credit limit",
        "Exposure",
        "Over limit",
        "Oldest overdue invoice",
        "Days past due",
        "Stopped since",
    ),
    money_columns=(3, 4, 5),
    subject="[KAM] Stop shipment: {count} customers over their credit limit, as of {as_of}",
    intro="{name}: do not ship to these {count} customers until their exposure is back under the credit limit "
    "({total} over in total), as of {as_of}. Collect the oldest overdue invoices first.",
    total_column=5,
)


def _rendered(spec: ListSpec, record: tuple) -> tuple:
    return tuple(money(v) if i in spec.money_columns else v for i, v in enumerate(record))


def list_message(
    spec: ListSpec,
    as_of: date,
    to: tuple[str, ...],
    name: str,
    records: list[tuple],
    cc: tuple[str, ...] = (),
) -> AlertMessage:
    total = money(sum(Decimal(r[spec.total_column] or 0) for r in records))
    facts = {"name": name, "count": len(records), "total": total, "as_of": as_of}
    intro = spec.intro.format(**facts)
    table_rows = cells(_rendered(spec, r) for r in records)
    return AlertMessage(
        alert_type=spec.alert_type,
        as_of_date=as_of,
        to=to,
        cc=cc,
        subject=spec.subject.format(**facts),
        html=page(
            f"{spec.title} as of {as_of}",
            intro,
            html_table(spec.columns, table_rows),
            "Sent by the KAM warehouse from the published marts.",
        ),
        text=intro + "\n\n" + "\n".join(" | ".join(row) for row in table_rows),
        attachments=[(f"{spec.alert_type}_{as_of}.csv", csv_attachment(spec.columns, records), "text/csv")],
    )


def manager_messages(
    conn: psycopg.Connection,
    spec: ListSpec,
    as_of: date,
    recipients: Recipients,
    escalate_to: tuple[str, ...] = (),
) -> list[AlertMessage]:
    """One message per account manager with only that manager's rows. Rows whose manager
    address is missing or invalid go to the finance list; `escalate_to` is copied when a row
    says so."""
    by_manager: dict[str, list[tuple]] = {}
    names: dict[str, str] = {}
    escalated: set[str] = set()
    for manager, address, escalate, *record in conn.execute(spec.query).fetchall():
        key = address if valid_address(address) else UNASSIGNED
        by_manager.setdefault(key, []).append(tuple(record))
        names[key] = single_line(manager, 80) if key != UNASSIGNED else UNASSIGNED
        if escalate:
            escalated.add(key)
    return [
        list_message(
            spec,
            as_of,
            (key,) if key != UNASSIGNED else recipients.finance,
            names[key],
            records,
            cc=escalate_to if key in escalated else (),
        )
        for key, records in by_manager.items()
    ]


def overdue_messages(conn: psycopg.Connection, as_of: date, recipients: Recipients) -> list[AlertMessage]:
    """One email per account manager with only that manager's overdue invoices, oldest
    first; the finance manager is copied once an invoice reached that escalation."""
    return manager_messages(conn, OVERDUE, as_of, recipients, escalate_to=recipients.finance_manager)


def stop_shipment_messages(
    conn: psycopg.Connection, as_of: date, recipients: Recipients
) -> list[AlertMessage]:
    """The whole stop list to credit control, and each affected account manager's part to them."""
    everyone = conn.execute(STOP_SHIPMENT.query).fetchall()
    if not everyone:
        return []
    full_list = list_message(
        STOP_SHIPMENT, as_of, recipients.credit_control, "Credit control", [tuple(r[3:]) for r in everyone]
    )
    return [full_list, *manager_messages(conn, STOP_SHIPMENT, as_of, recipients)]


REVIEWS_DUE = ListSpec(
    alert_type="reviews_due",
    title="Credit reviews due",
    query="""
        select null, null, false, customer_name, customer_id, credit_grade, is_key_account, last_review_date,
               next_review_date, case when is_review_overdue then 'overdue' else 'due' end, credit_limit
        from marts.credit_grades
        where next_review_date <= as_of_date + cast((select value from staging.policy_parameters
                                                      where parameter = 'review_due_notice_days') as integer)
        order by next_review_date, customer_id""",
    columns=(
        "Customer",
        "Customer ID",
        "Grade",
        "Key account",
        "Last review",
        "Next review",
        "Status",
        "Credit limit",
    ),
    money_columns=(7,),
    subject="[KAM] {count} credit reviews due, as of {as_of}",
    intro="{count} customers' credit is due (or overdue) for review, as of {as_of}: key accounts every six "
    "months, everyone else yearly. Limits of the listed customers add up to {total}.",
    total_column=7,
)


def reviews_due_message(conn: psycopg.Connection, as_of: date, recipients: Recipients) -> AlertMessage | None:
    """The monthly list of credit reviews due: sent once per calendar month (its ledger key is
    the month), by the first run of the month."""
    records = [tuple(r[3:]) for r in conn.execute(REVIEWS_DUE.query).fetchall()]
    if not records:
        return None
    return list_message(
        REVIEWS_DUE, as_of.replace(day=1), recipients.credit_control, "Credit control", records
    )


def finance_summary_message(conn: psycopg.Connection, as_of: date, recipients: Recipients) -> AlertMessage:
    """The finance list's view: overdue by account manager and escalation, largest first."""
    records = conn.execute(
        """
        select coalesce(account_manager, %s), count(*), sum(open_amount), max(days_past_due),
               count(*) filter (where copy_finance_manager)
        from marts.overdue_invoices group by 1 order by 3 desc""",
        (UNASSIGNED,),
    ).fetchall()
    total = sum(Decimal(r[2]) for r in records)
    columns = ("Account manager", "Overdue invoices", "Overdue amount", "Oldest days past due", "Escalated")
    table_rows = cells((r[0], r[1], money(r[2]), r[3], r[4]) for r in records)
    intro = f"{sum(r[1] for r in records)} invoices are overdue, {money(total)} in total, as of {as_of}."
    return AlertMessage(
        alert_type="finance_summary",
        as_of_date=as_of,
        to=recipients.finance,
        subject=f"[KAM] Overdue summary: {money(total)} overdue, as of {as_of}",
        html=page(f"Overdue summary as of {as_of}", intro, html_table(columns, table_rows)),
        text=intro + "\n\n" + "\n".join(" | ".join(row) for row in table_rows),
        attachments=[(f"overdue_summary_{as_of}.csv", csv_attachment(columns, records), "text/csv")],
    )


def gate_failure_message(
    as_of: date, run_id: str, failures: list[str], recipients: Recipients
) -> AlertMessage:
    """To data engineering: the marts gate failed, what failed, and that nothing was published."""
    intro = (
        f"The marts gate failed for {as_of} (run {run_id}): {len(failures)} expectation(s). The marts were not "
        "published; BI keeps reading the previous marts and no overdue emails went out from this run."
    )
    columns = ("Failed expectation",)
    return AlertMessage(
        alert_type="gate_failure",
        as_of_date=as_of,
        occasion=single_line(run_id, 120),
        to=recipients.data_engineering,
        subject=f"[KAM] Marts gate failed for {as_of}: {len(failures)} expectation(s), nothing published",
        html=page(
            f"Marts gate failed for {as_of}", intro, html_table(columns, cells((f,) for f in failures))
        ),
        text=intro + "\n\n" + "\n".join(single_line(f, 1000) for f in failures),
    )


# -- sending, once -------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    already_sent: int = 0
    failed: list[str] = field(default_factory=list)


def deliver(
    url: str,
    messages: Sequence[AlertMessage],
    smtp: Smtp,
    mail_from: str,
    progress: Callable[[str], None] = log.info,
) -> DeliveryReport:
    """Send each message unless the ledger says it was sent. A failure is recorded and the
    others still go; the caller fails the task so Airflow retries the rest.

    This thread renders each message while a sender thread sends the one before and records
    it: rendering is CPU, the rest is waiting on the mail server and the ledger's commits."""
    report = DeliveryReport()
    session = _Session(smtp, mail_from)
    with connect(url, autocommit=True) as conn, contextlib.closing(session):
        conn.cursor().executemany(
            "insert into audit.alert_ledger (message_key, alert_type, as_of_date, recipients, subject, message_id,"
            " status) values (%s, %s, %s, %s, %s, %s, 'pending') on conflict (message_key) do nothing",
            [
                (
                    m.key,
                    m.alert_type,
                    m.as_of_date,
                    ", ".join(m.to + m.cc),
                    m.subject,
                    m.message_id,
                )
                for m in messages
            ],
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp") as sender:
            in_flight: deque[Future] = deque()
            for message in messages:
                rendered = message.to_email(mail_from).as_bytes(policy=SMTP_POLICY)  # CRLF, as SMTP sends
                in_flight.append(sender.submit(_send_once, conn, session, message, rendered, report))
                while len(in_flight) > RENDERED_AHEAD:
                    in_flight.popleft().result()
            for future in in_flight:
                future.result()
    progress(
        f"alerts: {report.sent} sent, {report.already_sent} already sent earlier, {len(report.failed)} failed"
    )
    return report


def _send_once(
    conn: psycopg.Connection,
    session: _Session,
    message: AlertMessage,
    rendered: bytes,
    report: DeliveryReport,
) -> None:
    """Send under the ledger row's lock, so two deliveries of the same message cannot both send."""
    with conn.transaction():
        status = conn.execute(
            "select status from audit.alert_ledger where message_key = %s for update", (message.key,)
        ).fetchone()[0]
        if status == "sent":
            report.already_sent += 1
            return
        try:
            session.send(message.to + message.cc, rendered)
        except (OSError, smtplib.SMTPException) as exc:
            conn.execute(
                "update audit.alert_ledger set status = 'failed', attempts = attempts + 1,"
                " last_error = %s where message_key = %s",
                (str(exc)[:500], message.key),
            )
            report.failed.append(f"{message.key}: {exc}")
            return
        conn.execute(
            "update audit.alert_ledger set status = 'sent', attempts = attempts + 1,"
            " last_error = null, sent_at = now() where message_key = %s",
            (message.key,),
        )
        report.sent += 1


class _Session:
    """One SMTP connection for a whole delivery (a handshake per message cost more than the
    message), opened on first use and again after the server drops it."""

    def __init__(self, smtp: Smtp, mail_from: str):
        self.smtp = smtp
        self.mail_from = mail_from
        self.client: smtplib.SMTP | None = None

    def send(self, recipients: tuple[str, ...], rendered: bytes) -> None:
        try:
            self._client().sendmail(self.mail_from, recipients, rendered)
        except smtplib.SMTPServerDisconnected:
            self.client = None  # an idle timeout on the server's side: one fresh connection
            self._client().sendmail(self.mail_from, recipients, rendered)
        except smtplib.SMTPResponseException:
            raise  # the server refused this message; the connection is still good for the next
        except OSError:  # the connection broke (smtplib's errors are OSErrors too)
            self.close()
            raise

    def _client(self) -> smtplib.SMTP:
        if self.client is None:
            client = smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout)
            if self.smtp.starttls:
                client.starttls()
            if self.smtp.login:
                client.login(self.smtp.login, self.smtp.password or "")
            self.client = client
        return self.client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None
