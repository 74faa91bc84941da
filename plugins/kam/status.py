"""`kam status`: what a data engineer asks first. What is published, how the last runs of
each DAG went (task by task, with their own durations), which batches wait or were refused,
what is in quarantine, and which messages went out or are still pending."""

from __future__ import annotations

from kam.local.runner import recent_runs
from kam.settings import Settings
from kam.warehouse.connect import connect
from kam.warehouse.publish import current_as_of

DAG_IDS = ("kam_daily", "kam_alerts")


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "?"


def _published(conn) -> list[str]:
    current = current_as_of(conn)
    if current is None:
        return ["published marts: none yet (run kam run --date YYYY-MM-DD)"]
    published_at, run_id = conn.execute(
        "select published_at, run_id from audit.publications where as_of_date = %s and is_current_marts"
        " and withdrawn_at is null order by publication_id desc limit 1",
        (current,),
    ).fetchone()
    days, first, last = conn.execute(
        "select count(distinct as_of_date), min(as_of_date), max(as_of_date) from audit.publications"
        " where withdrawn_at is null"
    ).fetchone()
    lines = [
        f"published marts: as of {current}, published {_when(published_at)} by run {run_id}",
        f"history: {days} published day(s), {first} .. {last}",
    ]
    for day, by, at, reason in conn.execute(
        "select as_of_date, withdrawn_by, max(withdrawn_at), withdrawal_reason from audit.publications"
        " where withdrawn_at is not null group by 1, 2, 4 order by 3 desc limit 5"
    ):
        lines.append(f"withdrawn: {day} by {by} at {_when(at)}: {reason}")
    return lines


def _runs(settings: Settings) -> tuple[list[str], bool]:
    lines, healthy = [], True
    for dag_id in DAG_IDS:
        runs = recent_runs(settings, dag_id, limit=1)
        if not runs:
            lines.append(f"{dag_id}: no run recorded in {settings.airflow_home}")
            continue
        run = runs[0]
        healthy &= run.is_success
        seconds = (run.ended - run.started).total_seconds() if run.started and run.ended else None
        lines.append(
            f"{dag_id}: last run as of {run.as_of_date}: {'success' if run.is_success else 'FAILED'}"
            + (f", {seconds:.1f} s" if seconds is not None else "")
            + f" (run {run.run_id}, started {_when(run.started)})"
        )
        if problem := run.problem():
            lines.append(f"  {problem}")
        for task in run.tasks:
            took = f"{task.seconds:.1f} s" if task.seconds is not None else "-"
            tries = f", try {task.try_number}" if task.try_number > 1 else ""
            lines.append(f"  {task.task_id:<20} {task.state or 'did not run':<16} {took}{tries}")
    return lines, healthy


def _batches(conn) -> list[str]:
    counts = dict(conn.execute("select status, count(*) from audit.batches group by status").fetchall())
    lines = [
        "batches: "
        + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("loaded", "loading", "failed", "rejected", "superseded")
        )
    ]
    for name, status, message in conn.execute(
        "select distinct on (batch_key) file_name, status, message from audit.batches"
        " order by batch_key, batch_id desc"
    ):
        if status in ("failed", "rejected", "loading"):
            lines.append(f"  {status}: {name}: {message or 'still loading'}")
    quarantined = conn.execute(
        "select count(*), count(distinct batch_id) from audit.quarantine join audit.batches using (batch_id)"
        " where status = 'loaded'"
    ).fetchone()
    lines.append(
        f"quarantined rows: {quarantined[0]} in {quarantined[1]} current batch(es) (audit.quarantine)"
    )
    return lines


def _messages(conn) -> list[str]:
    counts = dict(conn.execute("select status, count(*) from audit.alert_ledger group by status").fetchall())
    latest = conn.execute("select max(as_of_date) from audit.alert_ledger where status = 'sent'").fetchone()[
        0
    ]
    return [
        f"messages: {counts.get('sent', 0)} sent, {counts.get('pending', 0)} pending, "
        f"{counts.get('failed', 0)} failed" + (f" (latest sent as of {latest})" if latest else "")
    ]


def status_lines(url: str, settings: Settings) -> tuple[list[str], bool]:
    """The report's lines, and whether the last run of every DAG succeeded."""
    with connect(url) as conn:
        lines = _published(conn)
        runs, healthy = _runs(settings)
        lines += runs + _batches(conn) + _messages(conn)
    return lines, healthy
