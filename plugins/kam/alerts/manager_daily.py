"""Each account manager's one daily message, only their customers: the overdue invoices
grouped by customer with a subtotal, whom to call there and when it last paid; their
customers on the stop list and due for a credit review. The first rows in the body, every
row in the CSVs. The finance manager gets, in a message of its own, only the customers at
an escalation level that copies the finance manager."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import psycopg

from kam.alerts.lists import UNASSIGNED
from kam.alerts.render import AlertMessage, csv_attachment, money, normalised_address, single_line
from kam.settings import Recipients

OVERDUE_QUERY = """
    select account_manager, account_manager_email, customer_id, customer_name, contact_name, contact_phone,
           contact_email, last_payment_date, last_payment_amount, company_currency, invoice_number,
           installment_no, due_date, days_past_due, open_amount, escalation_label, copy_finance_manager
    from marts.overdue_invoices
    order by customer_id, days_past_due desc, invoice_id, installment_no"""
STOP_QUERY = """
    select account_manager, account_manager_email, customer_id, customer_name, stop_reason_detail,
           credit_grade, credit_limit, exposure, amount_over_limit, stop_since_date
    from marts.stop_shipments
    order by amount_over_limit desc, customer_id"""
REVIEWS_QUERY = """
    select account_manager, account_manager_email, customer_id, customer_name, credit_grade,
           last_review_date, next_review_date, case when is_review_overdue then 'overdue' else 'due' end
    from marts.credit_grades
    where is_review_due
    order by next_review_date, customer_id"""

OVERDUE_CSV = (
    "Customer ID", "Customer", "Contact", "Phone", "Email", "Last payment", "Last payment amount", "Currency",
    "Invoice", "Instalment", "Due date", "Days past due", "Open amount", "Escalation",
)  # fmt: skip
STOP_COLUMNS = (
    "Customer ID",
    "Customer",
    "Why",
    "Grade",
    "Credit limit",
    "Exposure",
    "Over limit",
    "Stopped since",
)
REVIEW_COLUMNS = ("Customer ID", "Customer", "Grade", "Last review", "Next review", "Status")

CELL = "padding:3px 8px;border-bottom:1px solid #eee"
NUMBER = CELL + ";text-align:right;white-space:nowrap"


@dataclass
class CustomerOverdue:
    customer_id: str
    name: str
    contact: str
    last_payment: str
    currency: str
    invoices: list[tuple] = field(
        default_factory=list
    )  # (invoice, instalment, due, days, amount, escalation)
    escalated: bool = False

    @property
    def subtotal(self) -> Decimal:
        return sum((Decimal(i[4]) for i in self.invoices), Decimal(0))


@dataclass
class Book:
    """One manager's part of the day's lists."""

    name: str
    overdue: dict[str, CustomerOverdue] = field(default_factory=dict)
    overdue_rows: list[tuple] = field(default_factory=list)
    stops: list[tuple] = field(default_factory=list)
    reviews: list[tuple] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.overdue or self.stops or self.reviews)


def _e(value: object) -> str:
    return html.escape(single_line(value))


def _contact(name, phone, email) -> str:
    parts = [single_line(p, 120) for p in (name, phone, email) if p]
    return ", ".join(parts) if parts else "no contact in the ERP"


def _last_payment(day, amount, currency) -> str:
    return f"last paid {day}: {currency} {money(amount)}" if day else "no payment received yet"


def _collect(conn: psycopg.Connection) -> tuple[dict[str, Book], set[str]]:
    books: dict[str, Book] = {}
    unusable: set[str] = set()

    def book(manager, address) -> Book:
        key = normalised_address(address) or UNASSIGNED
        if key == UNASSIGNED and address:
            unusable.add(single_line(address, 120))
        return books.setdefault(key, Book(single_line(manager, 80) if key != UNASSIGNED else UNASSIGNED))

    for row in conn.execute(OVERDUE_QUERY):
        (manager, address, customer_id, name, contact, phone, email, paid_on, paid, currency, *invoice) = row
        target = book(manager, address)
        customer = target.overdue.setdefault(
            customer_id,
            CustomerOverdue(
                customer_id, single_line(name, 120), _contact(contact, phone, email),
                _last_payment(paid_on, paid, currency), currency,
            ),
        )  # fmt: skip
        customer.invoices.append(tuple(invoice[:6]))
        customer.escalated = customer.escalated or bool(invoice[6])
        target.overdue_rows.append(
            (customer_id, name, contact, phone, email, paid_on, paid, currency, *invoice[:6])
        )
    for manager, address, *record in conn.execute(STOP_QUERY):
        book(manager, address).stops.append(tuple(record))
    for manager, address, *record in conn.execute(REVIEWS_QUERY):
        book(manager, address).reviews.append(tuple(record))
    return books, unusable


def _overdue_table(customers: Sequence[CustomerOverdue], body_rows: int) -> tuple[str, list[str], int]:
    """Customers with the most overdue first, each a header (contact, last payment), its
    invoices and a subtotal; at most `body_rows` invoice rows (the CSV has every one)."""
    html_rows, text, shown = [], [], 0
    for customer in sorted(customers, key=lambda c: (-c.subtotal, c.customer_id)):
        if shown >= body_rows:
            break
        html_rows.append(
            f"<tr data-customer='{_e(customer.customer_id)}'><td colspan='5' style='{CELL};background:#f3f6fa'>"
            f"<b>{_e(customer.name)}</b> ({_e(customer.customer_id)}) · <span data-contact>{_e(customer.contact)}"
            f"</span> · {_e(customer.last_payment)}</td></tr>"
        )
        text.append(
            f"{customer.name} ({customer.customer_id}) - {customer.contact} - {customer.last_payment}"
        )
        for invoice, instalment, due, days, amount, escalation in customer.invoices[: body_rows - shown]:
            label = f"{invoice}" + (f" / {instalment}" if instalment and instalment > 1 else "")
            html_rows.append(
                f"<tr><td style='{CELL}'>{_e(label)}</td><td style='{CELL}'>{_e(due)}</td>"
                f"<td style='{NUMBER}'>{days}</td><td style='{NUMBER}'>{_e(money(amount))}</td>"
                f"<td style='{CELL}'>{_e(escalation)}</td></tr>"
            )
            text.append(f"  {label} | due {due} | {days} days | {money(amount)} | {escalation}")
            shown += 1
        html_rows.append(
            f"<tr data-subtotal='{_e(customer.customer_id)}'><td colspan='3' style='{CELL}'><b>Subtotal "
            f"{_e(customer.name)}</b></td><td style='{NUMBER}'><b>{_e(customer.currency)} "
            f"{_e(money(customer.subtotal))}</b></td><td style='{CELL}'></td></tr>"
        )
        text.append(f"  subtotal {customer.currency} {money(customer.subtotal)}")
    head = "".join(
        f"<th style='{CELL};text-align:{align}'>{label}</th>"
        for label, align in (("Invoice", "left"), ("Due date", "left"), ("Days past due", "right"),
                             ("Open amount", "right"), ("Escalation", "left"))
    )  # fmt: skip
    table = f"<table data-section='overdue' style='border-collapse:collapse;font-size:13px'><tr>{head}</tr>{''.join(html_rows)}</table>"
    return table, text, shown


def _simple_table(
    section: str, columns: Sequence[str], records: Sequence[tuple], money_at: Sequence[int]
) -> str:
    head = "".join(f"<th style='{CELL};text-align:left'>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='{NUMBER if i in money_at else CELL}'>{_e(money(v) if i in money_at else v)}</td>"
            for i, v in enumerate(r)
        )
        + "</tr>"
        for r in records
    )
    return f"<table data-section='{section}' style='border-collapse:collapse;font-size:13px'><tr>{head}</tr>{body}</table>"


def _message(
    alert_type: str,
    as_of: date,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    name: str,
    book: Book,
    body_rows: int,
) -> AlertMessage:
    customers = list(book.overdue.values())
    total = sum((c.subtotal for c in customers), Decimal(0))
    invoices = sum(len(c.invoices) for c in customers)
    table, text, shown = _overdue_table(customers, body_rows)
    more = (
        f" The first {shown} of {invoices} invoices are below; the attached CSV has all of them."
        if shown < invoices
        else ""
    )
    intro = (
        f"{name}: {len(customers)} of your customers have {invoices} overdue invoices, {money(total)} in total, "
        f"as of {as_of}.{more} Call the contact shown; the largest amounts come first."
    )
    sections = [
        f"<h3>Overdue, by customer</h3>{table}" if customers else "<p>Nothing of yours is overdue.</p>"
    ]
    text_sections = [intro, *text]
    if book.stops:
        sections.append(
            f"<h3>Stop shipment ({len(book.stops)})</h3><p>Ship nothing on credit to these customers.</p>"
            + _simple_table("stop", STOP_COLUMNS[1:], [r[1:] for r in book.stops], (3, 4, 5))
        )
        text_sections += ["", f"Stop shipment ({len(book.stops)}):"] + [
            f"  {r[1]}: {r[2]}" for r in book.stops
        ]
    if book.reviews:
        sections.append(
            f"<h3>Credit reviews due ({len(book.reviews)})</h3>"
            + _simple_table("reviews", REVIEW_COLUMNS[1:], [r[1:] for r in book.reviews], ())
        )
        text_sections += ["", f"Credit reviews due ({len(book.reviews)}):"] + [
            f"  {r[1]}: next review {r[4]} ({r[5]})" for r in book.reviews
        ]
    attachments = [(f"overdue_{as_of}.csv", csv_attachment(OVERDUE_CSV, book.overdue_rows), "text/csv")]
    if book.stops:
        attachments.append(
            (f"stop_shipment_{as_of}.csv", csv_attachment(STOP_COLUMNS, book.stops), "text/csv")
        )
    if book.reviews:
        attachments.append(
            (f"reviews_due_{as_of}.csv", csv_attachment(REVIEW_COLUMNS, book.reviews), "text/csv")
        )
    subject = f"[KAM] {invoices} overdue invoices, {money(total)} overdue"
    subject += f", {len(book.stops)} on stop" if book.stops else ""
    subject += f", {len(book.reviews)} reviews due" if book.reviews else ""
    return AlertMessage(
        alert_type=alert_type,
        as_of_date=as_of,
        to=to,
        cc=cc,
        subject=f"{subject}, as of {as_of}",
        html=(
            "<html><body style='font-family:sans-serif'>"
            f"<h2>Your customers as of {_e(as_of)}</h2><p>{_e(intro)}</p>{''.join(sections)}"
            "<p style='color:#666'>Sent by the KAM warehouse from the published marts.</p></body></html>"
        ),
        text="\n".join(text_sections),
        attachments=attachments,
    )


def manager_daily_messages(
    conn: psycopg.Connection, as_of: date, recipients: Recipients
) -> list[AlertMessage]:
    """One message per account manager with anything to act on, and one to the finance
    manager with only the escalated customers. Rows whose manager address is missing or not
    one valid address go to the finance list, copied to data engineering with the addresses
    to fix (AM03@Example.com and am03@example.com are one manager)."""
    books, unusable = _collect(conn)
    messages = []
    for key, book in books.items():
        if book.is_empty():
            continue
        name = book.name
        if key == UNASSIGNED and unusable:
            name = f"{UNASSIGNED}; addresses to fix in the ERP: {', '.join(sorted(unusable))}"
        to = (key,) if key != UNASSIGNED else recipients.finance
        cc = recipients.data_engineering if key == UNASSIGNED and unusable else ()
        messages.append(_message("manager_daily", as_of, to, cc, name, book, recipients.body_rows))
    escalated = Book("Finance manager")
    for book in books.values():
        for customer_id, customer in book.overdue.items():
            if customer.escalated:
                escalated.overdue[customer_id] = customer
                escalated.overdue_rows += [r for r in book.overdue_rows if r[0] == customer_id]
    if escalated.overdue:
        messages.append(
            _message(
                "escalations", as_of, recipients.finance_manager, (), "Escalated customers", escalated,
                recipients.body_rows,
            )
        )  # fmt: skip
    return messages
