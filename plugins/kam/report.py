"""`kam report`: one self-contained HTML page (inline SVG, no CDN, works offline) for
directors: the Pareto curve, aging over time, grades and their transitions, fee overcharge
by distributor, and the top of the key-account scorecard. Reads the published marts only."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from psycopg import sql

from kam.settings import Settings
from kam.warehouse.connect import connect

WIDTH, HEIGHT, PAD = 640, 260, 40
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


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _figure(name: str, title: str, body: str, note: str = "") -> str:
    return (
        f"<figure data-chart='{name}'><figcaption>{_esc(title)}</figcaption>"
        f"<svg viewBox='0 0 {WIDTH} {HEIGHT}' width='{WIDTH}' height='{HEIGHT}' role='img'>{body}</svg>"
        f"<p class='note'>{_esc(note)}</p></figure>"
    )


def _axes(y_max: float, y_label: str) -> str:
    lines = [
        f"<line x1='{PAD}' y1='{HEIGHT - PAD}' x2='{WIDTH - 10}' y2='{HEIGHT - PAD}' stroke='#333'/>",
        f"<line x1='{PAD}' y1='10' x2='{PAD}' y2='{HEIGHT - PAD}' stroke='#333'/>",
        f"<text x='4' y='14' font-size='10'>{_esc(y_label)}</text>",
        f"<text x='4' y='{HEIGHT - PAD}' font-size='10'>0</text>",
        f"<text x='4' y='24' font-size='10'>{y_max:,.0f}</text>",
    ]
    return "".join(lines)


def bar_chart(
    name: str, title: str, labels: Sequence[str], values: Sequence[float], y_label: str, note: str = ""
) -> str:
    top = max([float(v) for v in values] + [1.0])
    slot = (WIDTH - PAD - 20) / max(len(values), 1)
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = (HEIGHT - PAD - 20) * float(value) / top
        x = PAD + 5 + i * slot
        bars.append(
            f"<rect x='{x:.1f}' y='{HEIGHT - PAD - height:.1f}' width='{max(slot - 6, 1):.1f}' "
            f"height='{height:.1f}' fill='{PALETTE[i % len(PALETTE)]}'><title>{_esc(label)}: {float(value):,.2f}"
            f"</title></rect><text x='{x:.1f}' y='{HEIGHT - PAD + 12}' font-size='9'>{_esc(label)[:10]}</text>"
        )
    return _figure(name, title, _axes(top, y_label) + "".join(bars), note)


def pareto_chart(shares: Sequence[float], cut_offs: dict[str, float]) -> str:
    """Cumulative revenue share by customers ranked by revenue, with the tier cut-offs."""
    n = max(len(shares), 1)
    points = [f"{PAD},{HEIGHT - PAD}"] + [
        f"{PAD + (WIDTH - PAD - 20) * (i + 1) / n:.1f},{HEIGHT - PAD - (HEIGHT - PAD - 20) * float(s):.1f}"
        for i, s in enumerate(shares)
    ]
    body = (
        _axes(100, "% of net revenue")
        + f"<polyline points='{' '.join(points)}' fill='none' stroke='#2f6690' stroke-width='2'/>"
    )
    for tier, cut in cut_offs.items():
        y = HEIGHT - PAD - (HEIGHT - PAD - 20) * float(cut)
        body += (
            f"<line x1='{PAD}' y1='{y:.1f}' x2='{WIDTH - 10}' y2='{y:.1f}' stroke='#e76f51' stroke-dasharray='4'/>"
            f"<text x='{WIDTH - 80}' y='{y - 3:.1f}' font-size='10'>tier {tier} &lt; {float(cut) * 100:.0f}%</text>"
        )
    return _figure(
        "pareto",
        "Pareto curve: cumulative net revenue by customer rank",
        body,
        "x: customers ranked by trailing-12-month net revenue; dashed: the tier cut-offs (tier_policy seed)",
    )


def stacked_aging_chart(
    dates: Sequence[date], buckets: Sequence[str], values: dict[tuple[date, str], float]
) -> str:
    totals = [sum(float(values.get((d, b), 0)) for b in buckets) for d in dates]
    top = max(totals + [1.0])
    slot = (WIDTH - PAD - 20) / max(len(dates), 1)
    parts = []
    for i, day in enumerate(dates):
        y = HEIGHT - PAD
        for j, bucket in enumerate(buckets):
            height = (HEIGHT - PAD - 20) * float(values.get((day, bucket), 0)) / top
            y -= height
            parts.append(
                f"<rect x='{PAD + 5 + i * slot:.1f}' y='{y:.1f}' width='{max(slot - 4, 1):.1f}' "
                f"height='{height:.1f}' fill='{PALETTE[j % len(PALETTE)]}'><title>{day} {_esc(bucket)}: "
                f"{float(values.get((day, bucket), 0)):,.2f}</title></rect>"
            )
    legend = "".join(
        f"<rect x='{PAD + 10 + j * 70}' y='2' width='8' height='8' fill='{PALETTE[j % len(PALETTE)]}'/>"
        f"<text x='{PAD + 20 + j * 70}' y='10' font-size='9'>{_esc(b)}</text>"
        for j, b in enumerate(buckets)
    )
    return _figure(
        "aging",
        "Receivables by aging bucket over time",
        _axes(top, "open amount") + "".join(parts) + legend,
        f"{len(dates)} published as-of date(s), from marts.ar_aging_daily",
    )


def transition_chart(matrix: dict[tuple[str, str], int], grades: Sequence[str]) -> str:
    cell = 22
    top = max(list(matrix.values()) + [1])
    body = []
    for i, before in enumerate(grades):
        body.append(f"<text x='2' y='{40 + i * cell + 15}' font-size='10'>{before}</text>")
        body.append(f"<text x='{50 + i * cell}' y='30' font-size='10'>{grades[i]}</text>")
        for j, after in enumerate(grades):
            count = matrix.get((before, after), 0)
            shade = 255 - int(200 * count / top)
            body.append(
                f"<rect x='{45 + j * cell}' y='{40 + i * cell}' width='{cell - 2}' height='{cell - 2}' "
                f"fill='rgb({shade},{shade},255)'><title>{before} -> {after}: {count}</title></rect>"
            )
    body.append(
        "<text x='260' y='120' font-size='11'>rows: grade at the previous run</text>"
        "<text x='260' y='136' font-size='11'>columns: grade now</text>"
    )
    return _figure(
        "transitions",
        "Credit grade transitions (previous run -> now)",
        "".join(body),
        "from marts.credit_grade_history; a new customer's previous grade is its current one",
    )


def scorecard_table(records: list[tuple]) -> str:
    head = "".join(
        f"<th>{_esc(c)}</th>" for c in ("Rank", "Customer", "Tier", "Grade", "Overdue", "Attention", "Why")
    )
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in r) + "</tr>" for r in records)
    return f"<section data-table='scorecard'><h2>Key accounts that need attention</h2><table>{head}{body}</table></section>"


def build_report(url: str, settings: Settings) -> Path:
    with connect(url) as conn:
        as_of = conn.execute("select max(as_of_date) from marts.customer_tiers").fetchone()[0]
        shares = [
            r[0]
            for r in conn.execute(
                "select cumulative_share from marts.customer_tiers where account_id = customer_id order by revenue_rank, customer_id"
            )
        ]
        cut_offs = dict(
            conn.execute(
                "select tier, max_cumulative_share_before from staging.tier_policy where max_cumulative_share_before < 1 order by 2"
            )
        )
        # the current marts' buckets (the aging_buckets seed's): history keeps a retired one's column
        bucket_columns = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' and table_name = 'ar_aging'"
                " and column_name like 'bucket\\_%%' order by ordinal_position"
            )
        ]
        grade_scale = [
            r[0]
            for r in conn.execute("select credit_grade from staging.credit_grade_scale order by grade_order")
        ]
        aging: dict[tuple[date, str], float] = {}
        for column in bucket_columns:
            query = sql.SQL("select as_of_date, sum({}) from marts.ar_aging_daily group by 1").format(
                sql.Identifier(column)
            )
            for day, total in conn.execute(query):
                aging[(day, column.removeprefix("bucket_"))] = total
        dates = sorted({d for d, _ in aging})
        grades = dict(conn.execute("select credit_grade, count(*) from marts.credit_grades group by 1"))
        matrix = {
            (r[0] or r[1], r[1]): r[2]
            for r in conn.execute(
                "select previous_grade, credit_grade, count(*) from marts.credit_grade_history "
                "where as_of_date = (select max(as_of_date) from marts.credit_grade_history) group by 1, 2"
            )
        }
        fees = conn.execute(
            "select coalesce(distributor_name, distributor_id), sum(recoverable_amount) from "
            "marts.fee_recovery_by_distributor group by 1 having sum(recoverable_amount) > 0 order by 2 desc "
            "limit 15"
        ).fetchall()
        top = conn.execute(
            "select attention_rank, customer_name, tier, credit_grade, overdue_amount, attention_score, "
            "attention_reasons from marts.key_account_scorecard where attention_score > 0 "
            "order by attention_rank limit 20"
        ).fetchall()
    charts = [
        pareto_chart(shares, cut_offs),
        stacked_aging_chart(dates, [c.removeprefix("bucket_") for c in bucket_columns], aging),
        bar_chart(
            "grades",
            "Customers by credit grade",
            grade_scale,
            [grades.get(g, 0) for g in grade_scale],
            "customers",
        ),
        transition_chart(matrix, grade_scale),
        bar_chart(
            "fees",
            "Fee overcharge and unauthorised deductions to recover, by distributor",
            [f[0] for f in fees] or ["none"],
            [f[1] for f in fees] or [0],
            "to recover",
        ),
    ]
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>KAM report {as_of}</title><style>"
        "body{font-family:sans-serif;margin:24px;color:#222} figure{display:inline-block;margin:12px;vertical-align:top}"
        "figcaption{font-weight:bold;margin-bottom:4px} .note{color:#666;font-size:12px;max-width:640px}"
        "table{border-collapse:collapse;font-size:13px} td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}"
        f"</style></head><body><h1>Key-account management report, as of {_esc(as_of)}</h1>"
        + "".join(charts)
        + scorecard_table(top)
        + RENDER_CHECK
        + "</body></html>"
    )
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    path = settings.report_dir / f"kam_report_{as_of}.html"
    path.write_text(page, encoding="utf-8")
    (settings.report_dir / "index.html").write_text(page, encoding="utf-8")
    return path
