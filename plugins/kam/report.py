"""`kam report`: one self-contained HTML page (inline SVG, no CDN, works offline) a director
reads in ten seconds: the headline figures with their change since the previous published
day, then the Pareto curve, aging over time, grades and their transitions, fees to recover
by distributor, each account manager's book, and the top of the key-account scorecard.
Every value is printed on the page (nothing needs hovering). Reads the published marts only."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from psycopg import sql

from kam.headlines import CompanyHeadlines, headlines, shown
from kam.settings import Settings
from kam.warehouse.connect import connect
from kam.warehouse.publish import current_as_of

WIDTH, PAD = 720, 40
LABEL_WIDTH = 230  # room for a distributor's whole name left of its bar
PALETTE = ("#2f6690", "#3a7ca5", "#81c3d7", "#f4a259", "#e76f51", "#bc4749", "#6a040f", "#7b2cbf", "#adb5bd")

# After layout, each chart reports whether it drew something visible (the browser test reads it).
RENDER_CHECK = """
<script>
document.querySelectorAll('figure[data-chart]').forEach(function (figure) {
  var svg = figure.querySelector('svg');
  var shapes = svg ? svg.querySelectorAll('rect, path, circle, polyline, line').length : 0;
  var box = svg ? svg.getBBox() : {width: 0, height: 0};
  figure.dataset.rendered = (shapes > 0 && box.width > 0 && box.height > 0) ? 'yes' : 'no';
});
</script>
"""

STYLE = (
    "body{font-family:'Noto Sans','DejaVu Sans',sans-serif;margin:24px;color:#222;max-width:1500px}"
    "h1{margin-bottom:2px} .sub{color:#555;margin-top:0}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0 20px}"
    ".card{border:1px solid #ccd;border-radius:6px;padding:10px 14px;min-width:190px}"
    ".card .label{font-size:12px;color:#555} .card .value{font-size:22px;font-weight:bold;white-space:nowrap}"
    ".card .change{font-size:12px;color:#555}"
    "figure{display:inline-block;margin:12px;vertical-align:top}"
    "figcaption{font-weight:bold;margin-bottom:4px} .note{color:#555;font-size:12px;max-width:700px}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:16px}"
    "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
)


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _figure(name: str, title: str, body: str, height: int, note: str = "") -> str:
    return (
        f"<figure data-chart='{name}'><figcaption>{_esc(title)}</figcaption>"
        f"<svg viewBox='0 0 {WIDTH} {height}' width='{WIDTH}' height='{height}' role='img' "
        f"font-family='sans-serif'>{body}</svg><p class='note'>{_esc(note)}</p></figure>"
    )


def horizontal_bars(
    name: str, title: str, labels: Sequence[str], values: Sequence[float], unit: str, note: str = ""
) -> str:
    """One bar per label, the label in full on the left and the value printed at the bar's end."""
    row = 22
    top = max([float(v) for v in values] + [1.0])
    span = WIDTH - LABEL_WIDTH - 150
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 10 + i * row
        length = span * float(value) / top
        body.append(
            f"<text x='{LABEL_WIDTH - 6}' y='{y + 14}' font-size='12' text-anchor='end'>{_esc(label)}</text>"
            f"<rect x='{LABEL_WIDTH}' y='{y + 3}' width='{max(length, 1):.1f}' height='{row - 6}' "
            f"fill='{PALETTE[i % len(PALETTE)]}'/>"
            f"<text x='{LABEL_WIDTH + length + 6:.1f}' y='{y + 14}' font-size='12'>{_esc(unit_value(value, unit))}</text>"
        )
    return _figure(name, title, "".join(body), 20 + row * max(len(labels), 1), note)


def unit_value(value: float | Decimal, unit: str) -> str:
    return f"{int(value):,}" if unit == "count" else shown("money", value, unit)


