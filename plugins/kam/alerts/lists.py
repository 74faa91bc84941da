"""The lists credit control receives: a ListSpec says what a list reads from the published
marts and how it reads; one module per alert type defines its own (the account managers'
daily message is manager_daily's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import psycopg

from kam.alerts.render import AlertMessage, cells, csv_attachment, html_table, money, page
from kam.warehouse.publish import current_as_of

UNASSIGNED = "(no account manager)"


class MartsNotPublished(RuntimeError):
    """The marts are not published for the date the alerts are for."""


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
