"""Faults: a killed loader, a warehouse that stops mid-build, a mail server that is down,
two runs at once, and BI readers during a publish. Nothing is lost or doubled."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import psycopg
import pytest

from kam.alerts.delivery import Smtp
from kam.ingest.files import Loader
from kam.local.embedded_server import EmbeddedServer, free_port
from kam.pipeline import (
    StepFailed,
    acquire_transform_lease,
    build_marts,
    publish_marts,
    release_transform_lease,
    send_alerts,
    validate_marts,
)
from kam.warehouse.bootstrap import bootstrap
from kam.warehouse.roles import bi_url, ensure_bi_role
from tests.conftest import Inbox, make_settings, rows, scalar
from tests.test_loading import INVOICE_HEADER

AS_OF = date(2026, 7, 31)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A warehouse of this module's own, so a test may stop and restart it."""
    from tools.synthetic import generate

    home = tmp_path_factory.mktemp("faults-home")
    server = EmbeddedServer(home / "warehouse")
    url = server.start().url()
    bootstrap(url)
    settings = make_settings(home, url)
    generate(settings.landing_dir, scale=0.05, seed=5, end_date=AS_OF, progress=lambda m: None)
    Loader(url, progress=lambda m: None).load_paths([settings.landing_dir])
    build = build_marts(url, settings, AS_OF, progress=lambda m: None, run_id="setup")
    publish_marts(url, AS_OF, "setup", build["invocation_id"])
    ensure_bi_role(url, settings)
    yield server, url, settings
    server.stop()


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def active_query_like(url: str, pattern: str) -> bool:
    return bool(
        scalar(
            url, "select count(*) from pg_stat_activity where state = 'active' and query ilike %s", (pattern,)
        )
    )


def waiting_on_a_lock(url: str, pattern: str) -> bool:
    return bool(
        scalar(
            url,
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query ilike %s",
            (pattern,),
        )
    )