def pareto_chart(shares: Sequence[float], cut_offs: dict[str, float]) -> str:
    """Cumulative revenue share by customers ranked by revenue, with the tier cut-offs."""
    height = 280
    n = max(len(shares), 1)
    plot_w, plot_h = WIDTH - PAD - 20, height - PAD - 20
    points = [f"{PAD},{height - PAD}"] + [
        f"{PAD + plot_w * (i + 1) / n:.1f},{height - PAD - plot_h * float(s):.1f}"
        for i, s in enumerate(shares)
    ]
    body = (
        f"<line x1='{PAD}' y1='{height - PAD}' x2='{PAD + plot_w}' y2='{height - PAD}' stroke='#333'/>"
        f"<line x1='{PAD}' y1='20' x2='{PAD}' y2='{height - PAD}' stroke='#333'/>"
        f"<text x='{PAD - 4}' y='24' font-size='11' text-anchor='end'>100%</text>"
        f"<text x='{PAD - 4}' y='{height - PAD}' font-size='11' text-anchor='end'>0%</text>"
        f"<text x='{PAD}' y='{height - 14}' font-size='11'>customers ranked by net revenue, 1 to {n:,}</text>"
        f"<polyline points='{' '.join(points)}' fill='none' stroke='#2f6690' stroke-width='2'/>"
    )
    for tier, cut in cut_offs.items():
        y = height - PAD - plot_h * float(cut)
        reached = next((i + 1 for i, s in enumerate(shares) if float(s) >= float(cut)), n)
        body += (
            f"<line x1='{PAD}' y1='{y:.1f}' x2='{PAD + plot_w}' y2='{y:.1f}' stroke='#e76f51' stroke-dasharray='4'/>"
            f"<text x='{PAD + plot_w - 4}' y='{y + 14:.1f}' font-size='11' text-anchor='end'>tier {tier}: the first"
            f" {float(cut) * 100:.0f}% of revenue = {reached:,} customers</text>"
        )
    return _figure(
        "pareto",
        "Pareto curve: cumulative net revenue by customer rank",
        body,
        height,
        "dashed: the tier cut-offs (tier_policy seed) and how many customers reach them",
    )


