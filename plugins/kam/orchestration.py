"""Airflow for the embedded default: an Airflow home under KAM_HOME and `airflow dags test`.

`kam run --date D` runs a whole DAG for one day in-process (SQLite metadata DB), with the
warehouse handed over as the `kam_warehouse` connection through the environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from kam.mail_catcher import MailCatcher
from kam.settings import Settings

WAREHOUSE_CONN_ENV = "AIRFLOW_CONN_KAM_WAREHOUSE"
SMTP_CONN_ENV = "AIRFLOW_CONN_KAM_SMTP"


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
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "KAM_RETRY_DELAY_SECONDS": os.environ.get("KAM_RETRY_DELAY_SECONDS", "5"),
            WAREHOUSE_CONN_ENV: url,
        }
    )
    env.update(extra or {})
    return env


# Airflow's structured log line: "<time> [<level>] <message> [<logger>] key=value ..."
AIRFLOW_LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<message>.*?)\s+\[(?P<logger>[\w.]+)\]")
DBT_ROUTINE_LINE = re.compile(
    r"^\d\d:\d\d:\d\d\s*(\d+ of \d+ (START|PASS|OK)|$|Running with|Registered|Found|Concurrency)"
)


def summarise(line: str) -> str | None:
    """The part of Airflow's output a person running the pipeline wants to see: the
    project's own progress, task starts, and errors. None for everything else."""
    match = AIRFLOW_LOG_LINE.match(line)
    if not match:
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
    try:
        with subprocess.Popen(
            [str(airflow), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            for line in process.stdout:
                if log:
                    log.write(line)
                shown = summarise(line) if quiet else line.rstrip()
                if shown is not None:
                    progress(shown)
    finally:
        if log:
            log.close()
    return process.returncode


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
        return _airflow(command, env, progress, log_path, quiet)
    with MailCatcher(settings.outbox_dir) as catcher:
        env[SMTP_CONN_ENV] = catcher.connection_uri
        return _airflow(command, env, progress, log_path, quiet)
