"""One home per rule: a change of policy is a seed edit and nothing else, every policy row
is read by something, and the schema names Python uses are the ones dbt builds."""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import replace
from datetime import date

import pytest
import yaml

from kam import constants
from kam.ingest.files import Loader
from kam.pipeline import build_marts, publish_marts, validate_marts
from kam.report import build_report
from kam.settings import PROJECT_DIR
from tests.conftest import make_settings, rows, scalar

AS_OF = date(2026, 6, 30)


@pytest.mark.slow
def test_a_new_aging_bucket_is_a_seed_edit_and_nothing_else(tmp_path, warehouse):
    """Split "over 365 days" in two in a copy of the project: the marts get the column, the
    identities (dbt) and the marts gate (GX) hold, and the report draws it."""
    from tools.synthetic import generate

    project = tmp_path / "project"
    for folder in ("dbt", "expectations", "mappings"):
        shutil.copytree(
            PROJECT_DIR / folder, project / folder, ignore=shutil.ignore_patterns("target", "logs")
        )
    seed = project / "dbt" / "seeds" / "aging_buckets.csv"
    lines = seed.read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if not line.startswith("over_365,")] + [
        "366_730,366,730,6,One to two years past due",
        "over_730,731,,7,More than two years past due",
    ]
    seed.write_text("\n".join(lines) + "\n", encoding="utf-8")

    settings = replace(make_settings(tmp_path / "home", warehouse), project_dir=project)
    generate(tmp_path / "files", scale=0.05, seed=5, end_date=AS_OF, progress=lambda m: None)
    Loader(warehouse, progress=lambda m: None).load_paths([tmp_path / "files"])
    build = build_marts(warehouse, settings, AS_OF, progress=lambda m: None, run_id="new-bucket")
    validate_marts(warehouse, settings, AS_OF, "new-bucket", build["invocation_id"], progress=lambda m: None)
    publish_marts(warehouse, AS_OF, "new-bucket", build["invocation_id"])

    columns = [
        r[0]
        for r in rows(
            warehouse,
            "select column_name from information_schema.columns where table_schema = 'marts'"
            " and table_name = 'ar_aging' and column_name like 'bucket_%' order by ordinal_position",
        )
    ]
    assert columns[-2:] == ["bucket_366_730", "bucket_over_730"] and "bucket_over_365" not in columns
    parts = " + ".join(columns)
    assert scalar(warehouse, f"select count(*) from marts.ar_aging where {parts} <> open_amount") == 0
    assert scalar(warehouse, "select sum(bucket_366_730 + bucket_over_730) from marts.ar_aging") > 0
    report = build_report(warehouse, settings).read_text(encoding="utf-8")
    assert "366_730" in report and "over_730" in report and "over_365" not in report


def test_every_policy_parameter_is_read_by_a_rule():
    with open(PROJECT_DIR / "dbt" / "seeds" / "policy_parameters.csv", encoding="utf-8") as handle:
        parameters = [row["parameter"] for row in csv.DictReader(handle)]
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("dbt/models", "dbt/macros", "plugins/kam")
        for p in (PROJECT_DIR / folder).rglob("*")
        if p.suffix in (".sql", ".py")
    )
    unread = [p for p in parameters if not re.search(rf"""['"]{p}['"]""", code)]
    assert unread == []


def test_the_schemas_python_names_are_the_schemas_dbt_builds():
    project = yaml.safe_load((PROJECT_DIR / "dbt" / "dbt_project.yml").read_text())
    models = project["models"]["kam"]
    assert models["staging"]["+schema"] == constants.STAGING_SCHEMA
    assert models["intermediate"]["+schema"] == constants.INTERMEDIATE_SCHEMA
    assert models["history"]["+schema"] == constants.HISTORY_SCHEMA
    assert f"'{constants.MARTS_BUILD_SCHEMA}'" in models["marts"]["+schema"]
    assert project["seeds"]["kam"]["+schema"] == constants.STAGING_SCHEMA