def aging_chart(
    dates: Sequence[date], buckets: Sequence[str], values: dict[tuple[date, str], float], currency: str
) -> str:
    """Stacked columns per published day; with one day there is no trend, and it says so."""
    if len(dates) <= 1:
        day = dates[0] if dates else None
        return horizontal_bars(
            "aging",
            f"Receivables by aging bucket on {day}" if day else "Receivables by aging bucket",
            list(buckets),
            [float(values.get((day, b), 0)) for b in buckets],
            currency,
            "Only one day is published, so there is no trend yet: the trend over time appears once a "
            "second day is published (marts.ar_aging_daily).",
        )
    height = 300
    totals = [sum(float(values.get((d, b), 0)) for b in buckets) for d in dates]
    top = max(totals + [1.0])
    plot_w, plot_h = WIDTH - PAD - 20, height - PAD - 60
    slot = plot_w / len(dates)
    parts = []
    for i, day in enumerate(dates):
        y = height - PAD
        for j, bucket in enumerate(buckets):
            segment = plot_h * float(values.get((day, bucket), 0)) / top
            y -= segment
            parts.append(
                f"<rect x='{PAD + 2 + i * slot:.1f}' y='{y:.1f}' width='{max(slot - 3, 1):.1f}' "
                f"height='{segment:.1f}' fill='{PALETTE[j % len(PALETTE)]}'/>"
            )
    every = max(len(dates) // 6, 1)
    for i in range(0, len(dates), every):
        parts.append(
            f"<text x='{PAD + 2 + i * slot:.1f}' y='{height - PAD + 14}' font-size='11'>{dates[i]}</text>"
        )
    latest = f"{dates[-1]}: {shown('money', totals[-1], currency)}"
    parts.append(f"<text x='{WIDTH - 10}' y='44' font-size='12' text-anchor='end'>{_esc(latest)}</text>")
    legend = "".join(
        f"<rect x='{PAD + j * 95}' y='4' width='10' height='10' fill='{PALETTE[j % len(PALETTE)]}'/>"
        f"<text x='{PAD + 14 + j * 95}' y='13' font-size='11'>{_esc(b)}</text>"
        for j, b in enumerate(buckets)
    )
    return _figure(
        "aging",
        "Receivables by aging bucket over time",
        legend + "".join(parts),
        height,
        f"{len(dates)} published days, {dates[0]} to {dates[-1]} (marts.ar_aging_daily), in {currency}",
    )


def transition_chart(matrix: dict[tuple[str, str], int], grades: Sequence[str]) -> str:
    cell = 34
    top = max(list(matrix.values()) + [1])
    body = [
        "<text x='0' y='14' font-size='11'>rows: grade at the previous run; columns: grade now</text>",
    ]
    for i, grade in enumerate(grades):
        body.append(f"<text x='36' y='{50 + i * cell + 21}' font-size='12' text-anchor='end'>{grade}</text>")
        body.append(
            f"<text x='{42 + i * cell + cell / 2:.0f}' y='42' font-size='12' text-anchor='middle'>{grade}</text>"
        )
        for j, after in enumerate(grades):
            count = matrix.get((grade, after), 0)
            shade = 255 - int(200 * count / top)
            ink = "#fff" if shade < 130 else "#222"
            body.append(
                f"<rect x='{42 + j * cell}' y='{50 + i * cell}' width='{cell - 2}' height='{cell - 2}' "
                f"fill='rgb({shade},{shade},255)'/>"
                + (
                    f"<text x='{42 + j * cell + cell / 2 - 1:.0f}' y='{50 + i * cell + 21}' font-size='11' "
                    f"text-anchor='middle' fill='{ink}'>{count:,}</text>"
                    if count
                    else ""
                )
            )
    return _figure(
        "transitions",
        "Credit grade transitions (previous run to now), customers",
        "".join(body),
        60 + cell * len(grades),
        "from marts.credit_grade_history; a new customer's previous grade is its current one",
    )


def _cards(company: CompanyHeadlines) -> str:
    cards = "".join(
        f"<div class='card' data-figure='{_esc(f.label)}'><div class='label'>{_esc(f.label)}</div>"
        f"<div class='value'>{_esc(f.text)}</div><div class='change'>{_esc(f.change(company.previous_day))}</div></div>"
        for f in company.figures
    )
    return (
        f"<section data-headlines='{_esc(company.company_id)}'><h2>{_esc(company.company_name)} "
        f"({_esc(company.currency)})</h2><div class='cards'>{cards}</div></section>"
    )


def _table(
    name: str, title: str, columns: Sequence[tuple[str, bool]], records: Sequence[Sequence[str]]
) -> str:
    head = "".join(f"<th class='{'num' if numeric else ''}'>{_esc(c)}</th>" for c, numeric in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'num' if numeric else ''}'>{_esc(v)}</td>"
            for v, (_, numeric) in zip(r, columns, strict=True)
        )
        + "</tr>"
        for r in records
    )
    return f"<section data-table='{name}'><h2>{_esc(title)}</h2><table>{head}{body}</table></section>"


