"""The steps of the daily run. The DAG calls them one per task; benchmarks and tests call
them bare. Each step is a transaction: rerunning it for the same date gives the same result."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path

from kam import transform
from kam.constants import MARTS_BUILD_SCHEMA, TRANSFORM_LEASE
from kam.contract import load_contract
from kam.ingest.batches import BatchResult
from kam.ingest.files import Loader, scan_paths
from kam.ingest.mappings import MappingError, find_mapping, load_mapping
from kam.settings import Settings
from kam.warehouse.connect import connect
from kam.warehouse.publish import current_as_of, publish, published_days, withdraw

log = logging.getLogger(__name__)
MAPPED_LANDING = "mapped"  # landing/mapped/<mapping name>/... files use mappings/<mapping name>.yml


class StepFailed(RuntimeError):
    """A pipeline step failed; the message says what and what to do."""


def refuse_future_date(as_of_date: date, settings: Settings) -> None:
    """An as-of date is a closed day: one after today (in KAM_TIMEZONE) has not happened yet."""
    today = settings.today()
    if as_of_date > today:
        raise StepFailed(
            f"{as_of_date} is after today ({today}, {settings.timezone}): an as-of date is a day that has "
            "closed. Check the date; set KAM_TIMEZONE if your day ends elsewhere."
        )


def require_data(url: str, settings: Settings, files: list[dict]) -> None:
    """A run with nothing to read at all fails at once, rather than building empty marts."""
    if files or settings.database_sources:
        return
    with connect(url) as conn:
        loaded = conn.execute("select exists (select from audit.batches where status = 'loaded')").fetchone()[
            0
        ]
    if not loaded:
        raise StepFailed(
            f"landing is empty and no database source is configured: put files in {settings.landing_dir} "
            "(landing/<source>/<table>/*.csv, or landing/mapped/<mapping>/) or set KAM_DATABASE_SOURCES"
        )


def landing_files(settings: Settings, progress: Callable[[str], None] = log.info) -> list[dict]:
    """Every file waiting in the landing area, with the mapping that reads it (None for
    files in the contract layout under landing/<source>/<table>/); a file refused without
    being read (a link out of landing) carries its reason; what is ignored is said."""
    if not settings.landing_dir.exists():
        return []
    files, refused, ignored = scan_paths([settings.landing_dir])
    for path, reason in ignored:
        progress(f"landing: ignored {path}: {reason}")
    found = []
    for path in files:
        relative = path.relative_to(settings.landing_dir).parts
        mapping = relative[1] if relative[0] == MAPPED_LANDING and len(relative) > 2 else None
        found.append({"path": str(path), "mapping": mapping})
    return found + [{"path": str(path), "mapping": None, "refused": reason} for path, reason in refused]


def _batch_summary(results: list[BatchResult], what: str) -> dict:
    summary = {
        "files": len(results),
        "loaded": sum(r.status == "loaded" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "failed": [r.message for r in results if r.status == "failed"],
        "rows_landed": sum(r.rows_landed for r in results),
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "rows_deleted": sum(r.rows_deleted for r in results),
        "batches": [{**asdict(r), "tables": {k: asdict(v) for k, v in r.tables.items()}} for r in results],
    }
    if summary["failed"]:
        raise StepFailed(
            f"{len(summary['failed'])} {what} could not be loaded; fix them and rerun:\n  "
            + "\n  ".join(summary["failed"])
        )
    return summary


def load_counts(summary: dict) -> dict:
    """A load summary without its per-batch detail: what a task hands on through XCom (every
    batch is in audit.batches)."""
    return {key: value for key, value in summary.items() if key != "batches"}


def combine_summaries(*summaries: dict) -> dict:
    """One summary of a run's loads: the database extracts and the files."""
    combined: dict = {}
    for summary in summaries:
        for key, value in summary.items():
            combined[key] = combined.get(key, type(value)()) + value
    return combined


