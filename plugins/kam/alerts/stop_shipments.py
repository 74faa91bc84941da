"""The stop-shipment list: to credit control whole, to each affected manager their part."""

from __future__ import annotations

from datetime import date

import psycopg

from kam.alerts.lists import ListSpec, list_message, manager_messages
from kam.alerts.render import AlertMessage
from kam.settings import Recipients

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
