"""The dbt project itself: its unit tests, which the daily build leaves to CI."""

from __future__ import annotations

import yaml

from kam.transform import run_dbt


def test_every_dbt_unit_test_passes_whatever_day_the_run_is_for(built_warehouse):
    settings = built_warehouse["settings"]
    declared = [
        test["name"]
        for path in sorted((settings.dbt_project_dir / "models").rglob("*.yml"))
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    ]
    # A day unlike every fixture's: each unit test must pin its own as-of date.
    result = run_dbt(
        ["test", "--select", "test_type:unit"],
        built_warehouse["url"],
        settings,
        as_of_date=built_warehouse["as_of"].replace(year=2030),
        progress=lambda line: None,
    )
    assert result.ok, result.failures
    assert result.counts[("unit_test", "pass")] == len(declared) >= 16
