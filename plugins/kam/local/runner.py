"""Airflow for the embedded default: an Airflow home under KAM_HOME and `airflow dags test`.

`kam run --date D` runs a whole DAG for one day in-process (SQLite metadata DB), with the
warehouse handed over as the `kam_warehouse` connection through the environment."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from kam.local.embedded_server import free_port
from kam.local.mail_catcher import MailCatcher
from kam.processes import run_streaming
from kam.settings import Settings

WAREHOUSE_CONN_ENV = "AIRFLOW_CONN_KAM_WAREHOUSE"
UI_USER = "admin"
SMTP_CONN_ENV = "AIRFLOW_CONN_KAM_SMTP"


def ui_passwords_file(settings: Settings) -> Path:
    return settings.airflow_home / "ui_passwords.json"


def ui_password(settings: Settings) -> str:
    """The UI admin's password: AIRFLOW_ADMIN_PASSWORD (a deployment's .env), else generated
    once; kept (mode 0600) in the file Airflow's simple auth manager reads, so `kam ui` can say it."""
    path = ui_passwords_file(settings)
    wanted = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
    if path.exists() and (not wanted or json.loads(path.read_text())[UI_USER] == wanted):
        return json.loads(path.read_text())[UI_USER]
    path.parent.mkdir(parents=True, exist_ok=True)
    password = wanted or secrets.token_urlsafe(12)
    path.write_text(json.dumps({UI_USER: password}))
    path.chmod(0o600)
    return password


def airflow_env(settings: Settings, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    home = settings.airflow_home
    env = dict(os.environ)
    env.update(
        {
            "KAM_HOME": str(settings.home),
            "KAM_PROJECT_DIR": str(settings.project_dir),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.project_dir / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{metadata_db(settings)}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "KAM_RETRY_DELAY_SECONDS": os.environ.get("KAM_RETRY_DELAY_SECONDS", "5"),
            WAREHOUSE_CONN_ENV: url,
            # the UI's login (kam ui): one admin, its password kept under KAM_HOME
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(ui_passwords_file(settings)),
        }
    )
    env.update(extra or {})
    return env


# Airflow's structured log line: "<time> [<level>] <message> [<logger>] key=value ..."
AIRFLOW_LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<message>.*?)\s+\[(?P<logger>[\w.]+)\]")
DBT_ROUTINE_LINE = re.compile(
    r"^\d\d:\d\d:\d\d\s*(\d+ of \d+ (START|PASS|OK)|$|Running with|Registered|Found|Concurrency)"
)


# The last line of a task's traceback: what failed, in the exception's own words
EXCEPTION_LINE = re.compile(
    r"^(?:[a-z_][\w]*\.)*(?P<kind>[A-Z]\w*(?:Error|Exception|Failed|Refused)): (?P<message>.+)"
)
# Re-raised as AirflowFailException (dag_support.fail_fast_on_bad_data): shown once, as that
SHOWN_AS_AIRFLOW_FAIL = ("StepFailed",)


def summarise(line: str) -> str | None:
    """The part of Airflow's output a person running the pipeline wants to see: the
    project's own progress, task starts, and errors with their reason. None for everything else."""
    match = AIRFLOW_LOG_LINE.match(line)
    if not match:
        failure = EXCEPTION_LINE.match(line)
        if failure and failure["kind"] not in SHOWN_AS_AIRFLOW_FAIL:
            return f"    ERROR {failure['kind']}: {failure['message'].rstrip()}"
        return None
    message, logger, level = match["message"], match["logger"], match["level"]
    if "[DAG TEST] starting task_id=" in message:
        return "  task " + message.split("task_id=", 1)[1].split()[0]
    if logger.startswith("kam"):
        return None if DBT_ROUTINE_LINE.match(message) else "    " + message
    if level in ("error", "critical") or "AirflowFailException" in message:
        return "    ERROR " + message
    return None


