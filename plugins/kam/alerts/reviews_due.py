"""The credit reviews due, monthly, to credit control."""

from __future__ import annotations

from datetime import date

import psycopg

from kam.alerts.lists import ListSpec, list_message
from kam.alerts.render import AlertMessage
from kam.settings import Recipients

REVIEWS_DUE = ListSpec(
    alert_type="reviews_due",
    title="Credit reviews due",
    query="""
        select null, null, false, customer_name, customer_id, credit_grade, is_key_account, last_review_date,
               next_review_date, case when is_review_overdue then 'overdue' else 'due' end, credit_limit
        from marts.credit_grades
        where is_review_due
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