def test_a_loader_killed_mid_copy_reloads_every_row_exactly_once(tmp_path, warehouse):
    path = tmp_path / "big" / "invoices.csv"
    path.parent.mkdir()
    count = 400_000
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(",".join(INVOICE_HEADER) + "\n")
        for n in range(count):
            handle.write(f"K{n:07d},N{n},C{n % 97},,2026-01-05,2026-02-04,CNY,{n % 1000 + 1}.25,posted\n")
    env = dict(os.environ, KAM_WAREHOUSE_URL=warehouse, KAM_HOME=str(tmp_path / "home"))
    kam = str(Path(sys.executable).parent / "kam")
    loader = subprocess.Popen(
        [kam, "load", str(path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: active_query_like(warehouse, "copy %"), what="the COPY to start")
        os.kill(loader.pid, signal.SIGKILL)
    finally:
        loader.wait()
    assert scalar(warehouse, "select count(*) from raw.invoices") == 0
    rerun = subprocess.run([kam, "load", str(path)], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert scalar(warehouse, "select count(*) from raw.invoices") == count
    assert scalar(warehouse, "select count(distinct invoice_id) from raw.invoices") == count
    assert rows(warehouse, "select status, rows_loaded from audit.batches order by batch_id") == [
        ("failed", None),
        ("loaded", count),
    ]


@pytest.mark.slow
def test_the_warehouse_stopping_mid_build_leaves_the_marts_and_the_retry_completes(own_server):
    server, url, settings = own_server
    published = rows(url, "select customer_id, open_amount from marts.ar_aging order by 1")
    publications = scalar(url, "select count(*) from audit.publications")
    outcome: dict = {}

    def build():
        try:
            build_marts(url, settings, AS_OF, progress=lambda m: None, run_id="interrupted")
        except Exception as exc:  # the assertion below says which
            outcome["error"] = exc

    # A lock on a raw table holds dbt mid-build (its staging view waits for it), so the
    # server stops while dbt is certainly building, however fast its statements are.
    blocker = psycopg.connect(url)
    blocker.execute("lock table raw.invoice_lines in access exclusive mode")
    thread = threading.Thread(target=build)
    thread.start()
    try:
        wait_for(lambda: waiting_on_a_lock(url, "%invoice_lines%"), what="dbt to be building")
        server._run([server_binary("pg_ctl"), "stop", "-D", str(server.pgdata), "-m", "immediate", "-w"])
        thread.join(timeout=300)
        assert isinstance(outcome.get("error"), StepFailed | psycopg.Error), outcome
        server.start()
        assert rows(url, "select customer_id, open_amount from marts.ar_aging order by 1") == published
        assert scalar(url, "select count(*) from audit.publications") == publications
        retry = build_marts(url, settings, AS_OF, progress=lambda m: None, run_id="interrupted")
        validate_marts(url, settings, AS_OF, "interrupted", retry["invocation_id"], progress=lambda m: None)
        publish_marts(url, AS_OF, "interrupted", retry["invocation_id"])
        assert rows(url, "select customer_id, open_amount from marts.ar_aging order by 1") == published
    finally:
        with contextlib.suppress(psycopg.Error):
            blocker.close()  # its server was stopped under it
        server.start()
        release_transform_lease(url, "interrupted")  # so a failure here does not hold up the next tests


def server_binary(name: str) -> str:
    from kam.local.embedded_server import pg_bin

    return pg_bin(name)


def test_smtp_down_makes_the_task_retry_and_every_message_goes_once(own_server):
    _, url, settings = own_server
    with pytest.raises(RuntimeError) as down:
        send_alerts(url, settings, AS_OF, Smtp("127.0.0.1", free_port(), timeout=2), progress=lambda m: None)
    assert not isinstance(down.value, StepFailed), (
        "a mail server that is down must be retried, not failed for good"
    )
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        first = send_alerts(url, settings, AS_OF, Smtp("127.0.0.1", controller.port), progress=lambda m: None)
        second = send_alerts(
            url, settings, AS_OF, Smtp("127.0.0.1", controller.port), progress=lambda m: None
        )
    finally:
        controller.stop()
    assert first["sent"] == len(inbox.messages) == first["messages"] > 0 and second["sent"] == 0
    assert len({m["Message-ID"] for m in inbox.messages}) == len(inbox.messages)


def test_a_second_run_waits_for_the_marts_lease_or_fails_naming_the_holder(own_server):
    _, url, _ = own_server
    acquire_transform_lease(url, "run-a", AS_OF)
    try:
        acquire_transform_lease(url, "run-a", AS_OF)  # a retry of the same run takes it again
        with pytest.raises(
            StepFailed, match="another run \\(run-a, as of 2026-07-31\\) is building the marts"
        ):
            acquire_transform_lease(url, "run-b", date(2026, 8, 1), wait_seconds=1, progress=lambda m: None)
    finally:
        release_transform_lease(url, "run-a")
    acquire_transform_lease(url, "run-b", date(2026, 8, 1), wait_seconds=1)
    release_transform_lease(url, "run-b")


@pytest.mark.slow
def test_twenty_bi_readers_during_publishes_see_no_error_and_no_empty_result(own_server):
    _, url, settings = own_server
    reader_url = bi_url(url, settings)
    expected = scalar(url, "select count(*) from marts.key_account_scorecard")
    stop = threading.Event()
    errors: list[str] = []
    counts: list[int] = []

    def reader():
        with psycopg.connect(reader_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    counts.append(
                        conn.execute("select count(*) from marts.key_account_scorecard").fetchone()[0]
                    )
                except psycopg.Error as exc:
                    errors.append(str(exc))

    readers = [threading.Thread(target=reader) for _ in range(20)]
    for thread in readers:
        thread.start()
    try:
        for n in range(2):
            build = build_marts(url, settings, AS_OF, progress=lambda m: None, run_id=f"busy-{n}")
            publish_marts(url, AS_OF, f"busy-{n}", build["invocation_id"])
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert errors == []
    assert len(counts) > 100 and set(counts) == {expected}