def load_files(
    url: str, settings: Settings, files: list[dict], progress: Callable[[str], None] = log.info
) -> dict:
    loader = Loader(url, progress)
    results = [
        BatchResult(
            file=f["path"], mapping="contract", status="failed", message=f"{f['path']}: {f['refused']}"
        )
        for f in files
        if f.get("refused")
    ]
    readable = [f for f in files if not f.get("refused")]
    for mapping_name in sorted({f["mapping"] or "" for f in readable}):
        paths = [Path(f["path"]) for f in readable if (f["mapping"] or "") == mapping_name]
        try:
            mapping = (
                load_mapping(find_mapping(mapping_name, settings.mappings_dir)) if mapping_name else None
            )
        except MappingError as exc:
            raise StepFailed(f"files under landing/{MAPPED_LANDING}/{mapping_name}/: {exc}") from exc
        results += loader.load_paths(paths, mapping=mapping)
    summary = _batch_summary(results, "file(s)")
    progress(
        f"load: {summary['loaded']} file(s) loaded, {summary['skipped']} unchanged; {summary['rows_landed']} rows landed"
        f" = {summary['rows_loaded']} loaded + {summary['rows_quarantined']} quarantined"
    )
    return summary


def extract_databases(
    url: str,
    settings: Settings,
    as_of_date: date,
    source_urls: dict[str, str],
    full_refresh: bool = False,
    progress: Callable[[str], None] = log.info,
) -> dict:
    """Pull each database source (mapping name -> source URL) into raw: the rows changed
    since the last run, or everything with `full_refresh`; deletions are removed and recorded."""
    from kam.ingest.database import DatabaseExtractor, load_database_mapping

    results: list[BatchResult] = []
    for mapping_name, source_url in source_urls.items():
        try:
            mapping = load_database_mapping(find_mapping(mapping_name, settings.mappings_dir))
        except MappingError as exc:
            raise StepFailed(str(exc)) from exc
        results += DatabaseExtractor(mapping, source_url, url, progress).extract(as_of_date, full_refresh)
    summary = _batch_summary(results, "table extract(s)")
    if source_urls:
        progress(
            f"extract: {len(results)} table(s) from {len(source_urls)} database(s); {summary['rows_landed']} changed "
            f"rows = {summary['rows_loaded']} loaded + {summary['rows_quarantined']} quarantined; "
            f"{summary['rows_deleted']} removed as deleted in the source"
        )
    return summary


def validate_raw(
    url: str,
    settings: Settings,
    as_of_date: date,
    run_id: str,
    run_date: date,
    progress: Callable[[str], None] = log.info,
) -> dict:
    """The raw gate on every batch it has not passed yet (the values of older rows passed an
    earlier gate). On success those batches are marked as passed by this run; on failure the
    latest batch of each failing table is marked rejected and nothing downstream runs."""
    from kam.quality import gates

    result = gates.validate_raw(settings, url, as_of_date, run_id, run_date, progress)
    if not result.ok:
        failed_tables = sorted({f.table for f in result.failures})
        with connect(url) as conn:
            conn.execute(
                """
                update audit.batches set status = 'rejected',
                    message = concat_ws('; ', message, 'rejected by the raw gate of run ' || %s)
                where batch_id in (
                    select max(batch_id) from audit.batches, unnest(target_tables) as target(table_name)
                    where status = 'loaded' and target.table_name = any(%s) group by target.table_name)""",
                (run_id, failed_tables),
            )
        raise StepFailed(
            f"the raw gate failed on {', '.join(failed_tables)}; their latest batches are marked rejected and nothing "
            f"downstream ran. Fix the source files and rerun:\n  "
            + "\n  ".join(map(str, result.failures[:20]))
        )
    with connect(url) as conn:
        conn.execute(
            "update audit.batches set raw_gate_run_id = %s where batch_id = any(%s)",
            (run_id, result.batch_ids),
        )
    return {"summary": result.summary(), "expectations": result.expectations, "data_docs": result.data_docs}


