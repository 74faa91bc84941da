"""Serving: the BI role reads marts and nothing else, the scorecard ranks who needs
attention, the report renders offline in a real browser, and the deployment file is valid."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml

from kam.docs import build_docs, docs_server, documented_marts
from kam.local.runner import ui_passwords_file
from kam.report import build_report
from kam.settings import PROJECT_DIR, Settings
from kam.warehouse.roles import bi_url, ensure_bi_role
from tests.browser import Browser
from tests.conftest import rows, run_kam, scalar

MART_PROPERTIES = sorted((PROJECT_DIR / "dbt" / "models" / "marts").rglob("_*__models.yml"))
# a column entry holds these keys; any other is the tail of a description cut at a comma by
# YAML's flow style ({name: x, description: a, b} makes "b" a key)
COLUMN_KEYS = {"name", "data_type", "description", "constraints", "data_tests"}


def mart_models() -> dict[str, dict]:
    return {
        model["name"]: model
        for path in MART_PROPERTIES
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]
    }


def mart_columns() -> dict[str, list[dict]]:
    """Every mart the yml declares, with its column entries, in order."""
    return {name: model.get("columns") or [] for name, model in mart_models().items()}


def seed_shaped_columns() -> set[str]:
    """The columns the aging_buckets seed makes (the marts whose dbt contract is off for it)."""
    with open(PROJECT_DIR / "dbt" / "seeds" / "aging_buckets.csv", encoding="utf-8") as seed:
        return {f"bucket_{row['bucket_name']}" for row in csv.DictReader(seed)}


MARTS = tuple(mart_columns())


@pytest.fixture(scope="module")
def bi(built_warehouse):
    ensure_bi_role(built_warehouse["url"], built_warehouse["settings"])
    return bi_url(built_warehouse["url"], built_warehouse["settings"])


def denied(url: str, statement: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_bi_role_reads_every_mart(bi):
    with psycopg.connect(bi) as conn:
        assert conn.execute("select current_user").fetchone()[0] == "kam_bi"
        for mart in MARTS:
            conn.execute(f"select * from marts.{mart} limit 1")  # noqa: S608


def test_the_bi_role_cannot_read_raw_or_audit_write_or_run_programs(bi):
    assert denied(bi, "select * from raw.invoices limit 1")
    assert denied(bi, "select * from audit.batches limit 1")
    assert denied(bi, "select * from staging.stg_billing__invoices limit 1")
    assert denied(bi, "select * from snapshots.ar_aging_history limit 1")
    assert denied(bi, "delete from marts.ar_aging")
    assert denied(bi, "update marts.credit_grades set credit_limit = 0")
    assert denied(bi, "create table marts.mine (a int)")
    assert denied(bi, "drop table marts.ar_aging")
    assert denied(bi, "select pg_read_file('/etc/passwd')")
    assert denied(bi, "copy (select 1) to program 'id'")


def test_the_bi_role_reaches_the_published_marts_and_nothing_else(bi, built_warehouse):
    url, limits = built_warehouse["url"], built_warehouse["settings"].bi_limits
    reachable = rows(
        url,
        """
        select nspname from pg_namespace
        where has_schema_privilege('kam_bi', oid, 'usage')
          and nspname not in ('pg_catalog', 'information_schema') and nspname not like 'pg\\_%'""",
    )
    assert reachable == [("marts",)]
    other_databases = rows(
        url, "select datname from pg_database where datallowconn and datname <> current_database()"
    )
    assert ("postgres",) in other_databases
    for (database,) in other_databases:
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(bi.rsplit("/", 1)[0] + f"/{database}").close()
    assert denied(bi, "create temp table mine (a int)")
    assert denied(bi, "create table public.mine (a int)")
    with psycopg.connect(url, autocommit=True) as owner, psycopg.connect(bi, autocommit=True) as reader:
        pid = owner.execute("select pg_backend_pid()").fetchone()[0]
        for signal in ("pg_cancel_backend", "pg_terminate_backend"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(f"select {signal}(%s)", (pid,))
        assert reader.execute("show statement_timeout").fetchone() == (limits.statement_timeout,)
        assert reader.execute("show idle_in_transaction_session_timeout").fetchone() == (
            limits.idle_in_transaction_timeout,
        )
    sessions = [psycopg.connect(bi) for _ in range(limits.connection_limit)]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            psycopg.connect(bi).close()
    finally:
        for session in sessions:
            session.close()


def test_every_mart_column_is_named_typed_and_described_whole_in_its_yml():
    declared = mart_columns()
    assert {"finance_kpis", "finance_kpis_daily", "ar_aging", "stop_shipments"} <= set(declared)
    for mart, columns in declared.items():
        assert columns, f"{mart} declares no columns"
        for column in columns:
            assert set(column) <= COLUMN_KEYS, (
                f"{mart}.{column['name']}: cut description? {set(column) - COLUMN_KEYS}"
            )
            assert column.get("data_type"), f"{mart}.{column['name']} has no data_type"
            description = " ".join(str(column.get("description") or "").split())
            assert description.endswith((".", "}}")), f"{mart}.{column['name']}: {description!r}"


def test_the_published_marts_are_what_the_yml_declares_with_keys_and_comments(built_warehouse):
    url = built_warehouse["url"]
    declared = mart_columns()
    published = {}
    for table, column, comment in rows(
        url,
        """
        select c.relname, a.attname, col_description(c.oid, a.attnum)
        from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'marts' and c.relkind in ('r', 'v') and a.attnum > 0 and not a.attisdropped
        order by c.relname, a.attnum""",
    ):
        published.setdefault(table, []).append((column, comment))
    assert set(published) == set(declared)
    for mart, columns in published.items():
        names = [c for c, _ in columns]
        if mart_models()[mart].get("config", {}).get("contract", {}).get("enforced", True):
            assert names == [c["name"] for c in declared[mart]], mart
        else:
            assert set(names) == {c["name"] for c in declared[mart]} | seed_shaped_columns(), mart
        for column, comment in columns:
            assert comment and comment.endswith(".") and "{{" not in comment, f"{mart}.{column}: {comment!r}"
    # keys BI tools offer joins on: a primary key on every table, the foreign keys between marts
    constraints = rows(
        url,
        """
        select conrelid::regclass::text, contype, confrelid::regclass::text from pg_constraint
        where connamespace = 'marts'::regnamespace""",
    )
    tables = {
        r[0]
        for r in rows(
            url,
            "select 'marts.' || table_name from information_schema.tables where table_schema = 'marts' and table_type = 'BASE TABLE'",
        )
    }
    assert {t for t, kind, _ in constraints if kind == "p"} == tables
    assert ("marts.overdue_invoices", "f", "marts.ar_open_items") in constraints
    assert ("marts.stop_shipments", "f", "marts.credit_grades") in constraints
    assert ("marts.ar_aging", "f", "marts.customer_tiers") in constraints


def test_marts_carry_their_documentation_as_comments(built_warehouse):
    url = built_warehouse["url"]
    undocumented = rows(
        url,
        """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'marts' and c.relkind in ('r', 'v') and obj_description(c.oid) is null""",
    )
    assert undocumented == []
    assert (
        "total owed"
        in scalar(
            url,
            "select col_description('marts.ar_aging'::regclass, "
            "(select attnum from pg_attribute where attrelid = 'marts.ar_aging'::regclass "
            "and attname = 'open_amount'))",
        ).lower()
    )


def test_the_scorecard_ranks_customers_by_attention(built_warehouse):
    url = built_warehouse["url"]
    assert scalar(url, "select count(*) from marts.key_account_scorecard") == scalar(
        url, "select count(*) from marts.customer_tiers"
    )
    assert (
        scalar(
            url,
            "select count(*) from marts.key_account_scorecard where is_stop_shipment and attention_score < 30",
        )
        == 0
    )
    top = rows(url, "select attention_score from marts.key_account_scorecard order by attention_rank limit 5")
    assert [r[0] for r in top] == sorted((r[0] for r in top), reverse=True) and top[0][0] > 0


def test_the_report_reads_in_ten_seconds_in_a_real_browser(built_warehouse, tmp_path):
    url, settings = built_warehouse["url"], built_warehouse["settings"]
    path = build_report(url, settings)
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?://", page), "the report must work offline"
    charts = re.findall(r"data-chart='(\w+)'", page)
    assert charts == ["pareto", "aging", "grades", "transitions", "fees"]
    kpis = rows(url, "select company_currency, total_receivables from marts.finance_kpis_daily")
    assert len(kpis) == 1  # one published day: the report says there is no trend yet
    with Browser(tmp_path / "profile") as browser:
        browser.open(path.as_uri())
        browser.wait_for("document.querySelectorAll('figure[data-rendered]').length === 5")
        rendered = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('figure')].map(f => [f.dataset.chart, f.dataset.rendered]))"
        )
        assert rendered == dict.fromkeys(charts, "yes")
        cards = browser.evaluate(
            "[...document.querySelectorAll('.card')].map(c => [c.querySelector('.label').innerText,"
            " c.querySelector('.value').innerText, c.querySelector('.change').innerText])"
        )
        currency, total = kpis[0]
        assert [
            "Total receivables",
            f"{currency} {total:,.2f}",
            "no earlier published day to compare with",
        ] in cards
        assert len(cards) == 8
        assert "there is no trend yet" in browser.evaluate(
            "document.querySelector(\"figure[data-chart='aging']\").innerText"
        )
        # amounts right-aligned with separators; every chart's values printed, not only on hover
        alignments = browser.evaluate(
            "[...document.querySelectorAll('section[data-table] td.num')].map(td => getComputedStyle(td).textAlign)"
        )
        assert alignments and set(alignments) == {"right"}
        assert browser.evaluate("document.querySelectorAll('svg title').length") == 0
        overlaps = browser.evaluate(
            """(() => { const boxes = [...document.querySelectorAll("figure[data-chart='grades'] text")]
                 .map(t => t.getBoundingClientRect());
               return boxes.some((a, i) => boxes.some((b, j) => i < j && a.left < b.right && b.left < a.right
                 && a.top < b.bottom && b.top < a.bottom)); })()"""
        )
        assert overlaps is False
        managers = browser.evaluate("document.querySelectorAll('section[data-table=managers] tr').length")
        assert managers == 1 + scalar(
            url, "select count(distinct coalesce(account_manager, '')) from marts.key_account_scorecard"
        )
        shot = browser.screenshot(settings.home / "screenshots" / "report.png")
    assert shot.stat().st_size > 20_000


def test_the_airflow_admin_password_comes_from_the_environment(kam_env, tmp_path):
    env = dict(kam_env, AIRFLOW_ADMIN_PASSWORD="from-dot-env")
    run_kam("ui", "--write-password", env=env, check=True)
    settings = Settings(
        home=Path(kam_env["KAM_HOME"]), project_dir=PROJECT_DIR, warehouse_url=None, warehouse_port=None
    )
    assert json.loads(ui_passwords_file(settings).read_text()) == {"admin": "from-dot-env"}
    assert oct(ui_passwords_file(settings).stat().st_mode & 0o777) == "0o600"


def test_kam_docs_describe_the_published_marts_with_lineage_and_serve_on_loopback(built_warehouse):
    url, settings = built_warehouse["url"], built_warehouse["settings"]
    docs_dir = build_docs(url, settings, built_warehouse["as_of"], progress=lambda m: None)
    described = documented_marts(docs_dir)
    assert set(described) == set(mart_columns())
    assert described["stop_shipments"] == len(mart_columns()["stop_shipments"])
    assert described["ar_aging"] == len(mart_columns()["ar_aging"]) + len(seed_shaped_columns())
    catalog = json.loads((docs_dir / "catalog.json").read_text())
    aging = catalog["nodes"]["model.kam.ar_aging"]
    assert (
        aging["metadata"]["schema"] == "marts" and aging["columns"]["open_amount"]["type"] == "numeric(18,2)"
    )
    manifest = json.loads((docs_dir / "manifest.json").read_text())
    assert {e["name"] for e in manifest["exposures"].values()} >= {"receivables_aging", "finance_headlines"}

    def ancestors(node: str) -> set[str]:
        found, todo = set(), [node]
        while todo:
            for parent in manifest["parent_map"].get(todo.pop(), []):
                if parent not in found:
                    found.add(parent)
                    todo.append(parent)
        return found

    assert {"source.kam.billing.invoices", "source.kam.billing.payment_allocations"} <= ancestors(
        "model.kam.finance_kpis"
    )
    assert (docs_dir / "static_index.html").stat().st_size > 100_000
    server = docs_server(docs_dir, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/catalog.json", timeout=10) as response:
            assert "model.kam.stop_shipments" in json.load(response)["nodes"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_compose_file_is_a_valid_deployment():
    compose_file = PROJECT_DIR / "docker-compose.yml"
    document = yaml.safe_load(compose_file.read_text())
    services = document["services"]
    for name in (
        "warehouse",
        "airflow-db",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "mailpit",
        "superset",
    ):
        assert name in services and "healthcheck" in services[name], name
    assert services["warehouse"]["image"].startswith("postgres:16")
    airflow_env = document["x-airflow-common"]["environment"]
    # the scheduler's health check calls what the scheduler serves only when enabled
    assert "8974/health" in str(services["airflow-scheduler"]["healthcheck"]["test"])
    assert airflow_env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    assert airflow_env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    # the admin's password from .env goes where the simple auth manager reads it
    home = Settings(
        home=Path(airflow_env["KAM_HOME"]), project_dir=PROJECT_DIR, warehouse_url=None, warehouse_port=None
    )
    assert airflow_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(ui_passwords_file(home))
    assert "kam ui --write-password" in " ".join(services["airflow-init"]["command"])
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (
                (PROJECT_DIR / source).exists() if source.startswith("./") else source in document["volumes"]
            )
        for dependency in service.get("depends_on", {}):
            assert dependency in services
    text = compose_file.read_text()
    secrets = [  # a *_FILE setting names where a secret is kept, not the secret
        value
        for name, value in re.findall(
            r"^\s*(\w*(?:PASSWORD|SECRET)\w*):\s*(\S+)\s*$", text, flags=re.MULTILINE
        )
        if not name.endswith("_FILE")
    ]
    url_credentials = re.findall(r"://[^:/\s]+:([^@\s]+)@", text)
    assert secrets and url_credentials
    assert all(value.startswith("${") for value in secrets + url_credentials), "secrets come from .env only"
    assert ".env" in (PROJECT_DIR / ".gitignore").read_text().split()
    assert (PROJECT_DIR / ".env.example").exists()
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose (Debian package) is not installed: schema validation skipped")
    subprocess.run(
        [
            "docker-compose",
            "-f",
            str(compose_file),
            "--env-file",
            str(PROJECT_DIR / ".env.example"),
            "config",
            "-q",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
