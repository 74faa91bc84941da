"""`kam bi`: Apache Superset on 127.0.0.1, in its own virtualenv (its pins clash with
Airflow's), reading the published marts through the BI role, with the dashboards of
bi/superset/dashboards.yml imported at every start."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from kam.constants import PUBLISHED_SCHEMA
from kam.settings import Settings
from kam.warehouse.connect import connect
from kam.warehouse.roles import bi_url

ADMIN = "admin"
BUNDLE_ROOT = "kam_dashboards"
DATABASE_NAME = "KAM marts"
NAMESPACE = uuid.UUID("6f1c7a52-0d8e-4c55-9a34-0a0b1c000000")  # of the uuids this bundle gives
KINDS = {
    "number": "big_number_total",
    "trend": "echarts_timeseries_line",
    "bars": "echarts_timeseries_bar",
    "table": "table",
}
SIZES = {
    "number": (3, 25),
    "trend": (6, 50),
    "bars": (6, 50),
    "table": (12, 60),
}  # grid columns of 12, height
TEMPORAL = ("date", "timestamp")


@dataclass(frozen=True)
class Superset:
    venv: Path
    home: Path
    admin_password: str

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / "superset"


def _stable_uuid(*parts: str) -> str:
    """The same object gets the same uuid at every import, so an import overwrites it."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _secrets(home: Path) -> dict:
    """The secret key and the admin password: KAM_SUPERSET_* from the environment, else
    generated once and kept under KAM_HOME (mode 0600)."""
    path = home / "secrets.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    values = {
        "secret_key": os.environ.get("KAM_SUPERSET_SECRET_KEY")
        or kept.get("secret_key")
        or secrets.token_urlsafe(42),
        "admin_password": os.environ.get("KAM_SUPERSET_ADMIN_PASSWORD")
        or kept.get("admin_password")
        or secrets.token_urlsafe(12),
    }
    if values != kept:
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
        path.chmod(0o600)
    return values