def validate_marts(
    url: str,
    settings: Settings,
    as_of_date: date,
    run_id: str,
    dbt_invocation_id: str | None,
    smtp=None,
    progress: Callable[[str], None] = log.info,
) -> dict:
    """The marts gate on the build schema. On failure the data-engineering list gets one
    email with what failed, and the published marts stay as they are."""
    from kam.alerts.delivery import deliver
    from kam.alerts.finance_summary import gate_failure_message
    from kam.quality import gates

    touch_transform_lease(url, run_id)
    result = gates.validate_marts(
        settings, url, MARTS_BUILD_SCHEMA, as_of_date, run_id, dbt_invocation_id, progress
    )
    if not result.ok:
        release_transform_lease(url, run_id)
        failures = [str(f) for f in result.failures]
        if smtp is not None:
            message = gate_failure_message(as_of_date, run_id, failures, settings.recipients)
            deliver(url, [message], smtp, settings.recipients.mail_from, progress)
        raise StepFailed(
            "the marts gate failed; yesterday's marts stay published:\n  " + "\n  ".join(failures[:20])
        )
    touch_transform_lease(url, run_id)
    return {"summary": result.summary(), "expectations": result.expectations, "data_docs": result.data_docs}


LEASE_HOURS = 3


LEASE_GRACE_SECONDS = 120  # longer than the gap between two steps of a live run


def _holder() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _is_dead(host: str | None, pid: int | None) -> bool:
    """Only a holder on this host can be seen dead: gone, or a zombie nobody reaped."""
    if host != socket.gethostname() or not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def acquire_transform_lease(
    url: str,
    run_id: str,
    as_of_date: date,
    wait_seconds: float = 600,
    progress: Callable[[str], None] = log.info,
) -> None:
    """Take the marts lease for this run (dbt build -> marts gate -> publish). Another run
    holding it makes this one wait, then fail with who holds it; the same run (a retry) may
    take it again. A holder whose process is gone (killed mid-build) and whose last step
    began or ended more than LEASE_GRACE_SECONDS ago is dead: its lease is taken over at once."""
    import time

    deadline = time.monotonic() + wait_seconds
    while True:
        with connect(url) as conn:
            holder = conn.execute(
                """
                insert into audit.transform_lease
                    (lease_name, run_id, as_of_date, expires_at, holder_host, holder_pid, touched_at)
                values (%(name)s, %(run)s, %(day)s, now() + make_interval(hours => %(hours)s), %(host)s, %(pid)s, now())
                on conflict (lease_name) do update set
                    run_id = excluded.run_id, as_of_date = excluded.as_of_date, acquired_at = now(),
                    expires_at = excluded.expires_at, holder_host = excluded.holder_host,
                    holder_pid = excluded.holder_pid, touched_at = now()
                where audit.transform_lease.run_id = excluded.run_id or audit.transform_lease.expires_at < now()
                returning run_id""",
                {
                    "name": TRANSFORM_LEASE,
                    "run": run_id,
                    "day": as_of_date,
                    "hours": LEASE_HOURS,
                    **_holder(),
                },
            ).fetchone()
            if holder:
                return
            other = conn.execute(
                "select run_id, as_of_date, holder_host, holder_pid, extract(epoch from now() - touched_at)"
                " from audit.transform_lease where lease_name = %s",
                (TRANSFORM_LEASE,),
            ).fetchone()
            if other and other[4] > LEASE_GRACE_SECONDS and _is_dead(other[2], other[3]):
                conn.execute(
                    "delete from audit.transform_lease where lease_name = %s and run_id = %s and holder_pid = %s",
                    (TRANSFORM_LEASE, other[0], other[3]),
                )
                progress(
                    f"run {other[0]} (as of {other[1]}) held the marts lease but its process {other[3]} on "
                    f"{other[2]} is gone: the lease is taken over"
                )
                continue
        if other is None:
            continue
        if time.monotonic() >= deadline:
            raise StepFailed(
                f"another run ({other[0]}, as of {other[1]}) is building the marts; this run waited "
                f"{wait_seconds:.0f}s. Retry when it has finished (a holder that died is seen as dead "
                f"{LEASE_GRACE_SECONDS}s after its last step; on another host the lease expires after {LEASE_HOURS}h)."
            )
        progress(f"waiting: run {other[0]} (as of {other[1]}) is building the marts")
        time.sleep(2)


