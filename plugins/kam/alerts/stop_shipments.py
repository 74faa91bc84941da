"""The stop-shipment list, whole, to credit control (each manager finds their part in their
daily message)."""

from __future__ import annotations

from datetime import date

import psycopg

from kam.alerts.lists import ListSpec, list_message
from kam.alerts.render import AlertMessage
from kam.settings import Recipients

STOP_SHIPMENT = ListSpec(
    alert_type="stop_shipment",
    title="Stop shipment",
    query="""
        select account_manager, account_manager_email, false,
               customer_name, customer_id, replace(stop_reason, '_', ' '), credit_grade, credit_limit,
               exposure, amount_over_limit, oldest_overdue_invoice_number, oldest_days_past_due, stop_since_date
        from marts.stop_shipments
        order by account_manager_email nulls last, stop_reason desc, amount_over_limit desc, customer_id""",
    columns=(
        "Customer",
        "Customer ID",
        "Why",
        "Grade",
        "Credit limit",
        "Exposure",
        "Over limit",
        "Oldest overdue invoice",
        "Days past due",
        "Stopped since",
    ),
    money_columns=(4, 5, 6),
    subject="[KAM] Stop shipment: {count} customers over their credit limit or on cash in advance, as of {as_of}",
    intro="{name}: do not ship to these {count} customers on credit, as of {as_of}: those over their credit limit "
    "until their exposure is back under it, those on cash in advance only against prepayment ({total} over in "
    "total). Collect the oldest overdue invoices first.",
    total_column=6,
)


def stop_shipment_messages(
    conn: psycopg.Connection, as_of: date, recipients: Recipients
) -> list[AlertMessage]:
    """The whole stop list to credit control."""
    everyone = conn.execute(STOP_SHIPMENT.query).fetchall()
    if not everyone:
        return []
    return [
        list_message(
            STOP_SHIPMENT,
            as_of,
            recipients.credit_control,
            "Credit control",
            [tuple(r[3:]) for r in everyone],
        )
    ]
