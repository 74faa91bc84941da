"""Serving: the BI role reads marts and nothing else, the scorecard ranks who needs
attention, the report renders offline in a real browser, and the deployment file is valid."""

from __future__ import annotations

import re
import shutil
import subprocess

import psycopg
import pytest
import yaml

from kam.report import build_report
from kam.settings import PROJECT_DIR
from kam.warehouse.roles import bi_url, ensure_bi_role
from tests.conftest import rows, scalar

MARTS = (
    "ar_open_items",
    "ar_aging",
    "ar_aging_daily",
    "overdue_invoices",
    "customer_tiers",
    "customer_tier_history",
    "credit_grades",
    "credit_grade_history",
    "stop_shipments",
    "fee_reconciliation",
    "fee_recovery_by_distributor",
    "key_account_scorecard",
)


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


def test_the_report_is_self_contained_and_every_chart_renders_in_chromium(built_warehouse, tmp_path):
    path = build_report(built_warehouse["url"], built_warehouse["settings"])
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?://", page), "the report must work offline"
    charts = re.findall(r"data-chart='(\w+)'", page)
    assert charts == ["pareto", "aging", "grades", "transitions", "fees"]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium chromium-driver); .ci/run installs it"
        )
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rendered = dict(re.findall(r"<figure data-chart=\"(\w+)\" data-rendered=\"(\w+)\"", dom))
    assert rendered == dict.fromkeys(charts, "yes")


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
        "metabase",
    ):
        assert name in services and "healthcheck" in services[name], name
    assert services["warehouse"]["image"].startswith("postgres:16")
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in document["volumes"]
        for dependency in service.get("depends_on", {}):
            assert dependency in services
    text = compose_file.read_text()
    secrets = re.findall(r"^\s*\w*(?:PASSWORD|SECRET)\w*:\s*(\S+)\s*$", text, flags=re.MULTILINE)
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
