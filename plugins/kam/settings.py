"""Where the tool keeps its state and how it finds the project: one place for both.

Everything the tool writes lives under KAM_HOME (default ./var), so two KAM_HOMEs are two
independent instances.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from kam.constants import DEFAULT_SOURCE_CONNECTION

PROJECT_DIR = Path(__file__).resolve().parents[2]


def _addresses(variable: str, default: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in os.environ.get(variable, default).split(",") if a.strip())


@dataclass(frozen=True)
class Recipients:
    """Who gets the lists that no single account manager owns. From the environment, so a
    deployment sets them without touching code (KAM_FINANCE_EMAILS=a@x,b@x ...)."""

    mail_from: str = "kam-warehouse@example.com"
    finance: tuple[str, ...] = ("finance@example.com",)
    finance_manager: tuple[str, ...] = ("finance.manager@example.com",)
    credit_control: tuple[str, ...] = ("credit.control@example.com",)
    data_engineering: tuple[str, ...] = ("data.engineering@example.com",)
    body_rows: int = 50  # KAM_EMAIL_BODY_ROWS: invoice rows in a list's body; the CSV has all

    @classmethod
    def from_environment(cls) -> Recipients:
        return cls(
            mail_from=os.environ.get("KAM_MAIL_FROM", cls.mail_from),
            body_rows=int(os.environ.get("KAM_EMAIL_BODY_ROWS", cls.body_rows)),
            finance=_addresses("KAM_FINANCE_EMAILS", ",".join(cls.finance)),
            finance_manager=_addresses("KAM_FINANCE_MANAGER_EMAILS", ",".join(cls.finance_manager)),
            credit_control=_addresses("KAM_CREDIT_CONTROL_EMAILS", ",".join(cls.credit_control)),
            data_engineering=_addresses("KAM_DATA_ENGINEERING_EMAILS", ",".join(cls.data_engineering)),
        )


def _database_sources(text: str) -> tuple[tuple[str, str], ...]:
    """KAM_DATABASE_SOURCES="erpnext=kam_erp,odoo=kam_odoo": database mapping -> Airflow
    connection id (kam_erp when left out)."""
    sources = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        mapping, _, conn_id = item.partition("=")
        sources.append((mapping.strip(), conn_id.strip() or DEFAULT_SOURCE_CONNECTION))
    return tuple(sources)


@dataclass(frozen=True)
class BiLimits:
    """What one BI session may take: KAM_BI_STATEMENT_TIMEOUT, KAM_BI_IDLE_IN_TRANSACTION_TIMEOUT
    (PostgreSQL durations) and KAM_BI_CONNECTION_LIMIT."""

    statement_timeout: str = "5min"
    idle_in_transaction_timeout: str = "1min"
    connection_limit: int = 20

    @classmethod
    def from_environment(cls) -> BiLimits:
        return cls(
            statement_timeout=os.environ.get("KAM_BI_STATEMENT_TIMEOUT", cls.statement_timeout),
            idle_in_transaction_timeout=os.environ.get(
                "KAM_BI_IDLE_IN_TRANSACTION_TIMEOUT", cls.idle_in_transaction_timeout
            ),
            connection_limit=int(os.environ.get("KAM_BI_CONNECTION_LIMIT", cls.connection_limit)),
        )


@dataclass(frozen=True)
class Settings:
    home: Path
    project_dir: Path
    warehouse_url: str | None
    warehouse_port: int | None
    recipients: Recipients = Recipients()
    database_sources: tuple[tuple[str, str], ...] = ()  # (database mapping, Airflow connection id)
    timezone: str = "UTC"  # where "today" is: an as-of date after it has not closed yet
    bi_limits: BiLimits = BiLimits()

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.timezone)).date()

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def report_dir(self) -> Path:
        return self.home / "report"

    @property
    def docs_dir(self) -> Path:
        return self.home / "docs"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt" / "target"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / "dbt"

    @property
    def dags_dir(self) -> Path:
        return self.project_dir / "dags"

    @property
    def mappings_dir(self) -> Path:
        return self.project_dir / "mappings"

    @property
    def expectations_dir(self) -> Path:
        return self.project_dir / "expectations"


def load_settings() -> Settings:
    """Read the environment. KAM_HOME is made absolute so subprocesses agree on it."""
    home = Path(os.environ.get("KAM_HOME") or "var").expanduser().resolve()
    port = os.environ.get("KAM_WAREHOUSE_PORT")
    return Settings(
        home=home,
        project_dir=Path(os.environ.get("KAM_PROJECT_DIR") or PROJECT_DIR).resolve(),
        warehouse_url=os.environ.get("KAM_WAREHOUSE_URL") or None,
        warehouse_port=int(port) if port else None,
        recipients=Recipients.from_environment(),
        database_sources=_database_sources(os.environ.get("KAM_DATABASE_SOURCES", "")),
        timezone=os.environ.get("KAM_TIMEZONE") or "UTC",
        bi_limits=BiLimits.from_environment(),
    )
