"""The overdue list: each account manager's overdue invoices, oldest first."""

from __future__ import annotations

from datetime import date

import psycopg

from kam.alerts.lists import ListSpec, manager_messages
from kam.alerts.render import AlertMessage
from kam.settings import Recipients

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


def overdue_messages(conn: psycopg.Connection, as_of: date, recipients: Recipients) -> list[AlertMessage]:
    """One email per account manager with only that manager's overdue invoices, oldest
    first; the finance manager is copied once an invoice reached that escalation."""
    return manager_messages(conn, OVERDUE, as_of, recipients, escalate_to=recipients.finance_manager)
