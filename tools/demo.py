"""`make demo`: the whole pipeline on the embedded default, then a short summary."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from psycopg import sql

from kam.contract import load_contract
from kam.local.runner import run_dag, run_log_path
from kam.report import build_report
from kam.settings import Settings
from kam.transform import read_run_results
from kam.warehouse.connect import connect, mask_url
from kam.warehouse.server import ready_warehouse
from tools.synthetic import generate


def summary_lines(url: str, settings: Settings) -> list[str]:
    lines = []
    with connect(url) as conn:
        counts = {
            name: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier("raw", name))
            ).fetchone()[0]
            for name in sorted(load_contract())
        }
        quarantined = conn.execute(
            "select count(*) from audit.quarantine q join audit.batches b using (batch_id) "
            "where b.status = 'loaded'"
        ).fetchone()[0]
        marts = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts'"
        ).fetchone()[0]
        checked, passed = conn.execute(
            "select count(*), count(*) filter (where success) from audit.validation_results "
            "where run_id = (select run_id from audit.publications order by publication_id desc "
            "limit 1)"
        ).fetchone()
    lines.append("raw rows: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    lines.append(f"quarantined rows (current batches): {quarantined}")
    lines.append(
        f"dbt: {read_run_results(settings.dbt_target_dir).summary()}; {marts} relations published in `marts`"
    )
    lines.append(
        f"quality gates: {passed} of {checked} expectations passed (audit.validation_results; data docs under "
        f"{settings.home / 'gx'})"
    )
    return lines


def run_demo(
    settings: Settings, scale: float, seed: int, as_of: date, progress: Callable[[str], None] = print
) -> int:
    progress(f"KAM demo in {settings.home} — as of {as_of}")
    url = ready_warehouse(settings)
    progress(f"1/4 warehouse ready: {mask_url(url)}")
    progress(f"2/4 generating scale-{scale:g} ERP and billing files into {settings.landing_dir}")
    generate(settings.landing_dir, scale, seed, as_of, progress=progress)
    for step, dag_id, what in (
        ("3/4", "kam_daily", "extract -> load -> dbt build -> publish"),
        ("4/4", "kam_alerts", "overdue lists to account managers, summary to finance"),
    ):
        progress(f"{step} running {dag_id} through Airflow ({what})")
        code = run_dag(dag_id, as_of, settings, url, progress=progress, quiet=True)
        if code != 0:
            progress(
                f"{dag_id} FAILED (exit {code}); the whole output: {run_log_path(settings, dag_id, as_of)}"
            )
            return code
    progress("")
    progress("=== KAM demo: done ===")
    for line in summary_lines(url, settings):
        progress(line)
    outbox = sorted(settings.outbox_dir.glob("*.eml")) if settings.outbox_dir.exists() else []
    progress(
        f"emails: {len(outbox)} messages in {settings.outbox_dir} (audit.alert_ledger says what was sent when)"
    )
    progress(f"report: {build_report(url, settings)}")
    progress(f"warehouse: {mask_url(url)}  (full URL: .venv/bin/kam warehouse url; BI: kam warehouse bi-url)")
    progress("next: psql \"$(.venv/bin/kam warehouse url)\" -c 'select * from marts.ar_aging limit 5'")
    progress(f"      ground truth of the injected cases: {settings.landing_dir / 'ground_truth.json'}")
    return 0
