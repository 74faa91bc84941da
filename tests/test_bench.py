"""A smoke run of `kam bench` so it cannot rot: every stage and every reference measured."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_kam

pytestmark = pytest.mark.slow


def test_bench_measures_every_stage_and_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("KAM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KAM_WAREHOUSE_URL", raising=False)
    result = run_kam("bench", "--scale", "0.04", check=True)
    (figures,) = (tmp_path / "home" / "bench").glob("*/bench.json")
    report = json.loads(figures.read_text())
    stages = {s["name"]: s for s in report["stages"]}
    for name in (
        "generate",
        "load",
        "raw gate",
        "dbt build",
        "marts gate",
        "publish",
        "alerts",
        "next day (bare)",
        "reference: psql \\copy",
        "kam_daily (Airflow)",
        "scan largest raw table",
    ):
        assert stages[name]["seconds"] > 0, name
    assert stages["load"]["rows"] == stages["reference: psql \\copy"]["rows"] > 0
    assert len(report["ratios"]) == 6 and all(value is not None for value in report["ratios"].values())
    assert report["slowest_models"] and "load throughput" in result.stdout
    # the mail catcher runs in its own process, as a mail server does, and received every message
    next_day = {s["name"]: s for s in report["next_day_stages"]}
    delivered = list((tmp_path / "home" / "bench").glob("*/scale-0.04/outbox/*.eml"))
    assert len(delivered) == stages["alerts"]["rows"] + next_day["alerts"]["rows"] > 0
