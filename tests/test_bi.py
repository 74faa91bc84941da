"""The dashboards in a real BI tool: `kam bi`'s Superset, in its own virtualenv, on the
published marts through the BI role; logged into in Chromium, every dashboard opened, every
chart seen with data, each photographed under KAM_HOME/screenshots."""

from __future__ import annotations

import io
import zipfile

import pytest
import yaml

from kam.local import superset
from kam.local.embedded_server import free_port
from kam.warehouse.roles import ensure_bi_role
from tests.browser import Browser
from tests.conftest import scalar

# A chart has drawn data: an ECharts canvas, table rows, or a figure under its title; and
# Superset's own words for a failed or empty query are absent.
RENDERED = """(() => [...document.querySelectorAll('.dashboard-component-chart-holder')].map(h => {
  const lines = (h.innerText || '').split('\\n');
  const failed = /Unexpected error|No results were returned|Error:|permission denied/i.test(h.innerText || '');
  const drawn = h.querySelector('canvas') !== null || h.querySelectorAll('table tbody tr').length > 0
    || /\\d/.test(lines.slice(1).join(' '));
  return {title: lines[0].trim(), drawn: drawn && !failed, failed: failed};
}))()"""


@pytest.fixture(scope="module")
def superset_server(built_warehouse):
    url, settings = built_warehouse["url"], built_warehouse["settings"]
    ensure_bi_role(url, settings)
    instance = superset.prepare(settings, url, progress=lambda m: None)
    port = free_port()
    server = superset.serve(settings, instance, port)
    try:
        superset.wait_until_healthy(server, port)
        yield instance, port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_dashboard_opens_with_every_chart_showing_data(superset_server, built_warehouse, tmp_path):
    instance, port = superset_server
    url, settings = built_warehouse["url"], built_warehouse["settings"]
    spec = superset.dashboard_spec(settings)["dashboards"]
    assert len(spec) == 5
    with Browser(tmp_path / "profile", width=1600, height=2200) as browser:
        browser.open(f"http://127.0.0.1:{port}/login/")
        browser.wait_for("document.querySelector('#username')")
        browser.type_into("#username", superset.ADMIN)
        browser.type_into("#password", instance.admin_password)
        browser.click("[data-test=login-button]")
        browser.wait_for("!location.pathname.startsWith('/login')")
        for dashboard in spec:
            browser.open(f"http://127.0.0.1:{port}/superset/dashboard/{dashboard['slug']}/")
            expected = [chart["name"] for chart in dashboard["charts"]]
            browser.wait_for(
                f"(() => {{ const c = {RENDERED}; return c.length === {len(expected)} && c.every(x => x.drawn || x.failed); }})()",
                timeout=120,
            )
            charts = browser.evaluate(RENDERED)
            assert [c["title"] for c in charts] == expected, dashboard["slug"]
            assert [c["title"] for c in charts if not c["drawn"]] == [], dashboard["slug"]
            if dashboard["slug"] == "kam-receivables":
                total = scalar(url, "select sum(total_receivables) from marts.finance_kpis")
                assert f"{total:,.2f}" in browser.evaluate("document.body.innerText")
            browser.screenshot(
                settings.home / "screenshots" / f"superset_{dashboard['slug']}.png", whole_page=False
            )
    shots = sorted(p.name for p in (settings.home / "screenshots").glob("superset_*.png"))
    assert shots == sorted(f"superset_{d['slug']}.png" for d in spec)


def test_the_bundle_reads_the_marts_through_the_bi_role_only(built_warehouse):
    url, settings = built_warehouse["url"], built_warehouse["settings"]
    bundle = superset.build_bundle(
        superset.dashboard_spec(settings),
        superset.published_columns(url),
        "postgresql://kam_bi:pw@127.0.0.1:1/kam",
    )
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        databases = [yaml.safe_load(archive.read(n)) for n in archive.namelist() if "/databases/" in n]
        datasets = [yaml.safe_load(archive.read(n)) for n in archive.namelist() if "/datasets/" in n]
    assert [d["sqlalchemy_uri"] for d in databases] == ["postgresql+psycopg2://kam_bi:pw@127.0.0.1:1/kam"]
    assert databases[0]["allow_dml"] is False
    assert {d["schema"] for d in datasets} == {"marts"}
    kpis = next(d for d in datasets if d["table_name"] == "finance_kpis")
    described = {c["column_name"]: c["description"] for c in kpis["columns"]}
    assert described["total_receivables"].startswith("Everything owed to the company")
