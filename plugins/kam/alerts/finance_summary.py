"""The finance summary: overdue by account manager and escalation, and the marts gate's
failure notice to data engineering."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg

from kam.alerts.lists import UNASSIGNED
from kam.alerts.render import AlertMessage, cells, csv_attachment, html_table, money, page, single_line
from kam.headlines import headlines
from kam.settings import Recipients


def finance_summary_message(conn: psycopg.Connection, as_of: date, recipients: Recipients) -> AlertMessage:
    """The finance list's view: the headline figures, then overdue by account manager and
    escalation, largest first."""
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
    figures = cells(
        (company.company_name, f.label, f.text, f.change(company.previous_day))
        for company in headlines(conn, as_of)
        for f in company.figures
    )
    intro = f"{sum(r[1] for r in records)} invoices are overdue, {money(total)} in total, as of {as_of}."
    return AlertMessage(
        alert_type="finance_summary",
        as_of_date=as_of,
        to=recipients.finance,
        subject=f"[KAM] Overdue summary: {money(total)} overdue, as of {as_of}",
        html=page(
            f"Overdue summary as of {as_of}",
            intro,
            html_table(("Company", "Headline figure", "Value", "Change"), figures)
            + html_table(columns, table_rows),
        ),
        text="\n".join(" | ".join(row) for row in figures)
        + "\n\n"
        + intro
        + "\n\n"
        + "\n".join(" | ".join(row) for row in table_rows),
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