def _airflow(
    args: list[str],
    env: dict[str, str],
    progress: Callable[[str], None],
    log_path: Path | None = None,
    quiet: bool = False,
) -> int:
    airflow = Path(sys.executable).parent / "airflow"
    log = open(log_path, "w", encoding="utf-8") if log_path else None  # noqa: SIM115 - closed below

    def on_line(line: str) -> None:
        if log:
            log.write(line)
        shown = summarise(line) if quiet else line.rstrip()
        if shown is not None:
            progress(shown)

    try:
        return run_streaming([str(airflow), *args], env, on_line)
    finally:
        if log:
            log.close()


def ensure_airflow_db(settings: Settings, env: dict[str, str], progress: Callable[[str], None]) -> None:
    marker = settings.airflow_home / ".db-migrated"
    if marker.exists():
        return
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    progress(f"initialising the Airflow metadata database under {settings.airflow_home} (first run only)")
    if _airflow(["db", "migrate"], env, lambda line: None) != 0:
        raise RuntimeError(
            "airflow db migrate failed; see the output of `airflow db migrate` with AIRFLOW_HOME="
            f"{settings.airflow_home}"
        )
    marker.touch()


def metadata_db(settings: Settings) -> Path:
    """The embedded instance's Airflow metadata database (SQLite)."""
    return settings.airflow_home / "airflow.db"


@dataclass(frozen=True)
class TaskOutcome:
    task_id: str
    state: str | None
    try_number: int
    started: datetime | None
    ended: datetime | None

    @property
    def seconds(self) -> float | None:
        return (self.ended - self.started).total_seconds() if self.started and self.ended else None


@dataclass(frozen=True)
class RunOutcome:
    """One DAG run as the metadata database has it: every task with its state and its own
    start and end (a run of a past day is stamped with that day as its start, so the run's
    own duration means nothing; the tasks' do)."""

    dag_id: str
    run_id: str
    as_of_date: date
    state: str | None
    tasks: tuple[TaskOutcome, ...]

    @property
    def not_succeeded(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if t.state != "success"]

    @property
    def is_success(self) -> bool:
        return self.state == "success" and bool(self.tasks) and not self.not_succeeded

    @property
    def started(self) -> datetime | None:
        return min((t.started for t in self.tasks if t.started), default=None)

    @property
    def ended(self) -> datetime | None:
        return max((t.ended for t in self.tasks if t.ended), default=None)

    def problem(self) -> str | None:
        """What did not run, in words; None when every task succeeded."""
        if not self.tasks:
            return f"{self.dag_id} for {self.as_of_date} ran no task (run {self.run_id})"
        if self.not_succeeded:
            return f"{self.dag_id} for {self.as_of_date}: " + ", ".join(
                f"{t.task_id} {t.state or 'did not run'}" for t in self.not_succeeded
            )
        return None if self.state == "success" else f"{self.dag_id} for {self.as_of_date}: run {self.state}"


def _timestamp(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def recent_runs(
    settings: Settings, dag_id: str, limit: int = 1, as_of_date: date | None = None
) -> list[RunOutcome]:
    """The latest runs of a DAG (of one as-of date, if given), newest first, from the
    embedded instance's metadata database; none before its first run."""
    path = metadata_db(settings)
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        where, params = "dag_id = ?", [dag_id]
        if as_of_date is not None:
            where += " and date(logical_date) = ?"
            params.append(as_of_date.isoformat())
        try:
            runs = db.execute(
                f"select run_id, logical_date, state from dag_run where {where} order by id desc limit ?",  # noqa: S608
                [*params, limit],
            ).fetchall()
        except sqlite3.OperationalError:  # the database exists but was never migrated
            return []
        outcomes = []
        for run_id, logical, state in runs:
            tasks = db.execute(
                "select task_id, state, try_number, start_date, end_date from task_instance"
                " where dag_id = ? and run_id = ? order by start_date is null, start_date, task_id",
                (dag_id, run_id),
            ).fetchall()
            outcomes.append(
                RunOutcome(
                    dag_id,
                    run_id,
                    _timestamp(logical).date() if logical else None,
                    state,
                    tuple(TaskOutcome(t, s, n or 0, _timestamp(a), _timestamp(b)) for t, s, n, a, b in tasks),
                )
            )
    return outcomes


TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+)")
TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+)")


