"""DAG integrity: the DAGs import cleanly, are configured as the team expects, and parse
without touching a database, the network or a heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kam.settings import PROJECT_DIR

DAG_IDS = {"kam_daily", "kam_alerts"}
HEAVY_MODULES = (
    "pandas",
    "great_expectations",
    "dbt",
    "psycopg",
    "pyarrow",
    "openpyxl",
    "kam.ingest.files",
    "kam.transform",
    "kam.warehouse.connect",
)

PARSE_SCRIPT = """
import json, sys, socket
def no_network(*args, **kwargs):
    raise AssertionError("network access at DAG parse time")
socket.socket.connect = no_network
from airflow import plugins_manager
from airflow.dag_processing.dagbag import DagBag
plugins_manager.ensure_plugins_loaded()  # as every Airflow process does, from PLUGINS_FOLDER
bag = DagBag(dag_folder=sys.argv[1])
dags = {dag_id: {"tags": sorted(dag.tags), "retries": [t.retries for t in dag.tasks],
                 "doc": bool(dag.doc_md), "tasks": sorted(t.task_id for t in dag.tasks),
                 "schedule": str(getattr(dag.timetable, "asset_condition", None) or dag.schedule), "outlets": sorted(str(o.name) for t in dag.tasks for o in t.outlets)} for dag_id, dag in bag.dags.items()}
heavy = [m for m in sys.argv[2].split(",") if m in sys.modules]
package = sys.argv[3]
strays = sorted(name for name, module in list(sys.modules.items())
                if (getattr(module, "__file__", None) or "").startswith(package) and name.split(".")[0] != "kam")
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags, "heavy": heavy,
                  "plugin_errors": plugins_manager.get_import_errors(), "strays": strays}))
"""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": "/usr/bin:/bin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "PYTHONPATH": str(PROJECT_DIR / "plugins"),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PARSE_SCRIPT,
            str(PROJECT_DIR / "dags"),
            ",".join(HEAVY_MODULES),
            str(PROJECT_DIR / "plugins" / "kam"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dags_import_without_errors(parsed):
    assert parsed["errors"] == {}
    assert DAG_IDS <= set(parsed["dags"])


def test_dags_have_tags_retries_and_docs(parsed):
    for dag_id in DAG_IDS:
        dag = parsed["dags"][dag_id]
        assert "kam" in dag["tags"]
        assert dag["doc"]
        assert all(retries >= 1 for retries in dag["retries"])


def test_kam_daily_runs_the_documented_steps(parsed):
    assert parsed["dags"]["kam_daily"]["tasks"] == [
        "dbt_build",
        "extract",
        "load_raw",
        "publish",
        "restate_later_day",
        "validate_marts",
        "validate_raw",
    ]


def test_kam_alerts_is_scheduled_on_the_asset_kam_daily_publishes(parsed):
    assert parsed["dags"]["kam_daily"]["outlets"] == ["kam_marts"]
    assert "kam_marts" in parsed["dags"]["kam_alerts"]["schedule"]


def test_the_dags_start_where_the_contract_lets_data_start():
    """Airflow creates no task for a logical date before start_date: every day the raw
    contract accepts must be runnable."""
    from kam.contract import load_contract
    from kam.on_airflow.tasks import START_DATE

    earliest = min(table.plausible_dates[0] for table in load_contract().values())
    assert START_DATE.date() <= earliest


def test_parsing_imports_nothing_heavy(parsed):
    assert parsed["heavy"] == []


def test_airflow_leaves_the_kam_package_to_its_imports(parsed):
    """Airflow's plugin loader imports every .py file under the plugins folder as a module
    of its own name; plugins/.airflowignore keeps it out of kam, which has no plugin."""
    assert parsed["plugin_errors"] == {}
    assert parsed["strays"] == []