def install(settings: Settings, progress: Callable[[str], None] = print) -> Path:
    """The virtualenv .venv-superset with requirements/superset.txt, made once (again when
    that file changes)."""
    requirements = settings.project_dir / "requirements" / "superset.txt"
    venv = settings.project_dir / ".venv-superset"
    stamp = venv / ".installed"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return venv
    progress(f"installing Apache Superset into {venv} (once; a few minutes) ...")
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for args in (
        ["-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        ["-m", "pip", "install", "--quiet", "-r", str(requirements)],
        ["-m", "pip", "check"],
    ):
        result = subprocess.run([str(python), *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"installing Superset failed ({' '.join(args[:3])}): {result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    stamp.write_text(wanted)
    return venv


def environment(settings: Settings, superset: Superset) -> dict[str, str]:
    values = _secrets(superset.home)
    return {
        **os.environ,
        "SUPERSET_CONFIG_PATH": str(settings.project_dir / "bi" / "superset" / "superset_config.py"),
        "SUPERSET_SECRET_KEY": values["secret_key"],
        "SUPERSET_HOME": str(superset.home),
        "KAM_SUPERSET_METADATA_URL": f"sqlite:///{superset.home / 'superset.db'}",
        "FLASK_APP": "superset",
    }


def _superset(settings: Settings, superset: Superset, *args: str) -> str:
    result = subprocess.run(
        [str(superset.executable), *args],
        env=environment(settings, superset),
        capture_output=True,
        text=True,
        cwd=superset.home,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"superset {args[0]} failed: {(result.stdout + result.stderr)[-3000:]}")
    return result.stdout + result.stderr


# -- the bundle ----------------------------------------------------------------------------------


def published_columns(url: str) -> dict[str, list[tuple[str, str, str | None]]]:
    """Each published mart's columns with their types and descriptions (its comments)."""
    marts: dict[str, list[tuple[str, str, str | None]]] = {}
    with connect(url) as conn:
        for table, column, data_type, comment in conn.execute(
            "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum)"
            " from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind in ('r', 'v') and a.attnum > 0 and not a.attisdropped"
            " order by c.relname, a.attnum",
            (PUBLISHED_SCHEMA,),
        ):
            marts.setdefault(table, []).append((column, data_type, comment))
    return marts


def _metric(expression: str) -> dict:
    return {
        "expressionType": "SQL",
        "sqlExpression": expression,
        "label": expression,
        "optionName": "metric_" + hashlib.sha1(expression.encode()).hexdigest()[:12],
        "hasCustomLabel": False,
    }


def chart_params(chart: dict, column_types: dict[str, str] | None = None) -> dict:
    """Superset's form data for one chart of the spec (`column_types`: its mart's, so money
    in a table shows with separators and cents)."""
    kind = chart["kind"]
    params: dict = {"viz_type": KINDS[kind], "adhoc_filters": [], "row_limit": 1000}
    if chart.get("where"):
        params["adhoc_filters"].append(
            {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": chart["where"]}
        )
    if kind == "number":
        params.update(metric=_metric(chart["metric"]), y_axis_format=chart.get("format", "SMART_NUMBER"))
        params.update(header_font_size=0.4, subheader_font_size=0.15)
    elif kind in ("trend", "bars"):
        x = chart.get("x", "as_of_date")
        params.update(x_axis=x, metrics=[_metric(m) for m in chart["metrics"]], groupby=[])
        params.update(show_legend=True, rich_tooltip=True, y_axis_format="SMART_NUMBER", show_value=True)
        if kind == "trend":
            params.update(time_grain_sqla="P1D", markerEnabled=True, markerSize=6)
            params["adhoc_filters"].append(
                {
                    "expressionType": "SIMPLE",
                    "clause": "WHERE",
                    "subject": x,
                    "operator": "TEMPORAL_RANGE",
                    "comparator": "No filter",
                }
            )
        else:
            params.update(orientation="vertical", x_axis_sort_asc=True)
    else:
        column, _, direction = (chart.get("order_by") or "").partition(" ")
        ascending = direction.lower() != "desc"
        if chart.get("columns"):
            params.update(query_mode="raw", all_columns=chart["columns"])
            params["column_config"] = {
                column: {"d3NumberFormat": ",.2f"}
                for column in chart["columns"]
                if (column_types or {}).get(column) == "numeric(18,2)"
            }
            if column:
                params["order_by_cols"] = [json.dumps([column, ascending])]
        else:
            params.update(
                query_mode="aggregate",
                groupby=chart["group_by"],
                metrics=[_metric(m) for m in chart["metrics"]],
            )
            if column:
                params.update(timeseries_limit_metric=_metric(f"MIN({column})"), order_desc=not ascending)
        params.update(table_timestamp_format="%Y-%m-%d", show_cell_bars=False)
    return params


def _dataset(mart: str, columns: list[tuple[str, str, str | None]], database_uuid: str) -> dict:
    return {
        "table_name": mart,
        "schema": PUBLISHED_SCHEMA,
        "main_dttm_col": "as_of_date" if any(c == "as_of_date" for c, _, _ in columns) else None,
        "description": None,
        "uuid": _stable_uuid("dataset", mart),
        "database_uuid": database_uuid,
        "version": "1.0.0",
        "metrics": [{"metric_name": "count", "expression": "COUNT(*)", "verbose_name": "COUNT(*)"}],
        "columns": [
            {
                "column_name": name,
                "type": data_type.upper(),
                "is_dttm": data_type.startswith(TEMPORAL),
                "description": comment,
                "filterable": True,
                "groupby": True,
            }
            for name, data_type, comment in columns
        ],
    }


def _position(slug: str, title: str, charts: list[tuple[dict, str]]) -> dict:
    """Rows of charts filling the 12-column grid in the order of the spec."""
    position: dict = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}},
    }
    row, used = None, 12
    for number, (chart, chart_uuid) in enumerate(charts):
        width, height = SIZES[chart["kind"]]
        if used + width > 12:
            row = f"ROW-{slug}-{number}"
            position[row] = {
                "type": "ROW",
                "id": row,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID"],
                "meta": {"background": "BACKGROUND_TRANSPARENT"},
            }
            position["GRID_ID"]["children"].append(row)
            used = 0
        chart_id = f"CHART-{slug}-{number}"
        position[chart_id] = {
            "type": "CHART",
            "id": chart_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID", row],
            # chartId is remapped to the imported chart by its uuid
            "meta": {
                "chartId": number + 1,
                "uuid": chart_uuid,
                "sliceName": chart["name"],
                "width": width,
                "height": height,
            },
        }
        position[row]["children"].append(chart_id)
        used += width
    return position


def build_bundle(spec: dict, marts: dict[str, list[tuple[str, str, str | None]]], reader_url: str) -> bytes:
    """Superset's import bundle (a ZIP of YAML) for the spec, reading through `reader_url`."""
    parts = urlsplit(reader_url)
    database_uuid = _stable_uuid("database", DATABASE_NAME)
    files: dict[str, dict] = {
        "metadata.yaml": {"version": "1.0.0", "type": "Dashboard", "timestamp": "2026-01-01T00:00:00+00:00"},
        f"databases/{DATABASE_NAME.replace(' ', '_')}.yaml": {
            "database_name": DATABASE_NAME,
            "sqlalchemy_uri": parts._replace(scheme="postgresql+psycopg2").geturl(),
            "expose_in_sqllab": True,
            "allow_ctas": False,
            "allow_cvas": False,
            "allow_dml": False,
            "allow_run_async": False,
            "extra": {"allows_virtual_table_explore": True},
            "uuid": database_uuid,
            "version": "1.0.0",
        },
    }
    for dashboard in spec["dashboards"]:
        placed = []
        for number, chart in enumerate(dashboard["charts"]):
            mart = chart["mart"]
            if mart not in marts:
                raise ValueError(
                    f"{dashboard['slug']}: chart {chart['name']!r} reads {mart}, which is not published"
                )
            files[f"datasets/{DATABASE_NAME.replace(' ', '_')}/{mart}.yaml"] = _dataset(
                mart, marts[mart], database_uuid
            )
            chart_uuid = _stable_uuid("chart", dashboard["slug"], chart["name"])
            files[f"charts/{dashboard['slug']}_{number:02d}.yaml"] = {
                "slice_name": chart["name"],
                "description": chart.get("description"),
                "viz_type": KINDS[chart["kind"]],
                "params": chart_params(chart, {name: data_type for name, data_type, _ in marts[mart]}),
                "query_context": None,
                "cache_timeout": None,
                "uuid": chart_uuid,
                "version": "1.0.0",
                "dataset_uuid": _stable_uuid("dataset", mart),
            }
            placed.append((chart, chart_uuid))
        files[f"dashboards/{dashboard['slug']}.yaml"] = {
            "dashboard_title": dashboard["title"],
            "slug": dashboard["slug"],
            "uuid": _stable_uuid("dashboard", dashboard["slug"]),
            "position": _position(dashboard["slug"], dashboard["title"], placed),
            "metadata": {
                "color_scheme": "supersetColors",
                "refresh_frequency": 0,
                "cross_filters_enabled": False,
            },
            "published": True,
            "version": "1.0.0",
        }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, document in files.items():
            bundle.writestr(
                f"{BUNDLE_ROOT}/{name}", yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
            )
    return buffer.getvalue()


def dashboard_spec(settings: Settings) -> dict:
    return yaml.safe_load(
        (settings.project_dir / "bi" / "superset" / "dashboards.yml").read_text(encoding="utf-8")
    )


# -- set-up and serving ----------------------------------------------------------------------------


def prepare(settings: Settings, url: str, progress: Callable[[str], None] = print) -> Superset:
    """Install (once), migrate its metadata, make the admin from KAM_SUPERSET_ADMIN_PASSWORD,
    and import the dashboards against the published marts."""
    venv = install(settings, progress)
    home = settings.home / "superset"
    home.mkdir(parents=True, exist_ok=True)
    superset = Superset(venv=venv, home=home, admin_password=_secrets(home)["admin_password"])
    progress("Superset: migrating its metadata database ...")
    _superset(settings, superset, "db", "upgrade")
    created = _superset(
        settings, superset, "fab", "create-admin", "--username", ADMIN, "--firstname", "KAM",
        "--lastname", "Admin", "--email", "admin@localhost", "--password", superset.admin_password,
    )  # fmt: skip
    if "already exists" in created:
        _superset(
            settings,
            superset,
            "fab",
            "reset-password",
            "--username",
            ADMIN,
            "--password",
            superset.admin_password,
        )
    _superset(settings, superset, "init")
    bundle = write_bundle(settings, url)
    progress(f"Superset: importing {len(dashboard_spec(settings)['dashboards'])} dashboards ...")
    _superset(settings, superset, "import-dashboards", "--path", str(bundle), "--username", ADMIN)
    return superset


def write_bundle(settings: Settings, url: str, reader_host: str | None = None) -> Path:
    """The import bundle under KAM_HOME/superset, for the published marts. `reader_host` is
    the warehouse's name where Superset runs (compose: `warehouse`), when not this URL's."""
    marts = published_columns(url)
    if not marts:
        raise RuntimeError("nothing is published yet: run kam run --date YYYY-MM-DD first, then kam bi")
    reader = bi_url(url, settings)
    if reader_host:
        parts = urlsplit(reader)
        reader = parts._replace(netloc=parts.netloc.rsplit("@", 1)[0] + "@" + reader_host).geturl()
    bundle = settings.home / "superset" / "dashboards.zip"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(build_bundle(dashboard_spec(settings), marts, reader))
    return bundle


def serve(settings: Settings, superset: Superset, port: int) -> subprocess.Popen:
    """Superset's web server on 127.0.0.1:port (the caller waits for it and stops it)."""
    log = (superset.home / "server.log").open("a")
    return subprocess.Popen(  # noqa: SIM115 (the server outlives this call; its log with it)
        [str(superset.executable), "run", "--host", "127.0.0.1", "--port", str(port), "--with-threads"],
        env=environment(settings, superset),
        cwd=superset.home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_until_healthy(server: subprocess.Popen, port: int, timeout: float = 180) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"Superset's server ended (exit {server.returncode}); see its server.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    raise RuntimeError(
        f"Superset did not answer on 127.0.0.1:{port} within {timeout:.0f} s; see its server.log"
    )