def touch_transform_lease(url: str, run_id: str) -> None:
    """A step of the lease's run begins or ends: this process holds it now. A run whose
    lease was taken over (it was seen dead) stops here rather than publish another's build."""
    with connect(url) as conn:
        conn.execute(
            "update audit.transform_lease set holder_host = %(host)s, holder_pid = %(pid)s, touched_at = now()"
            " where lease_name = %(name)s and run_id = %(run)s",
            {"name": TRANSFORM_LEASE, "run": run_id, **_holder()},
        )
        taken = conn.execute(
            "select run_id from audit.transform_lease where lease_name = %s and run_id <> %s",
            (TRANSFORM_LEASE, run_id),
        ).fetchone()
    if taken:
        raise StepFailed(
            f"run {run_id} no longer holds the marts lease (it was taken over while this run seemed dead): "
            "nothing of it is published; rerun the day"
        )


def release_transform_lease(url: str, run_id: str) -> None:
    with connect(url) as conn:
        conn.execute(
            "delete from audit.transform_lease where lease_name = %s and run_id = %s",
            (TRANSFORM_LEASE, run_id),
        )


def raw_gate_covers() -> tuple[str, ...]:
    """The dbt tests the raw gate has already answered, as dbt selectors: the raw contract's
    tests on the sources (the raw suites are generated from the same declarations), and the
    tests of the staging views over them (one view per raw table, renamed and cast with no
    joins or filters, so its key is the raw table's key). The daily build does not scan raw
    for them again; `kam dbt test --select staging` runs them by hand."""
    sources = sorted({table.source for table in load_contract().values()})
    return ("source:*", *(f"resource_type:test,path:models/staging/{source}" for source in sources))


# dbt unit tests check the SQL against fixed inputs, so they belong to CI, not to every daily
# build (dbt's own advice); `make test` runs them (tests/test_transform.py).
NOT_IN_PRODUCTION_BUILDS = ("--exclude-resource-type", "unit_test")


def build_marts(
    url: str,
    settings: Settings,
    as_of_date: date,
    progress: Callable[[str], None] = log.info,
    run_id: str | None = None,
) -> dict:
    """dbt build into the build schema. With a run_id the run takes the marts lease first
    (released by publish, or here when the build fails)."""
    if run_id:
        acquire_transform_lease(url, run_id, as_of_date, progress=progress)
    result = transform.run_dbt(
        ["build", "--exclude", *raw_gate_covers(), *NOT_IN_PRODUCTION_BUILDS],
        url,
        settings,
        as_of_date=as_of_date,
        progress=progress,
    )
    if not result.ok:
        if run_id:
            release_transform_lease(url, run_id)
        raise StepFailed(
            "dbt build failed; published marts are unchanged:\n  " + "\n  ".join(result.failures[:20])
        )
    if run_id:
        touch_transform_lease(url, run_id)
    return {
        "summary": result.summary(),
        "invocation_id": result.invocation_id,
        "counts": {f"{k}:{s}": n for (k, s), n in result.counts.items()},
    }


def publish_marts(url: str, as_of_date: date, run_id: str, dbt_invocation_id: str) -> dict:
    """Publish the build. For a backfill, `later_day` is the next published day: its marts
    were computed without this day, so what it says changed since its previous day (tiers,
    grades, streaks) needs restating."""
    touch_transform_lease(url, run_id)
    publication_id = publish(url, MARTS_BUILD_SCHEMA, as_of_date, run_id, dbt_invocation_id)
    release_transform_lease(url, run_id)
    with connect(url) as conn:
        later = [day for day in published_days(conn) if day > as_of_date]
    return {
        "publication_id": publication_id,
        "as_of_date": as_of_date.isoformat(),
        "later_day": later[0].isoformat() if later else None,
    }


