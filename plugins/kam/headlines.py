"""The headline figures as marts.finance_kpis_daily states them, with the change since the
previous published day: what the report, the finance email and the dashboards open with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import psycopg
from psycopg import sql

# (column of finance_kpis, label, how it is shown); the figures themselves are computed in dbt
MEASURES = (
    ("total_receivables", "Total receivables", "money"),
    ("overdue_receivables", "Overdue receivables", "money"),
    ("overdue_share", "Overdue share", "share"),
    ("dso_days", "Days sales outstanding", "days"),
    ("collection_rate_12m", "Collection rate, 12 months", "share"),
    ("customers_on_stop", "Customers on stop", "count"),
    ("recoverable_fees_12m", "Fees to recover, 12 months", "money"),
    ("key_account_revenue_share", "Key-account revenue share", "share"),
)


def shown(kind: str, value: Decimal | int | None, currency: str = "") -> str:
    if value is None:
        return "n/a"
    if kind == "money":
        return f"{currency} {Decimal(value):,.2f}".strip()
    if kind == "share":
        return f"{Decimal(value) * 100:.1f} %"
    if kind == "days":
        return f"{Decimal(value):,.1f} days"
    return f"{int(value):,}"


@dataclass(frozen=True)
class Figure:
    label: str
    kind: str
    value: Decimal | int | None
    previous: Decimal | int | None
    currency: str

    @property
    def text(self) -> str:
        return shown(self.kind, self.value, self.currency)

    def change(self, previous_day: date | None) -> str:
        if previous_day is None:
            return "no earlier published day to compare with"
        if self.value is None or self.previous is None:
            return f"not comparable with {previous_day}"
        delta = Decimal(self.value) - Decimal(self.previous)
        if delta == 0:
            return f"unchanged since {previous_day}"
        sign = "+" if delta > 0 else "-"
        return f"{sign}{shown(self.kind, abs(delta), self.currency)} since {previous_day}"


@dataclass(frozen=True)
class CompanyHeadlines:
    company_id: str
    company_name: str
    currency: str
    as_of: date
    previous_day: date | None
    figures: tuple[Figure, ...]


def headlines(conn: psycopg.Connection, as_of: date) -> list[CompanyHeadlines]:
    """Per company, the day's figures and the latest published day before it."""
    columns = sql.SQL(", ").join(sql.Identifier(column) for column, _, _ in MEASURES)
    query = sql.SQL(
        "select company_id, company_name, company_currency, as_of_date, {columns} from marts.finance_kpis_daily"
        " where as_of_date = %(as_of)s or as_of_date = (select max(as_of_date) from marts.finance_kpis_daily"
        " where as_of_date < %(as_of)s) order by company_id, as_of_date desc"
    ).format(columns=columns)
    by_company: dict[str, list[tuple]] = {}
    for row in conn.execute(query, {"as_of": as_of}):
        by_company.setdefault(row[0], []).append(row)
    result = []
    for company_id, days in by_company.items():
        today = days[0]
        if today[3] != as_of:
            continue  # a company that was in the book before but is not now
        before = days[1] if len(days) > 1 else None
        result.append(
            CompanyHeadlines(
                company_id=company_id,
                company_name=today[1],
                currency=today[2],
                as_of=as_of,
                previous_day=before[3] if before else None,
                figures=tuple(
                    Figure(label, kind, today[4 + i], before[4 + i] if before else None, today[2])
                    for i, (_, label, kind) in enumerate(MEASURES)
                ),
            )
        )
    return result