def build_report(url: str, settings: Settings) -> Path:
    with connect(url) as conn:
        as_of = current_as_of(conn)
        companies = headlines(conn, as_of)
        currency = conn.execute(
            "select company_currency from marts.finance_kpis order by is_default_company desc limit 1"
        ).fetchone()[0]
        shares = [
            r[0]
            for r in conn.execute(
                "select cumulative_share from marts.customer_tiers where account_id = customer_id"
                " order by revenue_rank, customer_id"
            )
        ]
        cut_offs = dict(
            conn.execute(
                "select tier, max_cumulative_share_before from staging.tier_policy"
                " where max_cumulative_share_before < 1 order by 2"
            )
        )
        # the current marts' buckets (the aging_buckets seed's): history keeps a retired one's column
        bucket_columns = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'marts'"
                " and table_name = 'ar_aging' and column_name like 'bucket\\_%%' order by ordinal_position"
            )
        ]
        grade_scale = [
            r[0]
            for r in conn.execute("select credit_grade from staging.credit_grade_scale order by grade_order")
        ]
        aging: dict[tuple[date, str], float] = {}
        for column in bucket_columns:
            query = sql.SQL(
                "select as_of_date, sum({}) from marts.ar_aging_daily where company_currency = %s group by 1"
            ).format(sql.Identifier(column))
            for day, total in conn.execute(query, (currency,)):
                aging[(day, column.removeprefix("bucket_"))] = total
        dates = sorted({d for d, _ in aging})
        grades = dict(conn.execute("select credit_grade, count(*) from marts.credit_grades group by 1"))
        matrix = {
            (r[0] or r[1], r[1]): r[2]
            for r in conn.execute(
                "select previous_grade, credit_grade, count(*) from marts.credit_grade_history "
                "where as_of_date = %s group by 1, 2",
                (as_of,),
            )
        }
        fees = conn.execute(
            "select coalesce(distributor_name, distributor_id), sum(recoverable_amount) from "
            "marts.fee_recovery_by_distributor group by 1 having sum(recoverable_amount) > 0 order by 2 desc "
            "limit 15"
        ).fetchall()
        managers = conn.execute(
            "select coalesce(account_manager, '(no account manager)'), count(*), sum(open_amount),"
            " sum(overdue_amount), count(*) filter (where is_stop_shipment),"
            " count(*) filter (where attention_score > 0),"
            " (array_agg(customer_name order by attention_rank))[1]"
            " from marts.key_account_scorecard group by 1 order by 4 desc nulls last, 1"
        ).fetchall()
        top = conn.execute(
            "select attention_rank, customer_name, tier, credit_grade, overdue_amount, attention_score, "
            "attention_reasons from marts.key_account_scorecard where attention_score > 0 "
            "order by attention_rank limit 20"
        ).fetchall()
    charts = [
        pareto_chart(shares, cut_offs),
        aging_chart(dates, [c.removeprefix("bucket_") for c in bucket_columns], aging, currency),
        horizontal_bars(
            "grades",
            "Customers by credit grade",
            grade_scale,
            [grades.get(g, 0) for g in grade_scale],
            "count",
        ),
        transition_chart(matrix, grade_scale),
        horizontal_bars(
            "fees",
            "Fee overcharge and unauthorised deductions to recover, by distributor",
            [f[0] for f in fees] or ["nothing to recover"],
            [f[1] for f in fees] or [0],
            currency,
        ),
    ]
    manager_table = _table(
        "managers",
        f"Each account manager's book ({currency})",
        (
            ("Account manager", False),
            ("Customers", True),
            ("Open receivables", True),
            ("Overdue", True),
            ("On stop", True),
            ("Need attention", True),
            ("First to call", False),
        ),
        [
            (m[0], f"{m[1]:,}", shown("money", m[2]), shown("money", m[3]), f"{m[4]:,}", f"{m[5]:,}", m[6])
            for m in managers
        ],
    )
    scorecard = _table(
        "scorecard",
        "Key accounts that need attention",
        (
            ("Rank", True),
            ("Customer", False),
            ("Tier", False),
            ("Grade", False),
            (f"Overdue ({currency})", True),
            ("Attention", True),
            ("Why", False),
        ),
        [(r[0], r[1], r[2], r[3], shown("money", r[4]), r[5], r[6]) for r in top],
    )
    compared = (
        f"changes are since {companies[0].previous_day}, the previous published day"
        if companies and companies[0].previous_day
        else "no earlier day is published, so there are no changes to show yet"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>KAM report {as_of}</title>"
        f"<style>{STYLE}</style></head><body><h1>Key-account management report, as of {_esc(as_of)}</h1>"
        f"<p class='sub'>From the published marts; {_esc(compared)}.</p>"
        + "".join(_cards(c) for c in companies)
        + "".join(charts)
        + manager_table
        + scorecard
        + RENDER_CHECK
        + "</body></html>"
    )
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    path = settings.report_dir / f"kam_report_{as_of}.html"
    path.write_text(page, encoding="utf-8")
    (settings.report_dir / "index.html").write_text(page, encoding="utf-8")
    return path