def rebuild_day(
    url: str,
    settings: Settings,
    as_of_date: date,
    run_id: str,
    smtp=None,
    progress: Callable[[str], None] = log.info,
) -> dict:
    """Build, gate and publish one day again from what raw holds now: a later day restated
    after a backfill, or the latest day left after a withdrawal."""
    build = build_marts(url, settings, as_of_date, progress, run_id=run_id)
    validate_marts(url, settings, as_of_date, run_id, build["invocation_id"], smtp, progress)
    return publish_marts(url, as_of_date, run_id, build["invocation_id"])


def withdraw_day(
    url: str,
    settings: Settings,
    as_of_date: date,
    withdrawn_by: str,
    reason: str,
    progress: Callable[[str], None] = log.info,
) -> dict:
    """Withdraw a day's publication. If it was the current marts, the latest day left is
    built and published again, so the warehouse is what a clean run of that day gives and
    the alerts carry on from it."""
    withdrawn = withdraw(url, as_of_date, withdrawn_by, reason)
    if not withdrawn["withdrawn"]:
        raise StepFailed(f"nothing is published as of {as_of_date}; `kam status` lists what is")
    progress(
        f"withdrew {len(withdrawn['withdrawn'])} publication(s) as of {as_of_date}; its history rows are removed"
    )
    latest = withdrawn["latest_left"]
    if withdrawn["was_current"] and latest is not None:
        progress(f"the marts were as of {as_of_date}: rebuilding {latest}, the latest day still published")
        rebuild_day(url, settings, latest, f"withdrawal_of_{as_of_date}_rebuild_{latest}", progress=progress)
    elif withdrawn["was_current"]:
        progress("no other day is published: the marts are gone until the next run")
    return {**withdrawn, "current": latest if withdrawn["was_current"] else None}


def send_alerts(
    url: str, settings: Settings, as_of_date: date, smtp, progress: Callable[[str], None] = log.info
) -> dict:
    """Each account manager's daily message (overdue by customer, their stops and reviews
    due), the finance manager's escalated customers, the finance summary, the stop-shipment
    list to credit control and the monthly reviews due, each sent once."""
    from kam.alerts import finance_summary, manager_daily, reviews_due, stop_shipments
    from kam.alerts.delivery import deliver
    from kam.alerts.lists import MartsNotPublished, require_published

    with connect(url) as conn:
        current = current_as_of(conn)
        if current is not None and as_of_date < current:
            progress(
                f"alerts: {as_of_date} is a backfill (the marts are as of {current}); nothing is sent for a past day"
            )
            return {"sent": 0, "already_sent": 0, "messages": 0, "skipped": "backfill"}
        try:
            require_published(conn, as_of_date)
        except MartsNotPublished as exc:
            raise StepFailed(str(exc)) from exc
        messages = [
            *manager_daily.manager_daily_messages(conn, as_of_date, settings.recipients),
            finance_summary.finance_summary_message(conn, as_of_date, settings.recipients),
            *stop_shipments.stop_shipment_messages(conn, as_of_date, settings.recipients),
        ]
        reviews = reviews_due.reviews_due_message(conn, as_of_date, settings.recipients)
        messages += [reviews] if reviews else []
    report = deliver(url, messages, smtp, settings.recipients.mail_from, progress)
    if report.failed:
        # Not StepFailed: a mail server that is down is worth retrying.
        raise RuntimeError(
            f"{len(report.failed)} message(s) not sent yet; the retry sends only those:\n  "
            + "\n  ".join(report.failed)
        )
    return {
        "sent": report.sent,
        "already_sent": report.already_sent,
        "messages": len(messages),
        "refused_recipients": report.refused,
    }
