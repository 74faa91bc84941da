"""The names others depend on, one spelling each: schemas, lock names, Airflow connection
ids and the URL schemes the project speaks. The dbt side spells the schemas in
dbt_project.yml and generate_schema_name; a test holds the two together."""

from __future__ import annotations

# -- schemas (docs/design.md §4) ----------------------------------------------------------------------
RAW_SCHEMA = "raw"  # landed data, the raw contract
STAGING_SCHEMA = "staging"  # one view per raw table, and the policy seeds
INTERMEDIATE_SCHEMA = "intermediate"
PUBLISHED_SCHEMA = "marts"  # what BI and the emails read
MARTS_BUILD_SCHEMA = "marts_build"  # where dbt builds the marts before the gate lets them in
PREVIOUS_SCHEMA = "marts_previous"  # the marts before the last swap, until the next one
AUDIT_SCHEMA = "audit"  # batches, quarantine, publications, validation results, the alert ledger
HISTORY_SCHEMA = "snapshots"  # dbt's append-only history tables, one set of rows per published day
ROWS_UNDER_VALIDATION_SCHEMA = "gate_rows"  # the gates' copies of the rows they validate
FORMER_SCHEMAS = ("raw_gate",)  # what ROWS_UNDER_VALIDATION_SCHEMA was called; empty between gates

# -- locks and leases -------------------------------------------------------------------------
BOOTSTRAP_LOCK = "kam.bootstrap"
BI_ROLE_LOCK = "kam.bi_role"
PUBLISH_LOCK = "kam.publish"
TRANSFORM_LEASE = "marts"  # dbt build -> marts gate -> publish of one run at a time

# -- Airflow ----------------------------------------------------------------------------------
WAREHOUSE_CONN_ID = "kam_warehouse"
SMTP_CONN_ID = "kam_smtp"
DEFAULT_SOURCE_CONNECTION = "kam_erp"
MARTS_ASSET_NAME = "kam_marts"
MARTS_ASSET_URI = "kam://warehouse/marts"

# -- URL schemes ------------------------------------------------------------------------------
# Airflow connection type -> URL scheme and default port
CONNECTION_SCHEMES = {"postgres": ("postgresql", 5432), "mysql": ("mysql", 3306), "mariadb": ("mysql", 3306)}
# URL scheme -> the SQLAlchemy driver that reads an ERP database
SQLALCHEMY_DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
}
