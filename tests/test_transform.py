"""The dbt tests the daily build leaves out: the unit tests (CI's) and the tests the raw gate
has already answered; both must still pass when run."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kam.contract import load_contract
from kam.pipeline import raw_gate_covers
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


def test_the_tests_the_daily_build_leaves_to_the_raw_gate_pass_by_hand(built_warehouse):
    settings, url = built_warehouse["settings"], built_warehouse["url"]
    lines: list[str] = []
    listed = run_dbt(
        [
            "ls",
            "--quiet",
            "--resource-type",
            "test",
            "--output",
            "json",
            "--output-keys",
            "unique_id original_file_path",
            "--select",
            *raw_gate_covers(),
        ],
        url,
        settings,
        progress=lines.append,
    )
    assert listed.ok, lines[-20:]
    left_out = [json.loads(line) for line in lines if line.startswith("{")]
    # only the contract's sources and the staging views over them; nothing downstream
    assert {Path(test["original_file_path"]).parts[:3] for test in left_out} == {
        ("models", "staging", source) for source in {t.source for t in load_contract().values()}
    }
    staging_keys = [t for t in left_out if ".primary_key_stg_" in t["unique_id"]]
    assert len(staging_keys) == len(load_contract())  # one staging view, one key, per raw table
    by_hand = run_dbt(["test", "--select", "staging"], url, settings, progress=lambda line: None)
    assert by_hand.ok, by_hand.failures
    assert by_hand.counts[("test", "pass")] >= len(left_out)