def write_task_logs(settings: Settings, run: RunOutcome, run_log: Path) -> None:
    """`airflow dags test` runs the tasks in its own process and writes no task log; each
    task's part of the run's output goes where Airflow's UI reads task logs from, one file
    per attempt."""
    attempts: dict[str, int] = {}
    current, out = None, None
    base = settings.logs_dir / "airflow" / f"dag_id={run.dag_id}" / f"run_id={run.run_id}"
    try:
        with open(run_log, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if started := TASK_START.search(line):
                    current = started["task"]
                    attempts[current] = attempts.get(current, 0) + 1
                    path = base / f"task_id={current}" / f"attempt={attempts[current]}.log"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if out:
                        out.close()
                    out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed on the next task or below
                if out:
                    out.write(line)
                if current and (ended := TASK_END.search(line)) and ended["task"] == current:
                    out.close()
                    current, out = None, None
    finally:
        if out:
            out.close()


def run_log_path(settings: Settings, dag_id: str, as_of_date: date) -> Path:
    return settings.logs_dir / "runs" / f"{dag_id}_{as_of_date.isoformat()}.log"


def run_dag(
    dag_id: str,
    as_of_date: date,
    settings: Settings,
    url: str,
    progress: Callable[[str], None] = print,
    extra_env: dict[str, str] | None = None,
    quiet: bool = False,
    conf: dict | None = None,
) -> int:
    """Run one DAG for one day with `airflow dags test`; returns its exit code. The whole
    output goes to KAM_HOME/logs/runs/<dag>_<date>.log; `quiet` shows only the summary lines.
    Without an SMTP connection configured, the embedded mail catcher (KAM_HOME/outbox) serves it."""
    env = airflow_env(settings, url, extra_env)
    ensure_airflow_db(settings, env, progress)
    command = ["dags", "test", dag_id, as_of_date.isoformat()]
    if conf:
        command += ["--conf", json.dumps(conf)]
    log_path = run_log_path(settings, dag_id, as_of_date)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if SMTP_CONN_ENV in env:
        code = _airflow(command, env, progress, log_path, quiet)
    else:
        with MailCatcher(settings.outbox_dir) as catcher:
            env[SMTP_CONN_ENV] = catcher.connection_uri
            code = _airflow(command, env, progress, log_path, quiet)
    # `airflow dags test` exits 0 for a run that executed nothing (a logical date Airflow
    # creates no task instance for): what happened is read from the run's task instances.
    runs = recent_runs(settings, dag_id, as_of_date=as_of_date)
    if runs:
        write_task_logs(settings, runs[0], log_path)
    problem = runs[0].problem() if runs else f"{dag_id} for {as_of_date}: Airflow recorded no run"
    if problem:
        progress(f"not every task succeeded: {problem}")
        return code or 1
    return code


def serve_ui(
    settings: Settings, url: str, port: int | None = None, progress: Callable[[str], None] = print
) -> int:
    """Airflow's API server (the UI) for the embedded instance, on loopback, until stopped:
    the runs of `kam run` with their tasks, durations and logs."""
    env = airflow_env(settings, url)
    ensure_airflow_db(settings, env, progress)
    port = port or int(os.environ.get("KAM_UI_PORT") or 0) or free_port()
    password = ui_password(settings)
    log_path = settings.logs_dir / "ui.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    progress(
        f"Airflow UI: http://127.0.0.1:{port}/  login {UI_USER} / {password}  (Ctrl-C stops it; log {log_path})"
    )
    return _airflow(
        ["api-server", "--host", "127.0.0.1", "--port", str(port)], env, lambda line: None, log_path
    )
