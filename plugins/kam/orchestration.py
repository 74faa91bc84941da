"""Airflow for the embedded default: an Airflow home under KAM_HOME and `airflow dags test`.

`kam run --date D` runs a whole DAG for one day in-process (SQLite metadata DB), with the
warehouse handed over as the `kam_warehouse` connection through the environment."""

from __future__ import annotations

import os
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
    env.update({
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
    })
    env.update(extra or {})
    return env


def _airflow(args: list[str], env: dict[str, str], progress: Callable[[str], None]) -> int:
    airflow = Path(sys.executable).parent / "airflow"
    with subprocess.Popen([str(airflow), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        for line in process.stdout:
            progress(line.rstrip())
    return process.returncode


def ensure_airflow_db(settings: Settings, env: dict[str, str], progress: Callable[[str], None]) -> None:
    marker = settings.airflow_home / ".db-migrated"
    if marker.exists():
        return
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    progress(f"initialising the Airflow metadata database under {settings.airflow_home} (first run only)")
    if _airflow(["db", "migrate"], env, lambda line: None) != 0:
        raise RuntimeError("airflow db migrate failed; see the output of `airflow db migrate` with AIRFLOW_HOME="
                           f"{settings.airflow_home}")
    marker.touch()


def run_dag(dag_id: str, as_of_date: date, settings: Settings, url: str,
            progress: Callable[[str], None] = print, extra_env: dict[str, str] | None = None) -> int:
    """Run one DAG for one day with `airflow dags test`; returns its exit code. Without an
    SMTP connection configured, the embedded mail catcher (KAM_HOME/outbox) serves it."""
    env = airflow_env(settings, url, extra_env)
    ensure_airflow_db(settings, env, progress)
    command = ["dags", "test", dag_id, as_of_date.isoformat()]
    if SMTP_CONN_ENV in env:
        return _airflow(command, env, progress)
    with MailCatcher(settings.outbox_dir) as catcher:
        env[SMTP_CONN_ENV] = catcher.connection_uri
        return _airflow(command, env, progress)
